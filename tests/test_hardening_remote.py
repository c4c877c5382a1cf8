"""Remote rerankers against hostile servers and careless set-ups (issue 30, items 2 and 4).

Every server here listens on 127.0.0.1 (a listen backlog of 16) and every loop in it is bounded:
a slow-drip server stops after 40 bytes, a large body after 20 MB. Each test names the guarantee
it proves (``docs/reliability.md``, "Hostile servers and secrets").
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_rerank_server import KEY, FakeRerankServer, relevance

from rerank_kit import RemoteReranker, RemoteRerankError, RerankError, RetryPolicy, load_reranker

httpx = pytest.importorskip("httpx")

QUERY = "red apple pie"
TEXTS = ["a pear tart", "red apple pie with cinnamon", "the stock market"]
LONG_KEY = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"  # 42 characters
PASSWORD = "hunter2-Zq9xW"
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05)


def leaks(secret: str, text: str, window: int = 6) -> bool:
    """True if any ``window`` consecutive characters of ``secret`` appear in ``text``."""
    return any(secret[i : i + window] in text for i in range(len(secret) - window + 1))


# ----------------------------------------------------------------------- a hostile server


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _ok_body(request: bytes) -> bytes:
    docs = json.loads(request)["documents"]
    results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(docs))]
    return json.dumps({"results": results}).encode()


def _drip(sock: socket.socket, data: bytes) -> None:
    for byte in data[:40]:  # bounded: 40 bytes, 20 s at most
        sock.sendall(bytes([byte]))
        time.sleep(0.5)


def _stream(sock: socket.socket, head: bytes, size: int, tail: bytes) -> None:
    sock.sendall(head)
    chunk = b" " * 65536
    for _ in range(size // len(chunk)):  # bounded: size bytes
        sock.sendall(chunk)
    sock.sendall(tail)


NESTED = b"[" * 100_000 + b"]" * 100_000


def _respond(mode: str, sock: socket.socket, body: bytes, url: str) -> None:
    ok = _ok_body(body)
    if mode == "ok":
        sock.sendall(_answer(200, ok))
    elif mode == "drip-body":
        sock.sendall(_answer(200, b"")[: -len(b"\r\n\r\n")].replace(b"Length: 0", b"Length: 40"))
        sock.sendall(b"\r\n\r\n")
        _drip(sock, b" " * 40)
    elif mode == "drip-headers":
        _drip(sock, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40)
    elif mode == "big-announced":
        size = 20 * 1024 * 1024
        head = _answer(200, b"")[: -len(b"\r\n\r\n")].replace(
            b"Length: 0", f"Length: {size + len(ok)}".encode()
        )
        _stream(sock, head + b"\r\n\r\n", size, ok)
    elif mode == "big-unannounced":  # no Content-Length: the body runs until the close
        _stream(sock, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 20 * 1024 * 1024, ok)
    elif mode in ("nested-200", "nested-500"):
        sock.sendall(_answer(int(mode[-3:]), NESTED))
    elif mode.startswith("redirect-"):
        # a valid answer in the body: the old code read it as the provider's success
        sock.sendall(_answer(int(mode[-3:]), ok, {"Location": f"{url}/elsewhere"}))
    else:  # pragma: no cover
        raise AssertionError(mode)


class _Handler(socketserver.BaseRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("Content-Length", headers.get("content-length", "0")))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        self.server.seen.append((lines[0].split(" ")[1], headers))
        try:
            _respond(self.server.mode, sock, body, self.server.url)
        except OSError:
            pass  # the client gave up: what these tests want


class HostileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16  # listen backlog

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as srv:
        yield srv


def cohere(url: str, **kwargs: Any) -> RemoteReranker:
    options: dict[str, Any] = {"api_key": KEY, "base_url": url, "max_retries": 0, **kwargs}
    return RemoteReranker("cohere:rerank-v3.5", **options)


def call(reranker: RemoteReranker, how: str) -> list[Any]:
    if how == "sync":
        return reranker.rerank(QUERY, TEXTS)
    return asyncio.run(reranker.arerank(QUERY, TEXTS))


HOW = ["sync", "async"]


# ----------------------------------------------------------------------- bounded answers


def test_the_hostile_server_answers_a_good_request(hostile: HostileServer) -> None:
    ranked = call(cohere(hostile.url), "sync")
    assert [r.index for r in ranked] == [0, 1, 2]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("mode", ["drip-body", "drip-headers"])
def test_a_slow_drip_ends_at_the_total_deadline(
    hostile: HostileServer, mode: str, how: str
) -> None:
    hostile.mode = mode
    reranker = cohere(hostile.url, timeout=1)
    start = time.monotonic()
    with pytest.raises(RemoteRerankError, match=r"^cohere: no answer .* within the 1 s timeout"):
        call(reranker, how)
    elapsed = time.monotonic() - start
    assert elapsed < 2.5, f"{mode} ({how}) held a timeout=1 call for {elapsed:.2f} s"


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("mode", ["big-announced", "big-unannounced"])
def test_a_body_over_the_cap_is_refused(hostile: HostileServer, mode: str, how: str) -> None:
    hostile.mode = mode
    with pytest.raises(RemoteRerankError, match=r"over the 16777216-byte cap.*batch_size="):
        call(cohere(hostile.url, timeout=30), how)


def test_every_connection_pool_of_the_sync_client_keeps_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rerank_kit._rerankers.remote.transport import bound_client

    # httpx's layout (transport -> pool -> network backend) is what the sync deadline wraps:
    # a change there must fail here, not silently drop the deadline inside headers
    assert bound_client(httpx.Client()) == 1
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = httpx.Client()
    assert bound_client(client) == 1 + len(client._mounts)
    assert bound_client(client) == 0  # never wrapped twice


def test_the_cap_is_a_setting(hostile: HostileServer) -> None:
    with pytest.raises(RemoteRerankError, match="over the 50-byte cap"):
        call(cohere(hostile.url, max_response_bytes=50), "sync")
    assert len(call(cohere(hostile.url, max_response_bytes=1000), "sync")) == 3
    with pytest.raises(ValueError, match="max_response_bytes must be a positive int"):
        cohere(hostile.url, max_response_bytes=0)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("nested-200", r"nests JSON deeper than 64 levels"),
        ("nested-500", r"server error HTTP 500 .* after 1 attempt\(s\): \[\[\[\["),
    ],
)
def test_deeply_nested_json_is_a_remote_rerank_error(
    hostile: HostileServer, mode: str, message: str, how: str
) -> None:
    hostile.mode = mode
    with pytest.raises(RemoteRerankError, match=f"^cohere: .*{message}"):
        call(cohere(hostile.url), how)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_refused_and_not_followed(
    hostile: HostileServer, status: int, how: str
) -> None:
    hostile.mode = f"redirect-{status}"
    with pytest.raises(RemoteRerankError, match=rf"^cohere: HTTP {status} from .* pointing to "):
        call(cohere(hostile.url, max_retries=2), how)
    assert [path for path, _ in hostile.seen] == ["/v2/rerank"]  # once, never to Location


# ----------------------------------------------------------------------- plain http


HOSTED = [
    "cohere:rerank-v3.5",
    "voyage:rerank-2.5",
    "jina:jina-reranker-v2-base-multilingual",
    "pinecone:bge-reranker-v2-m3",
    "zeroentropy:zerank-1-small",
]


@pytest.mark.parametrize("spec", HOSTED)
def test_http_to_a_hosted_provider_is_refused_without_the_opt_in(spec: str) -> None:
    with pytest.raises(RemoteRerankError, match="allow_insecure_http=True") as info:
        RemoteReranker(spec, api_key=LONG_KEY, base_url="http://10.1.2.3:8080")
    assert not leaks(LONG_KEY, str(info.value))
    opted = RemoteReranker(spec, api_key=LONG_KEY, base_url="http://10.1.2.3:8080",
                           allow_insecure_http=True)  # fmt: skip
    assert opted.url.startswith("http://10.1.2.3:8080/")
    assert load_reranker(spec, api_key=LONG_KEY, base_url="http://10.1.2.3:8080",
                         allow_insecure_http=True).name == spec  # fmt: skip
    RemoteReranker(spec, api_key=LONG_KEY, base_url="https://10.1.2.3:8080")  # https: fine


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"])
def test_loopback_needs_no_opt_in(host: str) -> None:
    reranker = RemoteReranker("cohere:rerank-v3.5", api_key=KEY, base_url=f"http://{host}:9")
    assert reranker.url == f"http://{host}:9/v2/rerank"


def test_self_hosted_engines_take_http_and_warn_once_about_a_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="rerank_kit"):
        RemoteReranker("tei:http://10.1.2.3:8080")
        RemoteReranker("infinity:http://10.1.2.3:7997#m")
        assert not caplog.records
        RemoteReranker("tei:http://10.1.2.3:8080", api_key=LONG_KEY)
        assert len(caplog.records) == 1 and "plain http://" in caplog.records[0].getMessage()
        RemoteReranker("tei:http://10.1.2.3:8080", api_key=LONG_KEY, allow_insecure_http=True)
        assert len(caplog.records) == 1
    assert not leaks(LONG_KEY, caplog.text)


@pytest.mark.parametrize("framework", ["langchain", "llamaindex"])
def test_the_adapters_take_the_same_opt_in(framework: str) -> None:
    remote = _adapter(framework)
    kwargs = {"base_url": "http://10.1.2.3:8080"}
    with pytest.raises(RemoteRerankError, match="allow_insecure_http=True"):
        remote(model="cohere:rerank-v3.5", api_key=LONG_KEY, model_kwargs=kwargs)
    built = remote(
        model="cohere:rerank-v3.5", api_key=LONG_KEY, model_kwargs=kwargs, allow_insecure_http=True
    )
    assert built.reranker.allow_insecure_http is True
    as_kwarg = {**kwargs, "allow_insecure_http": True}
    assert remote(model="cohere:rerank-v3.5", api_key=LONG_KEY, model_kwargs=as_kwarg).reranker


def _adapter(framework: str) -> Any:
    if framework == "langchain":
        pytest.importorskip("langchain_core")
        from langchain_rerank_kit import RemoteRerank

        return RemoteRerank
    pytest.importorskip("llama_index.core")
    from llamaindex_rerank_kit import RemoteRerank as LIRemoteRerank

    return LIRemoteRerank


# ----------------------------------------------------------------------- secrets masked


def test_the_key_is_not_in_the_clients_header_repr(fake: FakeRerankServer) -> None:
    reranker = RemoteReranker(
        "pinecone:bge-reranker-v2-m3", api_key=KEY, base_url=f"{fake.url}/pinecone"
    )
    assert not leaks(KEY, repr(reranker._client.headers))
    assert not leaks(KEY, repr(vars(reranker)))
    ranked = reranker.rerank(QUERY, TEXTS)  # the server checks Api-Key: the key is still sent
    assert sorted(r.index for r in ranked) == [0, 1, 2]
    assert fake.state.requests[-1].headers["Api-Key"] == KEY

    async def run() -> None:
        await reranker.arerank(QUERY, TEXTS)
        client = reranker._aclient()
        assert not leaks(KEY, repr(client.headers))

    asyncio.run(run())


@pytest.mark.parametrize("framework", ["langchain", "llamaindex"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_kwargs": {"api_key": LONG_KEY, "timeout": -1}},
        {"model_kwargs": {"api_key": LONG_KEY}, "top_n": 0},
        {"api_key": LONG_KEY, "top_n": 0},
        {"api_key": LONG_KEY, "score_threshold": float("nan")},
    ],
    ids=["model_kwargs-bad-timeout", "model_kwargs-bad-top_n", "api_key-bad-top_n", "nan"],
)
def test_the_key_is_not_in_validation_errors(framework: str, kwargs: dict[str, Any]) -> None:
    from pydantic import ValidationError

    original = json.dumps(kwargs, default=str)
    with pytest.raises(ValidationError) as info:
        _adapter(framework)(model="cohere:rerank-v3.5", **kwargs)
    assert not leaks(LONG_KEY, str(info.value)), str(info.value)
    assert not leaks(LONG_KEY, repr(info.value.errors()))
    assert json.dumps(kwargs, default=str) == original  # the caller's dicts untouched


def test_the_key_is_in_no_message_repr_or_log(
    fake: FakeRerankServer, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = cohere(f"{fake.url}/cohere", max_retries=1, retry=FAST)
    with caplog.at_level(logging.DEBUG):
        reranker.rerank(QUERY, TEXTS)
        fake.queue("500", "401")
        with pytest.raises(RemoteRerankError) as refused:
            reranker.rerank(QUERY, TEXTS)
        asyncio.run(reranker.arerank(QUERY, TEXTS))
    assert "HTTP 401" in str(refused.value) and "HTTP 500" in caplog.text
    for shown in (str(refused.value), repr(reranker), str(reranker), reranker.name, caplog.text):
        assert not leaks(KEY, shown)


def _tei(url: str, **kwargs: Any) -> RemoteReranker:
    host = url.removeprefix("http://")
    return RemoteReranker(f"tei:http://bob:{PASSWORD}@{host}/tei", max_retries=0, **kwargs)


def test_url_credentials_are_masked_where_shown_and_kept_in_the_cache_identity(
    fake: FakeRerankServer, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = _tei(fake.url)
    host = fake.url.removeprefix("http://")
    assert reranker.name == f"tei:http://***@{host}/tei"
    assert reranker.url == f"http://***@{host}/tei/rerank"
    # the score cache keys what the old name was, so entries cached before stay found
    assert reranker._score_identity() == f"tei:http://bob:{PASSWORD}@{host}/tei"
    with caplog.at_level(logging.DEBUG):
        scores = reranker.score(QUERY, TEXTS)
        fake.queue("500")
        with pytest.raises(RemoteRerankError) as failed:
            reranker.rerank(QUERY, TEXTS)
    assert scores == pytest.approx(relevance(QUERY, TEXTS))
    auth = fake.state.requests[0].headers["Authorization"]
    assert auth.startswith("Basic ")  # the credentials still reach the server
    assert "***@" in str(failed.value)
    for shown in (str(failed.value), repr(reranker), caplog.text):
        assert PASSWORD not in shown


def test_url_credentials_are_masked_in_connection_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteRerankError, match=r"could not reach http://\*\*\*@") as info:
        _tei(f"http://127.0.0.1:{port}").rerank(QUERY, TEXTS)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("framework", ["langchain", "llamaindex"])
def test_url_credentials_are_masked_in_adapter_repr_and_validation_errors(
    framework: str,
) -> None:
    from pydantic import ValidationError

    spec = f"tei:http://bob:{PASSWORD}@127.0.0.1:9"
    remote = _adapter(framework)
    adapter = remote(model=spec)
    assert PASSWORD not in repr(adapter) and PASSWORD not in str(adapter)
    assert adapter.model == spec  # the field keeps the spec (serialisation rebuilds from it)
    with pytest.raises(ValidationError) as info:
        remote(model=spec, top_n=0)
    assert not leaks(PASSWORD, str(info.value), window=4)


def test_tune_and_eval_reports_mask_url_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    from rerank_kit.evaluation._cli import _err
    from rerank_kit.learning._cli import _say

    _say(f"fold 1: tei:http://bob:{PASSWORD}@gpu:8080 over bm25")
    assert capsys.readouterr().out == "fold 1: tei:http://***@gpu:8080 over bm25\n"
    assert _err(f"tei:http://bob:{PASSWORD}@gpu:8080 failed") == 2
    assert capsys.readouterr().err == "rerank-kit eval: error: tei:http://***@gpu:8080 failed\n"


# ----------------------------------------------------------------------- Dask


class _Recording:
    """A Dask client that keeps every task's arguments, pickled as the scheduler gets them."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.pickled: list[bytes] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import cloudpickle

        self.pickled.append(cloudpickle.dumps((fn, args)))
        return self._client.submit(fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_dask_tasks_never_carry_the_key(fake: FakeRerankServer) -> None:
    distributed = pytest.importorskip("distributed")
    from rerank_kit import score_on_dask

    items = [(QUERY, TEXTS), ("stock market", TEXTS[::-1])]
    kwargs = {"api_key": KEY, "base_url": f"{fake.url}/cohere"}
    cluster = distributed.LocalCluster(
        host="127.0.0.1", protocol="tcp://", dashboard_address=None, n_workers=1, processes=False
    )
    try:
        with distributed.Client(cluster) as client:
            recording = _Recording(client)
            scores = score_on_dask(recording, "cohere:rerank-v3.5", items, reranker_kwargs=kwargs)
            graph = [pickle.dumps(ts.run_spec) for ts in cluster.scheduler.tasks.values()]
    finally:
        cluster.close()
    assert scores == [pytest.approx(relevance(q, list(t))) for q, t in items]
    assert len(recording.pickled) >= 2  # the probe and one partition at least
    for blob in recording.pickled + graph:
        assert KEY.encode() not in blob
    assert kwargs["api_key"] == KEY  # the caller's dict untouched


def test_a_worker_process_reads_the_key_from_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rerank_kit._distributed import _HELD, WorkerSecret, _task_kwargs

    task = _task_kwargs("cohere:rerank-v3.5", {"api_key": LONG_KEY, "timeout": 5})
    assert task["timeout"] == 5 and repr(task["api_key"]) == "<secret from $COHERE_API_KEY>"
    blob = pickle.dumps(task)
    assert not leaks(LONG_KEY, blob.decode("latin-1"))
    monkeypatch.setattr("rerank_kit._distributed._HELD", {})  # as in another process
    secret = pickle.loads(blob)["api_key"]
    assert isinstance(secret, WorkerSecret)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(RerankError, match=r"set COHERE_API_KEY in the workers' environment"):
        secret.reveal("cohere:rerank-v3.5")
    monkeypatch.setenv("COHERE_API_KEY", "sk-another-key")
    with pytest.raises(RerankError, match="holds another key"):
        secret.reveal("cohere:rerank-v3.5")
    monkeypatch.setenv("COHERE_API_KEY", LONG_KEY)
    assert secret.reveal("cohere:rerank-v3.5") == LONG_KEY
    assert LONG_KEY in _HELD.values()  # the client process still holds its own
