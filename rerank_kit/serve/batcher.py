"""Cross-request batching: concurrent requests for one model scored in one model call.

Each served model has one queue and one worker task. The worker takes the oldest request,
waits ``window_ms`` for others (none if the batch is already full), takes queued requests while
their pairs fit ``max_pairs``, and scores them in a worker thread through
``Reranker._rerank_groups``: one model call for every pair when the reranker's scores are
batch-independent (``Reranker.batch_independent``), so each request gets exactly the scores it
would get alone. A batch-dependent reranker (a listwise LLM, a cascade, a remote service) is
served one request per call. While a batch is scored, new requests queue up, so batches grow
with the load without any wait.

Backpressure: a full queue refuses a request at once (:class:`Overloaded`: 429 with
``Retry-After``); a request not answered by its deadline gets :class:`DeadlineExceeded` (504) and
is dropped from the queue if it has not started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rerank_kit._core.protocol import Reranker
from rerank_kit._core.ranking import RerankOptions
from rerank_kit._core.types import Ranked
from rerank_kit.serve.config import Batching

__all__ = ["Batcher", "DeadlineExceeded", "Overloaded"]

logger = logging.getLogger(__name__)

#: Workers per model whose calls may overlap (remote providers, LLM rerankers).
CONCURRENT_WORKERS = 8


class Overloaded(Exception):
    """The model's queue is full: retry after ``retry_after`` seconds."""

    def __init__(self, model: str, depth: int, retry_after: int) -> None:
        super().__init__(
            f"model {model!r} is busy: {depth} requests are queued; retry after {retry_after} s"
        )
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """A request was not answered within the server's deadline."""

    def __init__(self, model: str, seconds: float) -> None:
        super().__init__(f"model {model!r} did not answer within {seconds:g} s")


@dataclass(eq=False)
class _Job:
    query: str
    texts: list[str]
    options: RerankOptions
    future: asyncio.Future[list[Ranked]]
    deadline: float
    pairs: int = field(init=False)

    def __post_init__(self) -> None:
        self.pairs = max(1, len(self.texts))


class Batcher:
    """One model's queue and worker (start it inside the app's event loop).

    Args:
        name: The served model's name (for messages and metrics).
        reranker: The engine reranker.
        settings: Window, pair cap, queue size, deadline.
        on_batch: Called with ``(requests, pairs)`` for every model call (metrics).
        on_depth: Called with the queue depth when it changes (metrics).
    """

    def __init__(
        self,
        name: str,
        reranker: Reranker,
        settings: Batching,
        on_batch: Callable[[int, int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.reranker = reranker
        self.settings = settings
        #: Requests are scored together only when the reranker's scores allow it.
        self.cross_request = bool(getattr(reranker, "batch_independent", False))
        self._on_batch = on_batch or (lambda requests, pairs: None)
        self._on_depth = on_depth or (lambda depth: None)
        self._queue: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        #: One worker for a local model (calls into it are serialised anyway); several for a
        #: reranker whose calls may overlap (``serialise = False``: remote, LLM).
        self.workers = 1 if getattr(reranker, "serialise", True) else CONCURRENT_WORKERS

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being scored)."""
        return len(self._queue)

    def start(self) -> None:
        """Start the worker task in the running event loop."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(), name=f"batch-{self.name}-{i}")
            for i in range(self.workers)
        ]

    async def stop(self) -> None:
        """Let queued requests finish, then stop the worker."""
        deadline = time.monotonic() + self.settings.deadline_s
        while (self._queue or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    async def submit(
        self, query: str, texts: Sequence[str], options: RerankOptions
    ) -> list[Ranked]:
        """Queue one request and wait for its results.

        Raises:
            Overloaded: The queue is full.
            DeadlineExceeded: No answer within ``deadline_s``.
        """
        if self._wake is None:
            raise RuntimeError(f"the batcher of {self.name!r} is not started")
        settings = self.settings
        if len(self._queue) >= settings.max_queue:
            raise Overloaded(self.name, len(self._queue), settings.retry_after_s)
        loop = asyncio.get_running_loop()
        job = _Job(query, list(texts), options, loop.create_future(), 0.0)
        job.deadline = time.monotonic() + settings.deadline_s
        self._queue.append(job)
        self._on_depth(len(self._queue))
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), settings.deadline_s)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(self.name, settings.deadline_s) from None
        finally:
            if not job.future.done():
                job.future.cancel()  # the worker skips it if it has not started

    def _take(self) -> list[_Job]:
        """The next batch: the oldest live request, then others while their pairs fit."""
        now = time.monotonic()
        batch: list[_Job] = []
        pairs = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the client left or timed out
                self._queue.popleft()
                continue
            if job.deadline <= now:
                self._queue.popleft()
                job.future.set_exception(DeadlineExceeded(self.name, self.settings.deadline_s))
                continue
            if batch and (not self.cross_request or pairs + job.pairs > self.settings.max_pairs):
                break
            self._queue.popleft()
            batch.append(job)
            pairs += job.pairs
        self._on_depth(len(self._queue))
        return batch

    async def _work(self) -> None:
        wake = self._wake
        if wake is None:
            raise RuntimeError("start() sets the wake-up event")
        window = self.settings.window_ms / 1000.0
        while True:
            if not self._queue:
                wake.clear()
                await wake.wait()
                continue
            if self.cross_request and window > 0:
                queued = sum(j.pairs for j in self._queue)
                if queued < self.settings.max_pairs:
                    await asyncio.sleep(window)  # let concurrent requests join
            batch = self._take()
            if not batch:
                continue
            self._busy += 1
            try:
                await self._score(batch)
            finally:
                self._busy -= 1

    async def _score(self, batch: list[_Job]) -> None:
        requests = [(job.query, job.texts, job.options) for job in batch]
        try:
            results = await asyncio.to_thread(self.reranker._rerank_groups, requests)
        except Exception as exc:  # every request of the batch gets the error
            if len(batch) > 1:  # one bad request must not fail the others: score them alone
                for job in batch:
                    await self._score([job])
                return
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self._on_batch(len(batch), sum(len(job.texts) for job in batch))
        for job, ranked in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(ranked)
