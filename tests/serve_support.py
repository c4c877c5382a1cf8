"""Helpers for the ``rerank-kit serve`` tests: the server in a thread or in a subprocess.

``ServerThread`` runs uvicorn in a thread of the test process on a socket bound to 127.0.0.1
(port 0, backlog 512). ``python serve_support.py PORT DELAY`` runs the real ``serve()`` (the
CLI's path, SIGTERM handling included) over a ``SlowFake`` in a subprocess, for the SIGTERM and
memory tests.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from rerank_kit.testing import FakeReranker

KEY = "sk-serve-test-0123456789"


class SlowFake(FakeReranker):
    """``FakeReranker`` whose every model call takes ``delay`` seconds, plus a tiny offset.

    The offset (from the text's length) keeps scores distinct, so an order is meaningful.
    """

    def __init__(self, delay: float = 0.0, name: str = "slow-fake") -> None:
        super().__init__(name)
        self.delay = delay
        self.groups: list[int] = []  # requests per model call

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        self.groups.append(1)
        time.sleep(self.delay)
        base = super()._score_pairs(query, texts)
        return [b + (len(t) % 97) * 1e-4 for b, t in zip(base, texts, strict=True)]

    def _score_groups(self, groups: list[tuple[str, list[str]]]) -> list[Sequence[float]]:  # type: ignore[override]
        if not self.batch_independent:
            return [self._score_pairs(q, t) for q, t in groups]
        self.groups.append(len(groups))
        self.calls += 1
        time.sleep(self.delay)
        out: list[Sequence[float]] = []
        for query, texts in groups:
            base = FakeReranker._score_pairs(self, query, texts)
            self.calls -= 1  # counted once above
            out.append([b + (len(t) % 97) * 1e-4 for b, t in zip(base, texts, strict=True)])
        return out


class BatchDependentFake(SlowFake):
    """The same scores, but declared batch-dependent: the server must not batch it."""

    batch_independent = False


def loopback_socket(backlog: int = 512) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 and a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def wait_ready(url: str, timeout: float = 60.0, proc: Any = None, path: str = "/ready") -> None:
    """Poll ``path`` until 200 (or fail after ``timeout`` seconds)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout} s")


class ServerThread:
    """``with ServerThread(app) as url:`` serves ``app`` on 127.0.0.1 in a thread."""

    def __init__(self, app: Any, ready: str = "/ready") -> None:
        import uvicorn

        self._ready = ready
        self._sock = loopback_socket()
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> str:
        self._thread.start()
        wait_ready(self.url, 30.0, path=self._ready)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()


def main(argv: list[str]) -> None:
    """Serve a ``SlowFake`` (model ``fast``) with the CLI's ``serve()`` on ``PORT``."""
    from rerank_kit.serve import ApiKeys, ModelEntry, ServeConfig, serve

    port, delay = int(argv[0]), float(argv[1])
    config = ServeConfig((ModelEntry("fast", "slow-fake"),))
    serve(
        config,
        port=port,
        api_keys=ApiKeys([KEY]),
        models={"fast": SlowFake(delay)},
        log_level="warning",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
