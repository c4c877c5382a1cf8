"""Quality of the trained cross-encoder on a BEIR collection, resumable, with a score cache.

Runs ``rerank_kit.evaluation.compare`` over every first stage (bm25, dense, hybrid) with three
rerankers: the bi-encoder all-MiniLM-L6-v2, the bundled cross-encoder ms-marco-MiniLM-L-12-v2
(int8 ONNX) and the cascade ``bi-encoder@30 >> cross-encoder``. The queries go in chunks; after
each chunk every query's metrics are appended to ``OUT`` (JSON), so an interrupted run keeps
what it measured and ``--resume`` continues it.

The cross-encoder keeps a score cache (``score_cache=``), so a (query, passage) pair that two
first stages both retrieve, or that the cascade passes on, is scored once: quality is the same
as without it (int8 scores move by ~1e-5 with their batch neighbours), but the latency of the
rows after the first one is not the latency of a cold model. Measure latency without the cache
(``rerank-kit eval --limit-queries N``), as the README's latency columns are.

Usage:
    python benchmarks/eval_cross_encoder.py ../shared/data/beir/cisi /tmp/cisi_ce.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    from rerank_kit import BiEncoderReranker, CascadeReranker, OnnxCrossEncoderReranker, Stage
    from rerank_kit.evaluation import Dataset, build_first_stages, compare, load_dataset
    from rerank_kit.models import BUNDLED_CROSS_ENCODER

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--keep", type=int, default=30, help="bi-encoder survivors in the cascade")
    parser.add_argument("--chunk", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    data = load_dataset(args.data)
    out = Path(args.out)
    state: dict = {"dataset": data.name, "depth": args.depth, "per_query": {}, "rerank_ms": {}}
    if args.resume and out.is_file():
        state = json.loads(out.read_text())
    done = {q for system in state["per_query"].values() for q in system}

    bi = BiEncoderReranker("all-MiniLM-L6-v2")
    ce = OnnxCrossEncoderReranker(BUNDLED_CROSS_ENCODER, threads=args.threads, score_cache=200_000)
    cascade = CascadeReranker([Stage(bi, args.keep), Stage(ce, None)])
    cascade.name = f"bi-encoder@{args.keep} >> cross-encoder"
    bi.name, ce.name = "bi-encoder", "cross-encoder"
    stages = build_first_stages(["all"])
    todo = [q for q in data.queries if q not in done]
    print(f"{data.name}: {len(todo)} of {len(data.queries)} queries to go", file=sys.stderr)
    for start in range(0, len(todo), args.chunk):
        chunk = todo[start : start + args.chunk]
        part = Dataset(
            data.name,
            data.corpus,
            {q: data.queries[q] for q in chunk},
            {q: data.qrels[q] for q in chunk},
        )
        t0 = time.perf_counter()
        result = compare(part, stages, [bi, ce, cascade], depth=args.depth, warmup=False)
        for system in result.systems:
            state["per_query"].setdefault(system.name, {}).update(
                {q: dict(m) for q, m in system.per_query.items()}
            )
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(out)
        n = len(next(iter(state["per_query"].values())))
        print(
            f"{n}/{len(data.queries)} queries, chunk {time.perf_counter() - t0:.0f} s, "
            f"cross-encoder cache {ce.cache_info()}",
            file=sys.stderr,
        )
    table(state)
    return 0


def table(state: dict) -> None:
    """Print mean metrics per system (over the queries done)."""
    print(f"{state['dataset']} (depth {state['depth']})")
    print(f"{'system':40s} {'nDCG@10':>8s} {'MRR@10':>8s} {'R@100':>8s}  queries")
    for name, per_query in state["per_query"].items():
        keys = ("nDCG@10", "MRR@10", f"R@{state['depth']}")
        means = [statistics.fmean(m[k] for m in per_query.values()) for k in keys]
        print(f"{name:40s} " + " ".join(f"{v:8.3f}" for v in means) + f"  {len(per_query)}")


if __name__ == "__main__":
    sys.exit(main())
