"""What serving a cross-encoder behind HTTP costs and buys: in-process vs Infinity on this machine.

Starts Infinity (its own venv, ``scripts/infinity_venv.sh``) on 127.0.0.1, serving a MiniLM-L6
shaped cross-encoder built locally (random weights: compute depends on shape, not weights), and
compares, side by side and alternating:

- latency of one query with N passages: ``CrossEncoderReranker`` in-process vs
  ``load_reranker("infinity:URL#MODEL")`` (HTTP + JSON + the server's own batching);
- throughput of C concurrent queries: ``arerank`` over one ``httpx.AsyncClient`` (the server
  batches requests from different queries together) vs the same queries one after another.

Usage:
    python benchmarks/remote_overhead.py [--passages 20 100] [--concurrency 16] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rerank_kit import CrossEncoderReranker, load_reranker  # noqa: E402
from rerank_kit.demo import CORPUS  # noqa: E402
from rerank_kit.testing import MINILM_L6, make_cross_encoder  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _passages(n: int) -> list[str]:
    base = [text for _, text in CORPUS]
    return [f"{base[i % len(base)]} (variant {i})" for i in range(n)]


def _time_ms(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rerank-kit-bench-"))
    texts = [t for _, t in CORPUS] * 4
    model_dir = make_cross_encoder(tmp / "minilm-l6-shape", texts, vocab_size=2000, **MINILM_L6)
    served_dir = tmp / "served"
    shutil.copytree(model_dir, served_dir)
    config = json.loads((served_dir / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (served_dir / "tokenizer_config.json").write_text(json.dumps(config))

    binary = subprocess.run(
        ["bash", str(REPO / "scripts" / "infinity_venv.sh")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    port = _free_port()
    env = dict(os.environ, DO_NOT_TRACK="1", INFINITY_ANONYMOUS_USAGE_STATS="0", HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    cmd = [binary, "v2", "--model-id", str(served_dir), "--served-model-name", "ce"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--engine", "torch", "--device", "cpu"]
    cmd += ["--dtype", "float32", "--no-bettertransformer", "--no-vector-disk-cache"]
    cmd += ["--batch-size", "32", "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            if server.poll() is not None or time.perf_counter() - start > 180:
                raise SystemExit("Infinity did not start")
        print(f"Infinity healthy after {time.perf_counter() - start:.1f} s")

        local = CrossEncoderReranker(str(model_dir))
        remote = load_reranker(f"infinity:{url}#ce")
        query = "how do I reset my password"
        print("\nOne query, N passages (median ms; alternating runs):")
        print(f"{'N':>5} {'in-process':>11} {'infinity':>9} {'ratio':>6}")
        for n in args.passages:
            docs = _passages(n)
            local.score(query, docs), remote.score(query, docs)  # warm up
            runs_local, runs_remote = [], []
            for _ in range(args.repeats):  # alternate, so load from other processes hits both
                runs_local.append(_time_ms(local.score, query, docs))
                runs_remote.append(_time_ms(remote.score, query, docs))
            a, b = statistics.median(runs_local), statistics.median(runs_remote)
            print(f"{n:>5} {a:>11.1f} {b:>9.1f} {b / a:>6.2f}")

        n = args.passages[0]
        docs = _passages(n)
        queries = [f"{query} {i}" for i in range(args.concurrency)]

        async def together() -> float:
            start = time.perf_counter()
            await asyncio.gather(*(remote.arerank(q, docs) for q in queries))
            return time.perf_counter() - start

        async def one_by_one() -> float:
            start = time.perf_counter()
            for q in queries:
                await remote.arerank(q, docs)
            return time.perf_counter() - start

        asyncio.run(together())
        seq = statistics.median(asyncio.run(one_by_one()) for _ in range(3))
        con = statistics.median(asyncio.run(together()) for _ in range(3))
        print(f"\n{args.concurrency} queries x {n} passages through Infinity (median of 3):")
        print(f"  one after another: {seq * 1000:.0f} ms ({args.concurrency / seq:.1f} queries/s)")
        print(f"  concurrent arerank: {con * 1000:.0f} ms ({args.concurrency / con:.1f} queries/s)")
        print(f"  speed-up: {seq / con:.2f}x")
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
