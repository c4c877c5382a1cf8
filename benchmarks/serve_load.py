"""``rerank-kit serve`` against Infinity under concurrent load: throughput, p50 and p99.

Both servers serve the same weights on this machine, side by side in one run:

- ``rerank-kit serve`` with the bundled ms-marco-MiniLM-L-12-v2 (its int8 ONNX graph,
  rewritten per token: batch-independent scores; cross-request batching on);
- Infinity (``infinity_emb`` 0.0.78, its own venv: ``scripts/infinity_venv.sh``) with the same
  model dequantized to fp32 (``rerank_kit.models.bundled_cross_encoder_torch``), on its torch
  engine (``--engine torch --dtype float32``).

Each request reranks 20 Cranfield abstracts cut to about 100 tokens against a Cranfield query.
For each level of concurrency (1, 8, 32 clients) each server is driven for ``--seconds``
(clients send one request after another; requests still in flight at the end are awaited and
counted); the order of the two servers alternates between levels. The CPU, the load average
before and after each cell, and the token length of the passages are printed with the table.

Usage:
    python benchmarks/serve_load.py [--seconds 30] [--clients 1 8 32] [--docs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rerank_kit.models import bundled_cross_encoder, bundled_cross_encoder_torch  # noqa: E402

#: The shared data folder sits next to the main checkout (a worktree is one level deeper).
DATA = next(
    (p / "shared" / "data" / "cranfield" for p in REPO.parents if (p / "shared" / "data").is_dir()),
    REPO.parent / "shared" / "data" / "cranfield",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cranfield(path: Path) -> list[str]:
    """The ``.W`` texts of a Cranfield file, in order."""
    texts, current, inside = [], [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            if current:
                texts.append(" ".join(current))
            current, inside = [], False
        elif line.startswith(".W"):
            inside = True
        elif line.startswith("."):
            inside = False
        elif inside:
            current.append(line.strip())
    if current:
        texts.append(" ".join(current))
    return texts


def _passages(tokenizer: object, want: int = 100) -> tuple[list[str], float]:
    """Cranfield abstracts cut to about ``want`` tokens, and their mean token count."""
    out, lengths = [], []
    for text in _cranfield(DATA / "cran.all.1400"):
        words = text.split()
        if len(words) < 90:
            continue
        cut = " ".join(words[:78])
        n = len(tokenizer.encode(cut, add_special_tokens=False).ids)  # type: ignore[attr-defined]
        out.append(cut)
        lengths.append(n)
    return out, statistics.mean(lengths)


def _wait(url: str, path: str, proc: subprocess.Popen[bytes], what: str) -> float:
    start = time.perf_counter()
    while True:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.perf_counter() - start > 300:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.2)


@dataclass
class Cell:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    load_before: float
    load_after: float

    @property
    def pairs_per_s(self) -> float:
        return self.requests * DOCS / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


DOCS = 20


async def _drive(
    url: str,
    path: str,
    model: str,
    clients: int,
    seconds: float,
    queries: list[str],
    passages: list[str],
) -> Cell:
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0
    load_before = os.getloadavg()[0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < stop and i < 10_000:
            k = (c * 7919 + i * 104729) % len(passages)
            docs = [passages[(k + j) % len(passages)] for j in range(DOCS)]
            body = {"model": model, "query": queries[(c + i) % len(queries)], "documents": docs}
            t0 = time.perf_counter()
            answer = await http.post(url + path, json=body)
            if answer.status_code == 200 and len(answer.json()["results"]) == DOCS:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            i += 1

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    elapsed = time.perf_counter() - start
    return Cell(len(latencies), elapsed, latencies, errors, load_before, os.getloadavg()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundled_cross_encoder() / "tokenizer.json"))
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 512: count real tokens
    tokenizer.no_truncation()
    passages, mean_tokens = _passages(tokenizer)
    queries = [q for q in _cranfield(DATA / "cran.qry") if q.strip()]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"CPU: {cpu}; {os.cpu_count()} logical CPUs; Python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{len(passages)} passages, mean {mean_tokens:.0f} tokens; {DOCS} per request")

    tmp = Path(tempfile.mkdtemp(prefix="rerank-kit-serve-bench-"))
    fp32 = bundled_cross_encoder_torch(tmp / "minilm-l12-fp32")
    config_path = fp32 / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # Infinity's transformers needs it
    config_path.write_text(json.dumps(config))
    tok_path = fp32 / "tokenizer.json"
    tok = json.loads(tok_path.read_text())
    tok["padding"] = None  # the shipped file pads every pair to 512; pad per batch instead
    tok_path.write_text(json.dumps(tok))

    binary = subprocess.run(
        ["bash", str(REPO / "scripts" / "infinity_venv.sh")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    inf_port, rk_port = _free_port(), _free_port()
    env = dict(
        os.environ,
        DO_NOT_TRACK="1",
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp / "hf"),
    )
    env.pop("PYTHONPATH", None)
    env.pop("OMP_NUM_THREADS", None)
    inf_cmd = [
        binary,
        "v2",
        "--model-id",
        str(fp32),
        "--served-model-name",
        "minilm",
        "--host",
        "127.0.0.1",
        "--port",
        str(inf_port),
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--no-bettertransformer",
        "--no-vector-disk-cache",
        "--batch-size",
        "32",
        "--log-level",
        "warning",
    ]
    rk_env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    rk_env.pop("OMP_NUM_THREADS", None)
    rk_cmd = [
        sys.executable,
        "-m",
        "rerank_kit.cli",
        "serve",
        "--model",
        "minilm=onnx:cross-encoder/ms-marco-MiniLM-L-12-v2",
        "--port",
        str(rk_port),
        "--deadline",
        "600",  # as Infinity, which has none: a benchmark measures, it does not time out
        "--log-level",
        "warning",
    ]
    servers = {
        "rerank-kit": (f"http://127.0.0.1:{rk_port}", "/v2/rerank", "/ready", rk_cmd, rk_env),
        "Infinity": (f"http://127.0.0.1:{inf_port}", "/rerank", "/health", inf_cmd, env),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (url, _, ready, cmd, cmd_env) in servers.items():
            procs[name] = subprocess.Popen(
                cmd, env=cmd_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            print(f"{name} ready after {_wait(url, ready, procs[name], name):.1f} s")
        for url, path, _, _, _ in servers.values():  # warm up both
            asyncio.run(_drive(url, path, "minilm", 2, 3.0, queries, passages))
        results: dict[tuple[str, int], Cell] = {}
        order = list(servers)
        for level, clients in enumerate(args.clients):
            for name in order if level % 2 == 0 else order[::-1]:
                url, path, _, _, _ = servers[name]
                cell = asyncio.run(
                    _drive(url, path, "minilm", clients, args.seconds, queries, passages)
                )
                results[(name, clients)] = cell
                print(
                    f"  {name:>10} x{clients:<3} {cell.requests:>5} requests in {cell.seconds:.1f} s, "
                    f"{cell.pairs_per_s:.1f} pairs/s, p50 {cell.pct(0.5):.0f} ms, "
                    f"p99 {cell.pct(0.99):.0f} ms, errors {cell.errors}, "
                    f"load {cell.load_before:.2f} -> {cell.load_after:.2f}",
                    flush=True,
                )
        print(
            "\n| clients | rerank-kit pairs/s | Infinity pairs/s | ratio | rerank-kit p50 / p99 ms "
            "| Infinity p50 / p99 ms | load avg (rk, inf) |"
        )
        print("|---|---|---|---|---|---|---|")
        for clients in args.clients:
            a, b = results[("rerank-kit", clients)], results[("Infinity", clients)]
            print(
                f"| {clients} | {a.pairs_per_s:.0f} | {b.pairs_per_s:.0f} | "
                f"{a.pairs_per_s / b.pairs_per_s:.2f}x | {a.pct(0.5):.0f} / {a.pct(0.99):.0f} | "
                f"{b.pct(0.5):.0f} / {b.pct(0.99):.0f} | {a.load_before:.1f}-{a.load_after:.1f}, "
                f"{b.load_before:.1f}-{b.load_after:.1f} |"
            )
        print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for proc in procs.values():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
