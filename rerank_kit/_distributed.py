"""Batch scoring on a Dask cluster: many ``(query, candidates)`` items, one reranker spec.

The client side (:func:`score_on_dask`) drops what a score cache already holds, groups the rest
into partitions of whole items sized by candidate count, keeps a bounded number of partitions in
flight, writes each finished partition to the cache and puts the scores back in input order.
The worker side (:func:`_score_partition`) builds the reranker from its spec once per worker
process (a per-process cache keyed by spec and settings) and scores each item in one call, as
the in-process path scores one query's candidates, so the scores are the ones an in-process run
gives. Dask's scheduler does the rest: placement, ``resources=`` (GPU workers), and re-running
the tasks of a worker that died on the workers left.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rerank_kit._core import telemetry
from rerank_kit._core.checks import check_query, check_texts, is_blank
from rerank_kit._core.errors import RerankError, missing_extra
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit._core.scoring import EMPTY_SCORE
from rerank_kit._rerankers.remote.security import mask_credentials

__all__ = ["DEFAULT_PARTITION_PAIRS", "WorkerSecret", "dask_client", "score_on_dask"]

logger = logging.getLogger(__name__)

#: Pairs per task: at 20-45 ms a pair on a CPU core, 10-20 s of work, enough to hide Dask's
#: per-task cost (milliseconds) and little to redo when a worker is lost.
DEFAULT_PARTITION_PAIRS = 500

_MODELS: dict[tuple[str, str, str | None], Reranker] = {}
_MODELS_LOCK = threading.Lock()

Item = tuple[str, Sequence[str]]

#: ``reranker_kwargs`` that are secrets: never put in the task graph (see ``WorkerSecret``).
SECRET_KWARGS = ("api_key",)
_SALT = os.urandom(16).hex()
#: Secrets this process holds, by digest: an in-process worker (threads) reads them here.
_HELD: dict[str, str] = {}


def _digest(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


class WorkerSecret:
    """A secret ``reranker_kwargs`` value sent to Dask workers without its value.

    What travels in the task graph (and so sits in the scheduler) is the name of the
    environment variable that holds it on the workers and a salted digest; its ``repr`` is
    ``<secret from $NAME>``. A worker in the client's process (threads, ``processes=False``)
    reads the value the client holds; a worker process reads the variable from its own
    environment (the provider's, e.g. ``COHERE_API_KEY``: workers started from a shell or
    ``local:N`` inherit it) and checks it against the digest.

    Example:
        >>> secret = WorkerSecret.hold("sk-123", "COHERE_API_KEY")
        >>> secret
        <secret from $COHERE_API_KEY>
        >>> secret.reveal("cohere:rerank-v3.5")
        'sk-123'
    """

    __slots__ = ("digest", "env", "salt")

    def __init__(self, env: str, salt: str, digest: str) -> None:
        self.env, self.salt, self.digest = env, salt, digest

    @classmethod
    def hold(cls, value: str, env: str) -> WorkerSecret:
        """A reference to ``value``, which this process keeps."""
        digest = _digest(_SALT, value)
        _HELD[digest] = value
        return cls(env, _SALT, digest)

    def __repr__(self) -> str:
        return f"<secret from ${self.env}>"

    def __reduce__(self) -> tuple[Any, tuple[str, str, str]]:
        return (WorkerSecret, (self.env, self.salt, self.digest))

    def reveal(self, spec: str) -> str:
        """The value, on a worker.

        Raises:
            RerankError: Neither this process nor its ``env`` variable holds it.
        """
        value = _HELD.get(self.digest)
        if value is not None:
            return value
        value = os.environ.get(self.env)
        if value and _digest(self.salt, value) == self.digest:
            return value
        state = "holds another key" if value else "is not set"
        raise RerankError(
            f"{mask_credentials(spec)}: the API key is not sent in the Dask task graph, and "
            f"${self.env} "
            f"{state} on this worker: set {self.env} in the workers' environment to the key "
            "given to score_on_dask"
        )


def _secret_env(spec: str) -> str:
    from rerank_kit._rerankers.remote.providers import PROFILES

    provider = spec.partition(":")[0].strip().lower()
    profile = PROFILES.get(provider)
    env = profile.endpoint.key_env if profile is not None else None
    return env or f"RERANK_KIT_{provider.upper().replace('-', '_')}_API_KEY"


def _task_kwargs(spec: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``reranker_kwargs`` for the task graph: secret values replaced by ``WorkerSecret``."""
    out = dict(kwargs)
    for name in SECRET_KWARGS:
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = WorkerSecret.hold(value, _secret_env(spec))
    return out


def _model_key(kwargs: Mapping[str, Any]) -> str:
    shown = {k: (v.digest if isinstance(v, WorkerSecret) else v) for k, v in kwargs.items()}
    return repr(sorted(shown.items()))


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise missing_extra("dask", "dask.distributed", exc) from exc
    return distributed


# -- the worker side ---------------------------------------------------------------------


def _worker_model(spec: str, kwargs: Mapping[str, Any], long_documents: str | None) -> Reranker:
    """The reranker of ``spec`` in this process: built on first use, then reused by every task."""
    key = (spec, _model_key(kwargs), long_documents)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from rerank_kit._registry import load_reranker

            try:
                revealed = {
                    k: (v.reveal(spec) if isinstance(v, WorkerSecret) else v)
                    for k, v in kwargs.items()
                }
                model = load_reranker(spec, **revealed)
                if long_documents is not None:
                    model.set_long_documents(long_documents)
            except Exception as exc:
                # no chained cause: the error travels back pickled, and some causes do not
                raise RerankError(
                    f"{mask_credentials(spec)!r} failed to load on Dask worker {_worker_address()} "
                    f"(pid {os.getpid()}): {type(exc).__name__}: {exc}"
                ) from None
            _MODELS[key] = model
            logger.info("loaded %s in worker process %d", spec, os.getpid())
    return model


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "(not in a worker)"


def _probe(spec: str, kwargs: Mapping[str, Any], long_documents: str | None) -> tuple[str, bool]:
    """``(cache key, keeps a score cache)`` of the spec's reranker, as a worker builds it.

    The key is the reranker's score identity (its ``name``, plus the batch-independence rule
    of its graph, e.g. ``"NAME [scores=int8-per-token/1]"``), as the in-process path keys it.
    """
    model = _worker_model(spec, kwargs, long_documents)
    return model._score_identity(), "_score_cache" in model.__dict__


def _score_partition(
    spec: str,
    kwargs: Mapping[str, Any],
    long_documents: str | None,
    items: list[tuple[str, list[str]]],
    trace: Mapping[str, str] | None = None,
) -> list[tuple[list[float], list[bool]]]:
    """Scores and truncation flags of each item's texts (no blanks), one model call per item.

    ``trace``: the client's trace context (``telemetry.carrier()``): the partition's span is
    then a child of the client's ``score_on_dask`` span, on whichever worker it runs.
    """
    pairs = sum(len(texts) for _, texts in items)
    with telemetry.traced_from(trace, "rerank_kit.dask.partition", **{"rerank_kit.pairs": pairs}):
        model = _worker_model(spec, kwargs, long_documents)
        out: list[tuple[list[float], list[bool]]] = []
        for query, texts in items:
            result = model._scored(query, texts)
            out.append((list(result.scores), list(result.truncated or [False] * len(texts))))
    return out


# -- the client side ---------------------------------------------------------------------


def _result(future: Any, what: str) -> Any:
    """``future.result()``, with a worker's failure raised as a ``RerankError`` naming ``what``."""
    distributed = _require_distributed()
    try:
        return future.result()
    except distributed.KilledWorker as exc:
        raise RerankError(
            f"{what}: Dask lost the workers running a task too many times ({exc})"
        ) from exc
    except RerankError:
        raise
    except Exception as exc:  # what the worker raised, as Dask could bring it back
        raise RerankError(f"{what}: a Dask worker failed: {exc}") from exc


def _parse_local(address: str) -> int | None:
    if not address.startswith("local:"):
        return None
    count = address.partition(":")[2]
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--dask local:N needs a positive worker count, got {address!r}")
    return int(count)


@contextlib.contextmanager
def dask_client(address: str, *, timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address``, closed (with its cluster) on exit.

    ``address`` is a scheduler address (``tcp://HOST:8786``) or ``local:N``: a ``LocalCluster``
    of ``N`` worker processes, one thread each, bound to 127.0.0.1, without a dashboard.

    Args:
        address: Scheduler address, or ``local:N``.
        timeout: Seconds to wait for the scheduler (``None``: Dask's
            ``distributed.comm.timeouts.connect``, 30 s by default).

    Raises:
        RerankError: The scheduler did not answer within the timeout.

    Example:
        >>> with dask_client("local:2") as client:  # doctest: +SKIP
        ...     scores = score_on_dask(client, "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", items)
    """
    distributed = _require_distributed()
    if not isinstance(address, str) or not address.strip():
        raise ValueError("the Dask address must be a scheduler address or 'local:N'")
    address = address.strip()
    workers = _parse_local(address)
    if workers is not None:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    wait = "Dask's connect timeout" if timeout is None else f"{timeout:g} s"
    try:
        wait_for = {} if timeout is None else {"timeout": timeout}
        client = distributed.Client(address, set_as_default=False, **wait_for)
    except (OSError, TimeoutError) as exc:
        raise RerankError(
            f"the Dask scheduler at {address} did not answer within {wait} ({exc}); "
            "start it (dask scheduler) or check the address"
        ) from exc
    with client:
        yield client


def _pending_items(
    name: str | None, items: list[tuple[str, list[str]]], cache: ScoreCache | None
) -> tuple[list[tuple[int, str, list[str]]], dict[tuple[str, str], tuple[float, bool]]]:
    """The texts each item still needs, and what the cache answered.

    As ``ScorePlan`` does for one call: blanks never go to the model, a text repeated in an
    item is scored once, and a pair already answered (by the cache or by an earlier item of
    the same query) is not sent again.
    """
    known: dict[tuple[str, str], tuple[float, bool]] = {}
    sent: set[tuple[str, str]] = set()
    pending: list[tuple[int, str, list[str]]] = []
    for i, (query, texts) in enumerate(items):
        distinct = [t for t in dict.fromkeys(texts) if not is_blank(t)]
        if cache is not None and name is not None:
            for text, hit in zip(distinct, cache.get(name, query, distinct), strict=True):
                if hit is not None:
                    known[(query, text)] = hit
        todo = [t for t in distinct if (query, t) not in known and (query, t) not in sent]
        sent.update((query, t) for t in todo)
        if todo:
            pending.append((i, query, todo))
    return pending, known


def _partitions(
    pending: list[tuple[int, str, list[str]]], size: int
) -> list[list[tuple[int, str, list[str]]]]:
    """Consecutive whole items, about ``size`` pairs each (an item is never split)."""
    parts: list[list[tuple[int, str, list[str]]]] = []
    current: list[tuple[int, str, list[str]]] = []
    pairs = 0
    for entry in pending:
        if current and pairs + len(entry[2]) > size:
            parts.append(current)
            current, pairs = [], 0
        current.append(entry)
        pairs += len(entry[2])
    if current:
        parts.append(current)
    return parts


@telemetry.spanned("rerank_kit.score_on_dask")
def score_on_dask(
    client: Any,
    spec: str,
    items: Sequence[Item],
    *,
    reranker_kwargs: Mapping[str, Any] | None = None,
    long_documents: str | None = None,
    score_cache: str | os.PathLike[str] | ScoreCache | None = None,
    partition_pairs: int = DEFAULT_PARTITION_PAIRS,
    resources: Mapping[str, float] | None = None,
    show_progress: bool = False,
) -> list[list[float]]:
    """Score many ``(query, candidates)`` items with a reranker spec on a Dask cluster.

    Each worker process builds the reranker once (``load_reranker(spec, **reranker_kwargs)``,
    then ``set_long_documents``) and keeps it for every later task. Work goes out in
    partitions of whole items, about ``partition_pairs`` pairs each, a few per worker thread
    in flight at a time; each item is scored in one model call, as an in-process
    ``Reranker.score`` would score it, so the scores are those of an in-process run (for the
    int8 ONNX model, whose scores can move in the 6th digit with batch composition, within the
    same tolerance as in-process runs with different batches). A worker that dies mid-run
    loses only its tasks, which the scheduler runs again on the others; an error on a worker
    (a model that fails to load) stops the run with that worker's message.

    With ``score_cache`` (a ``ScoreCache`` or a JSON-lines file, as ``rerank-kit eval`` and
    ``tune`` use), pairs already in it are not sent, and every finished partition is written
    to it at once: a run that is stopped and started again scores only what is missing, and
    ``compare``/``tune``/``rerank-kit eval --score-cache`` read the scores from it afterwards.
    The cache is keyed by the reranker's score identity (``name`` plus its scoring rule),
    as built on the workers.

    Setup:
        ``pip install "rerank-kit[dask]"`` on the client and on every worker, with the extra
        the spec needs (e.g. ``rerank-kit[bundled]``); workers must reach the model (a Hub id
        in their cache or a path they can read).

    Args:
        client: A ``distributed.Client`` (see ``dask_client``).
        spec: A single-model ``load_reranker`` spec (a cascade's stages score separately).
        items: ``(query, texts)`` pairs; queries and texts are checked as ``score`` checks them.
        reranker_kwargs: Keyword arguments for ``load_reranker`` on the workers, e.g.
            ``{"device": "cuda"}`` for GPU workers. An ``api_key`` is not put in the task
            graph: the tasks carry a :class:`WorkerSecret` instead, which workers in this
            process resolve at once and worker processes from their environment (the
            provider's variable, e.g. ``COHERE_API_KEY``).
        long_documents: ``"truncate"``, ``"max"``, ``"mean"`` or ``"first"`` (``None``: the
            reranker's default), see ``Reranker.set_long_documents``.
        score_cache: A ``ScoreCache`` or a file name for a persistent one (``None``: none).
        partition_pairs: About how many pairs one task scores (whole items; >= 1).
        resources: Dask worker resources each task needs, e.g. ``{"GPU": 1}``.
        show_progress: A tqdm bar over scored pairs on stderr.

    Returns:
        One list of floats per item, in input order (blank texts score ``-inf``).

    Raises:
        RerankError: A worker failed (its message and address), or the run was lost.

    Example:
        >>> from rerank_kit import dask_client, score_on_dask  # doctest: +SKIP
        >>> items = [("what is a reranker?", ["a model that reorders passages", "a fish"])]
        >>> with dask_client("local:2") as client:  # doctest: +SKIP
        ...     score_on_dask(client, "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", items)
        [[0.0512, 1.83e-05]]
    """
    distributed = _require_distributed()
    trace = telemetry.carrier() or None
    if isinstance(partition_pairs, bool) or not isinstance(partition_pairs, int):
        raise ValueError(f"partition_pairs must be an int >= 1, got {partition_pairs!r}")
    if partition_pairs < 1:
        raise ValueError(f"partition_pairs must be an int >= 1, got {partition_pairs!r}")
    if not isinstance(spec, str) or not spec.strip() or ">>" in spec:
        raise ValueError(f"spec must be a single-model reranker spec, got {spec!r}")
    if long_documents is not None:
        from rerank_kit._core.windows import check_long_documents

        check_long_documents(long_documents)
    checked = [(check_query(q), check_texts(t)) for q, t in items]
    kwargs = _task_kwargs(spec, reranker_kwargs or {})
    cache = make_score_cache(score_cache)
    submit = {"resources": dict(resources)} if resources else {}
    if not client.nthreads():
        logger.warning("the Dask cluster has no worker yet; the run waits for one to join")
    name, _ = _result(
        client.submit(_probe, spec, kwargs, long_documents, pure=False, **submit),
        mask_credentials(spec),
    )
    shown = mask_credentials(name)  # the cache keeps the identity; logs show it masked
    pending, known = _pending_items(name, checked, cache)
    parts = _partitions(pending, partition_pairs)
    total = sum(len(texts) for _, _, texts in pending)
    logger.info(
        "%s: %d pairs to score on Dask in %d partitions (%d answered by the cache)",
        shown,
        total,
        len(parts),
        len(known),
    )
    bar: Any = None
    if show_progress and total:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise missing_extra("eval", "tqdm", exc) from exc
        bar = tqdm(total=total, desc=f"scoring on Dask: {shown}", unit="pair", file=sys.stderr)
    threads = max(1, sum(client.nthreads().values()))
    window = 2 * threads
    run_id = uuid.uuid4().hex[:8]
    futures: dict[Any, list[tuple[int, str, list[str]]]] = {}
    queue = iter(enumerate(parts))

    def send() -> Any:
        index, part = next(queue)
        payload = [(query, texts) for _, query, texts in part]
        future = client.submit(
            _score_partition,
            spec,
            kwargs,
            long_documents,
            payload,
            trace,
            key=f"rerank-kit-score-{run_id}-{index}",
            pure=False,
            **submit,
        )
        futures[future] = part
        return future

    done = distributed.as_completed([send() for _ in range(min(window, len(parts)))])
    try:
        for future in done:
            part = futures.pop(future)
            answers = _result(future, shown)
            for (_, query, texts), (scores, cut) in zip(part, answers, strict=True):
                if cache is not None:
                    cache.put(name, query, texts, scores, cut)
                fresh = zip(scores, cut, strict=True)
                known.update(zip(((query, t) for t in texts), fresh, strict=True))
                if bar is not None:
                    bar.update(len(texts))
            with contextlib.suppress(StopIteration):
                done.add(send())
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if bar is not None:
            bar.close()
    return [
        [EMPTY_SCORE if is_blank(t) else known[(query, t)][0] for t in texts]
        for query, texts in checked
    ]
