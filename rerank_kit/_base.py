"""The ``Reranker`` base class: input checks, ordering, filtering and async for every backend."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from rerank_kit._types import Ranked

__all__ = [
    "Reranker",
    "check_query",
    "check_texts",
    "check_threshold",
    "check_top_n",
    "pair_overflow",
    "ranked_by_score",
    "select",
]

logger = logging.getLogger(__name__)


def pair_overflow(
    tokenizer: Any, query: str, texts: list[str], max_tokens: int | None
) -> list[bool]:
    """Which (query, text) pairs exceed ``max_tokens`` with a Hugging Face tokenizer.

    Only pairs whose UTF-8 size could exceed the limit are tokenized (a token covers at least
    one byte), so short candidate lists cost nothing.
    """
    flags = [False] * len(texts)
    if not max_tokens or tokenizer is None:
        return flags
    budget = max_tokens - 4  # room for [CLS]/[SEP]-style special tokens
    qbytes = len(query.encode("utf-8"))
    suspects = [i for i, t in enumerate(texts) if qbytes + len(t.encode("utf-8")) > budget]
    if not suspects:
        return flags
    encoded = tokenizer(
        [query] * len(suspects),
        [texts[i] for i in suspects],
        truncation=False,
        add_special_tokens=True,
        verbose=False,
    )["input_ids"]
    for i, ids in zip(suspects, encoded, strict=True):
        flags[i] = len(ids) > max_tokens
    return flags


def check_query(query: Any) -> str:
    """Return ``query`` if it is a non-blank string, else raise a clear error."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must be a non-empty string (it is empty or whitespace only)")
    return query


def check_texts(texts: Any) -> list[str]:
    """Return ``texts`` as a new list of strings, or raise naming the first bad entry."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a sequence of str (for example a list), got {type(texts).__name__}"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{i}] must be a str, got {type(text).__name__}; "
                "pass the document text, not the document object"
            )
    return out


def check_top_n(top_n: Any) -> int | None:
    """Return ``top_n`` if it is ``None`` or a positive int, else raise ``ValueError``."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be a positive int or None, got {top_n!r}")
    if top_n <= 0:
        raise ValueError(f"top_n must be >= 1 or None (keep all), got {top_n}")
    return top_n


def check_threshold(score_threshold: Any) -> float | None:
    """Return ``score_threshold`` as a float if finite (negative is fine), else raise."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise TypeError(f"score_threshold must be a number or None, got {score_threshold!r}")
    value = float(score_threshold)
    if math.isnan(value):
        raise ValueError("score_threshold must not be NaN (use None for no threshold)")
    return value


def order_by_score(scores: Sequence[float]) -> list[int]:
    """Indices sorted by score, highest first; ties keep input order (the sort is stable)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def ranked_by_score(scores: Sequence[float], truncated: Sequence[bool]) -> list[Ranked]:
    """``Ranked`` items for checked scores, best first (ties keep input order)."""
    return [
        Ranked(index=i, score=scores[i], truncated=truncated[i]) for i in order_by_score(scores)
    ]


def select(ranked: list[Ranked], threshold: float | None, top_n: int | None) -> list[Ranked]:
    """Apply the threshold (scores ``>= threshold`` stay), then cut to ``top_n``."""
    if threshold is not None:
        ranked = [r for r in ranked if r.score >= threshold]
    if top_n is not None:
        ranked = ranked[:top_n]
    return ranked


class Reranker(ABC):
    """Scores (query, text) pairs and orders texts by relevance.

    Subclasses implement ``_score``; this class checks inputs, turns scores into plain floats,
    orders, filters and cuts, and provides async variants that run in a worker thread so they
    never block the event loop. One instance may be shared by many threads and tasks: calls into
    the model are serialised by a lock (tokenizers are not thread-safe).

    Example:
        >>> from rerank_kit import Reranker
        >>> class LengthReranker(Reranker):
        ...     name = "length"
        ...     def _score(self, query, texts):
        ...         return [float(len(t)) for t in texts]
        >>> r = LengthReranker()
        >>> [(x.index, x.score) for x in r.rerank("q", ["aa", "a", "aaa"], top_n=2)]
        [(2, 3.0), (0, 2.0)]
    """

    #: A short description of the model, e.g. ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``.
    name: str = "reranker"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        """Score each text against the query (``texts`` is never empty here)."""

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        """Which pairs the model truncates (``None``: this backend cannot tell)."""
        return None

    def _model_lock(self) -> threading.Lock:
        lock = self.__dict__.get("_lock")
        if lock is None:  # a subclass forgot super().__init__(); still stay thread-safe
            lock = self.__dict__.setdefault("_lock", threading.Lock())
        return lock

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance score of each text for ``query``, in input order, as plain floats.

        Args:
            query: The search query (non-empty).
            texts: The candidate passages.

        Returns:
            One float per text; an empty list for no texts.

        Example:
            >>> reranker.score("what is rerank-kit?", ["a reranking toolkit", "a cake"])  # doctest: +SKIP
            [0.93, 0.01]
        """
        q = check_query(query)
        items = check_texts(texts)
        if not items:
            return []
        return self._score_checked(q, items)[0]

    def _score_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        """Scores as floats (count and NaN checked) and truncation flags, for checked input."""
        if not texts:
            return [], []
        with self._model_lock():
            raw = self._score(query, texts)
            flags = self._truncated(query, texts)
        return self._checked_scores(texts, raw, flags)

    def _checked_scores(
        self, texts: list[str], raw: Sequence[float], flags: Sequence[bool] | None
    ) -> tuple[list[float], list[bool]]:
        """Raw model output as floats (count and NaN checked) plus truncation flags."""
        scores = [float(s) for s in raw]
        if len(scores) != len(texts):
            raise RuntimeError(f"{self.name} returned {len(scores)} scores for {len(texts)} texts")
        for i, s in enumerate(scores):
            if math.isnan(s):
                raise RuntimeError(f"{self.name} returned NaN for texts[{i}]")
        truncated = list(flags) if flags is not None else [False] * len(texts)
        if any(truncated):
            logger.warning(
                "%s: %d of %d passages were longer than the model's token limit and were "
                "truncated (only their start was scored)",
                self.name,
                sum(truncated),
                len(texts),
            )
        return scores, truncated

    async def _ascore_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        """Async ``_score_checked``: a worker thread here; network rerankers await instead."""
        return await asyncio.to_thread(self._score_checked, query, texts)

    def _rank(self, query: str, texts: list[str]) -> list[Ranked]:
        """Every candidate that survives this reranker, best first (before threshold/top_n)."""
        return ranked_by_score(*self._score_checked(query, texts))

    def rerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Ranked]:
        """Order ``texts`` by relevance to ``query``.

        Order is by score, highest first; equal scores keep their input order. The threshold
        filters first (scores ``>= score_threshold`` stay), then ``top_n`` cuts.

        Args:
            query: The search query (non-empty).
            texts: The candidate passages; never modified.
            top_n: Keep at most this many (``None`` keeps all; larger than the list keeps all).
            score_threshold: Drop candidates scoring below this value.

        Returns:
            ``Ranked`` items whose ``index`` points into ``texts``.

        Example:
            >>> from rerank_kit import load_reranker  # doctest: +SKIP
            >>> r = load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2")  # doctest: +SKIP
            >>> [x.index for x in r.rerank("capital of France", ["Berlin", "Paris"], top_n=1)]  # doctest: +SKIP
            [1]
        """
        q = check_query(query)
        items = check_texts(texts)
        n = check_top_n(top_n)
        threshold = check_threshold(score_threshold)
        if not items:
            return []
        return select(self._rank(q, items), threshold, n)

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Async ``score``: runs in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.score, query, check_texts(texts))

    async def arerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Ranked]:
        """Async ``rerank``: runs in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(
            self.rerank, query, check_texts(texts), top_n=top_n, score_threshold=score_threshold
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
