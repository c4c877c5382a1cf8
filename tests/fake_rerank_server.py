"""A real HTTP server on 127.0.0.1 that speaks each rerank provider's documented protocol.

Routes are ``/<provider><endpoint path>`` (so a test points ``base_url`` at ``URL/<provider>``);
a bare ``/rerank`` is TEI's, as a real TEI router serves it (``tei:URL`` works too).
For every request it checks what a real provider checks (path, auth header, version header,
required body fields, the per-request document limit), records it, and answers with the
provider's documented response layout or error body. Faults can be queued: each request pops
one (``429`` with ``Retry-After``, ``500``, ``503``, ``drop`` the connection, ``slow`` past the
client's timeout, ``malformed`` JSON, ``out_of_range`` / ``duplicate`` / ``missing`` indices, a
``non_numeric`` score, ``400``, ``401``).

Scores are deterministic (``rerank_kit.testing.FakeReranker``: share of query words in the
document) plus a tiny per-document offset, so ties cannot hide a misplaced score.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rerank_kit.testing import FakeReranker

KEY = "sk-test-0123456789abcdef"

#: provider -> (endpoint path, auth header, auth value template, per-request document limit)
ROUTES: dict[str, tuple[str, str | None, str, int]] = {
    "cohere": ("/v2/rerank", "Authorization", "Bearer {key}", 1000),
    "voyage": ("/v1/rerank", "Authorization", "Bearer {key}", 1000),
    "jina": ("/v1/rerank", "Authorization", "Bearer {key}", 1000),
    "pinecone": ("/rerank", "Api-Key", "{key}", 100),
    "zeroentropy": ("/v1/models/rerank", "Authorization", "Bearer {key}", 10_000),
    "tei": ("/rerank", None, "", 32),
    "infinity": ("/rerank", None, "", 2048),
    "llamacpp": ("/v1/rerank", None, "", 100_000),  # no count cap: the batch limit below
}

#: llama-server's default physical batch (--ubatch-size): a longer pair is refused with a 500.
LLAMACPP_UBATCH = 512
LLAMACPP_TOO_LARGE = "input is too large to process. increase the physical batch size"

_FAKE = FakeReranker()


def relevance(query: str, docs: list[str]) -> list[float]:
    """The scores this server gives: word overlap, plus a tiny offset from the text's length."""
    base = _FAKE.score(query, docs)
    return [round(float(b) + (len(d) % 97) * 1e-4, 6) for b, d in zip(base, docs, strict=True)]


@dataclass
class Recorded:
    """One request the server received."""

    provider: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class State:
    """What the server does and what it saw."""

    faults: deque[str] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    delay: float = 0.0
    slow: float = 2.0
    retry_after: str = "0.3"
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server_key: str | None = None  # for self-hosted engines started with --api-key


def error_body(provider: str, status: int, message: str) -> Any:
    """The provider's documented error body."""
    if provider == "cohere":
        return {"id": str(uuid.uuid4()), "message": message}
    if provider == "pinecone":
        codes = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED"}
        return {
            "error": {"code": codes.get(status, "UNKNOWN"), "message": message},
            "status": status,
        }
    if provider == "tei":
        kinds = {413: "validation", 422: "validation", 429: "overloaded", 401: "unauthorized"}
        return {"error": message, "error_type": kinds.get(status, "backend")}
    if provider == "infinity":
        return {"error": {"message": message, "type": None, "param": None, "code": status}}
    if provider == "llamacpp":  # llama.cpp server's format_error_response
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"code": status, "message": message, "type": kind}}
    return {"detail": message}  # voyage, jina, zeroentropy (FastAPI-style)


def success_body(provider: str, model: str, results: list[tuple[int, float]]) -> Any:
    """The provider's documented response layout for ``(index, score)`` pairs, best first."""
    if provider == "tei":
        return [{"index": i, "score": s} for i, s in results]
    if provider == "pinecone":
        return {
            "model": model,
            "data": [{"index": i, "score": s} for i, s in results],
            "usage": {"rerank_units": 1},
        }
    items = [{"index": i, "relevance_score": s} for i, s in results]
    if provider == "cohere":
        return {
            "id": str(uuid.uuid4()),
            "results": items,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        }
    if provider == "voyage":
        return {"object": "list", "data": items, "model": model, "usage": {"total_tokens": 42}}
    if provider == "jina":
        return {"model": model, "usage": {"total_tokens": 42}, "results": items}
    if provider == "llamacpp":  # format_response_rerank: sorted by score, every document
        return {
            "model": model or "bge-reranker-v2-m3-Q8_0.gguf",
            "object": "list",
            "usage": {"prompt_tokens": 42, "total_tokens": 42},
            "results": items,
        }
    if provider == "zeroentropy":
        return {
            "results": items,
            "total_bytes": 1,
            "total_tokens": 1,
            "actual_latency_mode": "fast",
        }
    return {  # infinity
        "object": "rerank",
        "results": items,
        "model": model,
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
        "id": f"infinity-{uuid.uuid4()}",
        "created": int(time.time()),
    }


def _documents(provider: str, body: Any) -> tuple[str, list[str]] | str:
    """(query, documents) from a request body, or what is wrong with it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    query = body.get("query")
    if not isinstance(query, str) or not query:
        return "query is required"
    needs_model = provider not in ("tei", "infinity", "llamacpp")
    if needs_model and not isinstance(body.get("model"), str):
        return "model is required"
    if provider == "llamacpp" and "model" in body and not isinstance(body["model"], str):
        return '"model" must be a string'
    raw = body.get("texts") if provider == "tei" else body.get("documents")
    if provider == "llamacpp" and (
        not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw)
    ):
        return '"documents" must be a non-empty string array'  # llama.cpp's wording
    if not isinstance(raw, list) or not raw:
        return "documents must be a non-empty list"
    if provider == "pinecone":
        if not all(isinstance(d, dict) and isinstance(d.get("text"), str) for d in raw):
            return "each document must be an object with a 'text' field"
        return query, [d["text"] for d in raw]
    if not all(isinstance(d, str) for d in raw):
        return "each document must be a string"
    return query, list(raw)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms stall)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        state = self.server.state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._handle(state)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _handle(self, state: State) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = "/tei/rerank" if self.path == "/rerank" else self.path  # TEI serves the root
        provider, _, rest = path.lstrip("/").partition("/")
        route = ROUTES.get(provider)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with state.lock:
            state.requests.append(Recorded(provider, "/" + rest, dict(self.headers), body))
            fault = state.faults.popleft() if state.faults else None
        if route is None or "/" + rest != route[0]:
            self._send(404, {"detail": "Not Found"})
            return
        _, auth_header, auth_value, limit = route
        if state.delay:
            time.sleep(state.delay)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(state.slow)
        if fault == "429":
            self._send(
                429,
                error_body(provider, 429, "Too many requests, slow down"),
                {"Retry-After": state.retry_after},
            )
            return
        if fault in ("500", "503"):
            status = int(fault)
            self._send(status, error_body(provider, status, "internal error, please retry"))
            return
        expected = auth_value.format(key=KEY)
        if auth_header is None and state.server_key:
            auth_header, expected = "Authorization", f"Bearer {state.server_key}"
        if fault == "401" or (auth_header and self.headers.get(auth_header) != expected):
            self._send(401, error_body(provider, 401, "invalid api token"))
            return
        if provider == "pinecone" and self.headers.get("X-Pinecone-Api-Version") != "2025-10":
            self._send(400, error_body(provider, 400, "X-Pinecone-Api-Version header missing"))
            return
        parsed = _documents(provider, body)
        if fault == "400":
            parsed = "model 'nope' not found: unknown model"
        if isinstance(parsed, str):
            self._send(422 if provider == "tei" else 400, error_body(provider, 400, parsed))
            return
        query, docs = parsed
        if len(docs) > limit:
            status = 413 if provider == "tei" else 400
            self._send(status, error_body(provider, status, f"at most {limit} documents"))
            return
        if provider == "llamacpp" and any(
            len(query.split()) + len(d.split()) + 4 > LLAMACPP_UBATCH for d in docs
        ):  # a word stands for a token here
            self._send(500, error_body(provider, 500, LLAMACPP_TOO_LARGE))
            return
        if provider == "zeroentropy":
            used = sum(150 + len(query.encode()) + len(d.encode()) for d in docs)
            if used > 5_000_000:
                self._send(400, error_body(provider, 400, "payload over 5,000,000 bytes"))
                return
        scores = relevance(query, docs)
        order = sorted(range(len(docs)), key=lambda i: -scores[i])
        results: list[tuple[int, Any]] = [(i, scores[i]) for i in order]
        if fault == "malformed":
            self._send(200, b'{"results": [{"index": 0, "relevance_score": 0.5}')
            return
        if fault == "out_of_range":
            results[0] = (len(docs), results[0][1])
        elif fault == "duplicate" and len(results) > 1:
            results[1] = (results[0][0], results[1][1])
        elif fault == "missing":
            results = results[:-1]
        elif fault == "non_numeric":
            results[0] = (results[0][0], "high")
        self._send(200, success_body(provider, str((body or {}).get("model", "")), results))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: 100+ clients connect at once in the tests
    state: State

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected here


class FakeRerankServer:
    """Start with ``with FakeRerankServer() as server:``; ``server.url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.state = State()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeRerankServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *faults: str) -> None:
        """Faults for the next requests, one each, in order."""
        self.state.faults.extend(faults)
