"""Pairs per second: in-process vs Dask ``local:1`` vs ``local:2``, and Dask's cost per pair.

The same candidate pool (BM25 top ``--depth`` for the first ``--queries`` Cranfield queries) is
scored four ways, side by side in one run: in one process (``Reranker.score`` per query, no
cache), then with ``score_on_dask`` on a LocalCluster of 1 and of 2 worker processes (one
thread each, 127.0.0.1). Cluster start-up and the model load on the workers (one probe task) are
timed apart from scoring. Dask's overhead per pair is (local:1 - in-process) / pairs.

    HF_HUB_OFFLINE=1 python benchmarks/dask_throughput.py --queries 8 --depth 20 \
        --json docs/dask_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "cranfield"


def _pool(queries: int, depth: int) -> list[tuple[str, list[str]]]:
    from rerank_kit.evaluation import load_dataset
    from rerank_kit.evaluation._dask_pool import candidate_pool

    return candidate_pool(load_dataset(DATA).head(queries), ["bm25"], depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--partition-pairs", type=int, default=40)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    from rerank_kit import dask_client, load_reranker, score_on_dask
    from rerank_kit._distributed import _probe, _result

    pool = _pool(args.queries, args.depth)
    pairs = sum(len(t) for _, t in pool)
    rows: dict[str, Any] = {"spec": args.spec, "pairs": pairs, "cpus": os.cpu_count()}

    model = load_reranker(args.spec)
    model.score(*pool[0])  # warm-up, untimed (first calls are slow)
    start = time.perf_counter()
    local = [model.score(q, t) for q, t in pool]
    rows["in-process"] = {"score_s": time.perf_counter() - start}

    for workers in (1, 2):
        start = time.perf_counter()
        with dask_client(f"local:{workers}") as client:
            up = time.perf_counter() - start
            start = time.perf_counter()
            futures = [
                client.submit(_probe, args.spec, {}, None, pure=False, workers=[w])
                for w in client.scheduler_info()["workers"]
            ]
            for future in futures:
                _result(future, args.spec)
            loaded = time.perf_counter() - start
            start = time.perf_counter()
            got = score_on_dask(client, args.spec, pool, partition_pairs=args.partition_pairs)
            took = time.perf_counter() - start
        diff = max(
            abs(a - b) for g, w in zip(got, local, strict=True) for a, b in zip(g, w, strict=True)
        )
        rows[f"local:{workers}"] = {
            "startup_s": up,
            "model_load_s": loaded,
            "score_s": took,
            "max_abs_diff": diff,
        }

    base = rows["in-process"]["score_s"]
    for label in ("in-process", "local:1", "local:2"):
        row = rows[label]
        row["pairs_per_s"] = pairs / row["score_s"]
        row["speedup_vs_in_process"] = base / row["score_s"]
    rows["dask_overhead_ms_per_pair"] = 1000 * (rows["local:1"]["score_s"] - base) / pairs
    print(f"{pairs} pairs of {args.spec} ({args.queries} queries x {args.depth})")
    for label in ("in-process", "local:1", "local:2"):
        row = rows[label]
        extra = (
            ""
            if label == "in-process"
            else (
                f"  (start-up {row['startup_s']:.1f} s, model load {row['model_load_s']:.1f} s, "
                f"max |diff| {row['max_abs_diff']:.1e})"
            )
        )
        print(
            f"{label:11} {row['score_s']:7.1f} s  {row['pairs_per_s']:6.2f} pairs/s  "
            f"x{row['speedup_vs_in_process']:.2f}{extra}"
        )
    print(
        f"Dask overhead: {rows['dask_overhead_ms_per_pair']:+.2f} ms per pair (local:1 - in-process)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
