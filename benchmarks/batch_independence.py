"""Does a pair's score depend on its batch, and what does batch independence cost? (issue 20)

Three systems on the bundled ms-marco-MiniLM-L-12-v2, in one process, repetitions alternating:

- ``new``: the default path (``CrossEncoderReranker`` on the bundled name): the shipped int8
  graph rewritten to per-token int8 (calibrated zero points, ``MatMulIntegerToFloat``,
  ``MultiHeadAttention``), run in buckets of <= 16 pairs and <= 1024 padded tokens;
- ``today``: the shipped graph as it ran before: batch-wide dynamic int8 (one activation scale per
  batch tensor), buckets of <= 32 pairs and <= 2048 tokens (the raw session on the shipped file);
- ``st-torch``: sentence-transformers ``CrossEncoder`` fp32 on the dequantized weights
  (``rerank_kit.models.bundled_cross_encoder_torch``), batch size 32.

Measured:

1. speed on (a) 6 CISI queries of <= 20 words x 50 CISI abstracts each, and (b) the same queries
   x 50 passages of 18 words (seeded samples); ratios are medians of per-repetition ratios;
2. fidelity against the fp32 graph (the int8 weights dequantized, ``dequantize.dequantized_graph``,
   on ONNX Runtime): top-10 overlap and max score difference over 25 Cranfield queries x their
   bm25s top 50;
3. batch dependence: max |score in a call - score alone| over 3 queries x 20 passages of each set,
   scored in one call and in shuffled calls of 3 and of 11.

Usage:
    python benchmarks/batch_independence.py                 # about 5 minutes on 2 busy cores
    python benchmarks/batch_independence.py --reps-a 2 --reps-b 4 --queries 10   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
BEIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir"

Score = Callable[[str, Sequence[str]], list[float]]


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def speed_sets(seed: int = 0) -> dict[str, tuple[list[str], list[list[str]]]]:
    """(a) 6 short CISI queries x 50 CISI abstracts; (b) the same x 50 passages of 18 words."""
    from rerank_kit.evaluation import load_beir

    data = load_beir(BEIR / "cisi")
    rng = random.Random(seed)
    short = [q for q in sorted(data.queries, key=int) if len(data.queries[q].split()) <= 20]
    queries = [data.queries[q] for q in rng.sample(short, 6)]
    texts = [d.full_text for _, d in sorted(data.corpus.items(), key=lambda kv: int(kv[0]))]
    texts = [t for t in texts if len(t.split()) >= 40]
    abstracts = [rng.sample(texts, 50) for _ in queries]
    snippets = []
    for _ in queries:
        chosen = []
        for text in rng.sample(texts, 50):
            words = text.split()
            start = rng.randrange(0, len(words) - 18)
            chosen.append(" ".join(words[start : start + 18]))
        snippets.append(chosen)
    return {"(a) abstracts": (queries, abstracts), "(b) 18 words": (queries, snippets)}


def cranfield_bm25(n_queries: int, depth: int = 50, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``n_queries`` Cranfield queries (seeded sample) x their bm25s top ``depth``."""
    from rerank_kit.evaluation import BM25FirstStage, load_beir

    data = load_beir(BEIR / "cranfield")
    bm25 = BM25FirstStage()
    bm25.index(data.corpus)
    qids = random.Random(seed).sample(sorted(data.queries, key=int), n_queries)
    return [
        (
            data.queries[q],
            [data.corpus[d].full_text for d, _ in bm25.search(data.queries[q], depth)],
        )
        for q in qids
    ]


def build_systems(work: Path, threads: int) -> dict[str, Any]:
    """The three timed systems and the fp32 reference, as ``score(query, texts)`` callables."""
    import torch
    from sentence_transformers import CrossEncoder

    from rerank_kit import CrossEncoderReranker, OnnxCrossEncoderReranker
    from rerank_kit._runtime.batch_rule import GraphPlan
    from rerank_kit._runtime.dequantize import dequantized_graph
    from rerank_kit._runtime.sessions import OrtRunner
    from rerank_kit.models import (
        BUNDLED_CROSS_ENCODER,
        bundled_cross_encoder,
        bundled_cross_encoder_torch,
    )

    cache = work / "onnx"
    kwargs = {"cache_dir": cache, "threads": threads}
    new = CrossEncoderReranker(BUNDLED_CROSS_ENCODER, model_kwargs=kwargs)
    assert new._onnx.rule == "int8-per-token/1", new._onnx.plan
    # today's path: the shipped graph's own session, batch-wide int8, 32 pairs / 2048 tokens
    today = OnnxCrossEncoderReranker(
        str(bundled_cross_encoder()), batch_size=32, max_batch_tokens=2048, **kwargs
    )
    model = today._model
    model.plan = GraphPlan(model.onnx_path)
    model.runner = OrtRunner(model.onnx_path, threads)
    today._score_rule = None
    # the fp32 graph of the same weights (fidelity reference)
    fp32_dir = work / "fp32-graph"
    if not (fp32_dir / "model.onnx").is_file():
        fp32_dir.mkdir(parents=True, exist_ok=True)
        for f in bundled_cross_encoder().iterdir():
            if f.is_file() and f.suffix != ".onnx":
                shutil.copy(f, fp32_dir / f.name)
        dequantized_graph(bundled_cross_encoder() / "model.onnx", fp32_dir / "model.onnx")
    fp32 = OnnxCrossEncoderReranker(str(fp32_dir), **kwargs)
    assert fp32._model.rule is None
    torch.set_num_threads(threads)
    st = CrossEncoder(str(bundled_cross_encoder_torch(work / "torch-fp32")), device="cpu")

    def st_score(query: str, texts: Sequence[str]) -> list[float]:
        out = st.predict([(query, t) for t in texts], batch_size=32, show_progress_bar=False)
        return [float(s) for s in out]

    return {"new": new.score, "today": today.score, "st-torch": st_score, "fp32": fp32.score}


def time_sets(
    systems: dict[str, Score], sets: dict[str, Any], reps: dict[str, int]
) -> dict[str, dict[str, list[float]]]:
    """Seconds per repetition of each system on each set; the order rotates every repetition."""
    names = [n for n in systems if n != "fp32"]
    out: dict[str, dict[str, list[float]]] = {}
    for label, (queries, passages) in sets.items():
        times: dict[str, list[float]] = {n: [] for n in names}
        for name in names:  # warm-up
            systems[name](queries[0], passages[0][:5])
        for rep in range(reps[label]):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                t0 = time.perf_counter()
                for query, texts in zip(queries, passages, strict=True):
                    systems[name](query, texts)
                times[name].append(time.perf_counter() - t0)
        say(f"{label}: {reps[label]} reps, {machine_load()}")
        out[label] = times
    return out


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over repetitions of time(slow) / time(fast): > 1 means ``fast`` is faster."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast], strict=True))


def fidelity(
    systems: dict[str, Score], pairs: list[tuple[str, list[str]]], names: Sequence[str]
) -> dict[str, Any]:
    """Top-10 overlap with the fp32 graph and the max score difference, per system."""
    ref = [systems["fp32"](q, ts) for q, ts in pairs]
    out = {}
    for name in names:
        overlaps, worst = [], 0.0
        for (query, texts), want in zip(pairs, ref, strict=True):
            got = systems[name](query, texts)
            top = set(sorted(range(len(got)), key=lambda i: -got[i])[:10])
            top_ref = set(sorted(range(len(want)), key=lambda i: -want[i])[:10])
            overlaps.append(len(top & top_ref) / 10)
            worst = max(worst, max(abs(a - b) for a, b in zip(got, want, strict=True)))
        out[name] = {
            "top10_overlap": statistics.mean(overlaps),
            "queries_with_a_swap": sum(o < 1 for o in overlaps),
            "max_score_diff": worst,
        }
        say(f"fidelity {name}: {out[name]}")
    return out


def batch_dependence(
    systems: dict[str, Score], sets: dict[str, Any], queries: int, names: Sequence[str]
) -> dict[str, float]:
    """Max |score in a call - score alone| over ``queries`` queries x 20 passages of each set,
    scored in one call, in shuffled calls of 3 and of 11, and beside the longest abstract."""
    longest = max((t for ts in sets["(a) abstracts"][1] for t in ts), key=len)
    out = {name: float("nan") for name in ("new", "today", "st-torch", "fp32")}
    for name in names if queries > 0 else ():
        worst = 0.0
        for qs, passages in sets.values():
            for query, texts in zip(qs[:queries], passages[:queries], strict=True):
                texts = texts[:20]
                alone = [systems[name](query, [t])[0] for t in texts]
                arrangements = [systems[name](query, texts)]
                for size in (3, 11):
                    perm = list(range(len(texts)))
                    random.Random(size).shuffle(perm)
                    got = [0.0] * len(texts)
                    for start in range(0, len(perm), size):
                        chunk = perm[start : start + size]
                        scores = systems[name](query, [texts[i] for i in chunk])
                        for i, s in zip(chunk, scores, strict=True):
                            got[i] = s
                    arrangements.append(got)
                arrangements.append([systems[name](query, [longest, t])[1] for t in texts])
                for got in arrangements:
                    worst = max(worst, max(abs(a - b) for a, b in zip(got, alone, strict=True)))
        out[name] = worst
        say(f"batch dependence {name}: {worst:.3g}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--reps-a", type=int, default=4, help="repetitions on (a) abstracts")
    p.add_argument("--reps-b", type=int, default=12, help="repetitions on (b) 18-word passages")
    p.add_argument("--queries", type=int, default=25, help="Cranfield queries for fidelity")
    p.add_argument(
        "--st-fidelity",
        action="store_true",
        help="also score the Cranfield queries with sentence-transformers (slow; it runs the "
        "fp32 weights, so it matches the fp32 graph to ~1e-6)",
    )
    p.add_argument(
        "--dependence-queries",
        type=int,
        default=2,
        help="queries per set for batch dependence (0: skip that phase)",
    )
    p.add_argument(
        "--dependence-systems",
        default="new,today,st-torch,fp32",
        type=lambda text: [n for n in text.split(",") if n],
        help="systems whose batch dependence is measured (comma-separated)",
    )
    p.add_argument("--threads", type=int, help="threads for every system (default: the runtime's)")
    p.add_argument("--work", help="keep the rewritten and fp32 graphs here (default: a temp dir)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    if not (BEIR / "cisi").is_dir() or not (BEIR / "cranfield").is_dir():
        raise SystemExit(f"needs CISI and Cranfield in the BEIR layout under {BEIR}")
    from rerank_kit._runtime.cpu import default_threads

    threads = args.threads or default_threads()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="batch-independence-"))
    say(f"start: {machine_load()}, {threads} threads, work folder {work}")
    systems = build_systems(work, threads)
    sets = speed_sets()
    t0 = time.perf_counter()
    dep = batch_dependence(systems, sets, args.dependence_queries, args.dependence_systems)
    names = ["new", "today"] + (["st-torch"] if args.st_fidelity else [])
    fid = fidelity(systems, cranfield_bm25(args.queries), names)
    fid.setdefault(
        "st-torch",
        {"top10_overlap": float("nan"), "queries_with_a_swap": -1, "max_score_diff": float("nan")},
    )
    say(f"before timing: {machine_load()}")
    times = time_sets(systems, sets, {"(a) abstracts": args.reps_a, "(b) 18 words": args.reps_b})
    say(f"end: {machine_load()} ({time.perf_counter() - t0:.0f} s measured)")

    print(
        "| path | speed vs today (a) / (b) | vs ST torch (a) / (b) | top-10 overlap "
        "(queries with a swap) | max score diff | batch dependence |"
    )
    print("|---|---|---|---|---|---|")
    for name in ("new", "today", "st-torch"):
        a, b = (times[k] for k in ("(a) abstracts", "(b) 18 words"))
        f = fid[name]
        print(
            f"| {name} | {ratio(a, 'today', name):.2f}x / {ratio(b, 'today', name):.2f}x "
            f"| {ratio(a, 'st-torch', name):.2f}x / {ratio(b, 'st-torch', name):.2f}x "
            f"| {f['top10_overlap']:.3f} ({f['queries_with_a_swap']}) | {f['max_score_diff']:.3f} "
            f"| {dep[name]:.2g} |"
        )
    print(f"| fp32 graph (reference) | | | 1 | 0 | {dep['fp32']:.2g} |")
    for label, t in times.items():
        med = {n: round(statistics.median(v) * 1000) for n, v in t.items()}
        print(f"{label}: median ms per repetition (6 queries x 50 passages) {med}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"times": times, "fidelity": fid, "batch_dependence": dep}, indent=2)
        )


if __name__ == "__main__":
    main()
