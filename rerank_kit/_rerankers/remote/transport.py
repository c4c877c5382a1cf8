"""Bounded answers: a total deadline per request, a body-size cap, bounded JSON nesting.

The decisions live here once, for the sync and async loops alike:

- :class:`Deadline`: when an attempt must be over (``timeout`` seconds after it starts, for
  connecting, sending and every read together, however slowly a server drips its bytes);
- :class:`BodyReader`: takes the body chunk by chunk, refuses it past the size cap (announced
  by ``Content-Length`` or counted) and stops at the deadline between chunks;
- :class:`Reply`: the finished answer (status, headers, body), whose ``json()`` refuses JSON
  nested deeper than :data:`MAX_JSON_DEPTH` levels instead of raising ``RecursionError``.

The sync loop enforces the deadline inside every socket operation as well (:func:`bound_client`
wraps the connection pools' network backend, so a read never waits past the deadline, also
while the headers arrive); the async loop runs each attempt under ``anyio.fail_after``.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rerank_kit._rerankers.remote.errors import RemoteRerankError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_JSON_DEPTH",
    "BodyReader",
    "Deadline",
    "DeadlineExceeded",
    "JSONTooDeep",
    "Reply",
    "bound_client",
    "parse_json",
]

#: Default cap on an answer's (decoded) body: a rerank answer for 1,000 documents is ~60 KB.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Deepest JSON nesting accepted in an answer (a rerank answer nests 3 levels).
MAX_JSON_DEPTH = 64

#: The monotonic time the running sync attempt must end by (``None``: no deadline).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "rerank_kit_remote_deadline", default=None
)


class DeadlineExceeded(TimeoutError):
    """The attempt's total time ran out (between chunks of the body)."""


class JSONTooDeep(ValueError):
    """The body nests JSON deeper than :data:`MAX_JSON_DEPTH` levels."""


class Deadline:
    """When one attempt must be over: ``timeout`` seconds after it starts.

    Example:
        >>> d = Deadline(5.0)
        >>> 0 < d.left() <= 5.0
        True
    """

    __slots__ = ("at",)

    def __init__(self, timeout: float) -> None:
        self.at = time.monotonic() + timeout

    def left(self) -> float:
        """Seconds left (<= 0 once passed)."""
        return self.at - time.monotonic()

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` once the deadline has passed."""
        if self.left() <= 0:
            raise DeadlineExceeded("the request's total deadline passed")

    def activate(self) -> contextvars.Token[float | None]:
        """Make the deadline bind every socket operation of this context (sync loop)."""
        return _DEADLINE.set(self.at)

    @staticmethod
    def deactivate(token: contextvars.Token[float | None]) -> None:
        _DEADLINE.reset(token)


def parse_json(content: bytes) -> Any:
    """``json.loads`` that refuses nesting deeper than :data:`MAX_JSON_DEPTH` levels.

    Raises:
        JSONTooDeep: Nested too deep (a ``ValueError``, never a ``RecursionError``).
        ValueError: Not JSON.

    Example:
        >>> parse_json(b'{"results": [{"index": 0}]}')
        {'results': [{'index': 0}]}
        >>> parse_json(b"[" * 100_000)
        Traceback (most recent call last):
        ...
        rerank_kit._rerankers.remote.transport.JSONTooDeep: JSON nested deeper than 64 levels
    """
    too_deep = JSONTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(content)
    except RecursionError:
        raise too_deep from None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:  # iterative: the check itself never recurses
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise too_deep
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return data


@dataclass(frozen=True)
class Reply:
    """A whole answer, read within the deadline and the size cap.

    Attributes:
        status_code: The HTTP status.
        headers: The response headers.
        content: The (decoded) body.
        reason_phrase: The status's reason phrase.
    """

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    reason_phrase: str = ""

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (see :func:`parse_json`)."""
        return parse_json(self.content)


class BodyReader:
    """Collects one answer's body within the size cap and the deadline.

    Args:
        response: The streamed ``httpx.Response`` (status and headers received).
        provider: The provider, for errors.
        url: The URL shown in errors (credentials masked).
        max_bytes: The size cap (the reranker's ``max_response_bytes``).
        deadline: The attempt's deadline.

    Raises:
        RemoteRerankError: The body is (or says it is) over ``max_bytes``.
    """

    def __init__(
        self, response: Any, *, provider: str, url: str, max_bytes: int, deadline: Deadline
    ) -> None:
        self.response = response
        self.provider = provider
        self.url = url
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.size = 0
        self.chunks: list[bytes] = []
        announced = response.headers.get("Content-Length", "")
        if announced.strip().isdigit() and int(announced) > max_bytes:
            raise self._too_large(f"announces {int(announced)} bytes")

    def _too_large(self, what: str) -> RemoteRerankError:
        return RemoteRerankError(
            self.provider,
            f"the answer from {self.url} {what}, over the {self.max_bytes}-byte cap "
            f"(HTTP {self.response.status_code}); send fewer documents per request "
            "(batch_size=) or raise max_response_bytes= if the server is trusted",
            self.response.status_code,
        )

    def feed(self, chunk: bytes) -> None:
        """Take one chunk; raise past the cap or the deadline."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self._too_large(f"is over {self.max_bytes} bytes")
        self.chunks.append(chunk)
        self.deadline.check()

    def reply(self) -> Reply:
        """The finished answer."""
        response = self.response
        return Reply(
            response.status_code,
            response.headers,
            b"".join(self.chunks),
            getattr(response, "reason_phrase", "") or "",
        )


# -- the sync deadline inside every socket operation -------------------------------------


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


@functools.cache
def _stream_class() -> type:
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        """A network stream whose every read and write ends by the attempt's deadline."""

        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            data: bytes = self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))
            return data

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> Any:
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    return DeadlineStream


@functools.cache
def _backend_class() -> type:
    import httpcore

    stream_class = _stream_class()

    class DeadlineBackend(httpcore.NetworkBackend):
        """Wraps a network backend: connections and their streams end by the deadline."""

        def __init__(self, backend: Any) -> None:
            self._backend = backend

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
            return stream_class(stream)

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> Any:
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            return stream_class(self._backend.connect_unix_socket(path, bounded, socket_options))

        def sleep(self, seconds: float) -> None:
            self._backend.sleep(seconds)

    return DeadlineBackend


def bound_client(client: Any) -> int:
    """Make every connection pool of the sync ``httpx.Client`` honour the deadline.

    Wraps the network backend of the client's transport and of its proxy mounts (httpx builds
    them from ``HTTP(S)_PROXY``). Returns how many pools were wrapped; where httpx's layout
    differs (0), the deadline still holds between the body's chunks.
    """
    backend_class = _backend_class()
    transports = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    wrapped = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None or isinstance(backend, backend_class):
            continue
        pool._network_backend = backend_class(backend)  # type: ignore[union-attr]
        wrapped += 1
    return wrapped
