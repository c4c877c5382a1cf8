"""``--dask ADDRESS`` for ``rerank-kit eval``, ``tune`` and ``train``: the pool scored on a cluster.

Before the command runs, :func:`score_pool` retrieves the candidate pool the command will rerank
(the same first stages, depth and queries), scores it on the Dask cluster with
:func:`rerank_kit.score_on_dask` into the score cache, and hands that cache back: the command
then runs as without ``--dask`` and reads every score from the cache. With ``--score-cache
FILE`` the scores are kept on disk as they arrive, so a run started again after an interrupt
scores only the pairs not in the file yet.

Only rerankers that keep a score cache (``Reranker.keeps_score_cache``: cross-encoders on every
backend, FlashRank, the bi-encoder, a plugin family that declares it) are scored on the cluster.
Others (remote, listwise) and a cascade run in-process as before, with a log line saying so.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import Any

from rerank_kit._core.score_cache import FILE_CACHE_SIZE, ScoreCache, make_score_cache
from rerank_kit.evaluation._dataset import Dataset

__all__ = ["add_dask_argument", "candidate_pool", "score_pool"]

logger = logging.getLogger(__name__)


def add_dask_argument(parser: argparse.ArgumentParser) -> None:
    """``--dask ADDRESS``, shared by ``rerank-kit eval``, ``tune`` and ``train``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_dask_argument(parser)
        >>> parser.parse_args(["--dask", "local:2"]).dask
        'local:2'
    """
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="score the candidate pool on a Dask cluster first: a scheduler address "
        "(tcp://HOST:8786) or local:N (N local worker processes on 127.0.0.1); the scores go "
        "to the score cache (give --score-cache FILE to keep them and resume)",
    )


def candidate_pool(
    dataset: Dataset,
    first_stages: Sequence[str],
    depth: int,
    *,
    embedding_model: Any = None,
    query_ids: Sequence[str] | None = None,
    show_progress: bool = False,
) -> list[tuple[str, list[str]]]:
    """``(query, candidate texts)`` per query and first stage, in the order the commands score.

    Example:
        >>> from rerank_kit.evaluation import load_dataset
        >>> pool = candidate_pool(load_dataset("data/beir/cisi"), ["bm25"], 20)  # doctest: +SKIP
    """
    from rerank_kit.evaluation._compare import _resolve_first_stages
    from rerank_kit.evaluation._first_stage import DEFAULT_EMBEDDING_MODEL

    stages, built = _resolve_first_stages(
        list(first_stages), embedding_model or DEFAULT_EMBEDDING_MODEL
    )
    corpus = dataset.corpus
    pool: list[tuple[str, list[str]]] = []
    try:
        for stage in stages:
            stage.index(corpus, show_progress=show_progress)
        for qid in query_ids if query_ids is not None else list(dataset.queries):
            query = dataset.queries[qid]
            for stage in stages:
                texts = [corpus[doc_id].full_text for doc_id, _ in stage.search(query, depth)]
                if texts:
                    pool.append((query, texts))
    finally:
        for stage in built:
            stage.close()
    return pool


def _pool_of(
    args: argparse.Namespace,
    dataset: Dataset,
    command: str,
    depth: int | None = None,
    query_ids: list[str] | None = None,
) -> tuple[list[str], Any]:
    """(specs, pool) the command will score, from its parsed arguments.

    ``tune`` gives its deepest ``depth``, ``train`` its held-out ``query_ids`` (what they
    decide is theirs: this package does not import ``rerank_kit.learning``).
    """
    if command == "eval":
        data = dataset.head(args.limit_queries) if args.limit_queries else dataset
        stages, depth, qids = args.first_stage or ["bm25"], args.depth, None
        specs, embedding = list(args.reranker), args.embedding_model
    elif command == "tune":
        if depth is None:
            raise ValueError("tune's candidate pool needs its deepest depth")
        data, stages, qids = dataset, args.first_stage or ["bm25"], None
        specs, embedding = list(args.reranker), None
    elif command == "train":
        data, stages, depth, embedding = dataset, [args.first_stage], args.depth, None
        qids, specs = query_ids, [args.model]
    else:
        raise ValueError(f"unknown command {command!r}")
    show = not args.no_progress

    def pool() -> list[tuple[str, list[str]]]:
        return candidate_pool(
            data, stages, depth, embedding_model=embedding, query_ids=qids, show_progress=show
        )

    return specs, pool


def score_pool(
    args: argparse.Namespace,
    dataset: Dataset,
    command: str,
    *,
    depth: int | None = None,
    query_ids: Callable[[], list[str]] | None = None,
) -> Any:
    """Score ``command``'s candidate pool on ``args.dask``; return the score cache to run with.

    Without ``--dask`` this returns ``args.score_cache`` as it is. With it: the cache of
    ``--score-cache`` (or one in memory), holding every pair the command will score.
    ``tune`` passes its deepest ``depth``; ``train`` a function giving the ids of the
    held-out queries it scores (called only with ``--dask``).

    Raises:
        RerankError: The scheduler did not answer, or a worker failed (its message).
    """
    score_cache = getattr(args, "score_cache", None)
    if not getattr(args, "dask", None):
        return score_cache
    if getattr(args, "cold_cache", False):
        raise ValueError("--dask and --cold-cache contradict: --dask scores into the score cache")
    from rerank_kit._distributed import _probe, _result, dask_client, score_on_dask

    cache = make_score_cache(score_cache) or ScoreCache(FILE_CACHE_SIZE)
    long_documents = getattr(args, "long_documents", None)
    qids = None if query_ids is None else query_ids()
    specs, pool = _pool_of(args, dataset, command, depth, qids)
    with dask_client(args.dask) as client:
        items: list[tuple[str, list[str]]] | None = None
        for spec in specs:
            if ">>" in spec:
                logger.warning("--dask: %s is a cascade; it runs in-process", spec)
                continue
            name, keeps = _result(client.submit(_probe, spec, {}, long_documents, pure=False), spec)
            if not keeps:
                logger.warning(
                    "--dask: %s keeps no score cache; it runs in-process",
                    name,
                )
                continue
            items = pool() if items is None else items
            score_on_dask(
                client,
                spec,
                items,
                long_documents=long_documents,
                score_cache=cache,
                show_progress=not args.no_progress,
            )
    return cache
