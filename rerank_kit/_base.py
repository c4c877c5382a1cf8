"""The ``Reranker`` base class: input checks, ordering, filtering and async for every backend."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_kit._fusion import Fusion, check_first_stage_scores, fuse_ranked, to_fusion
from rerank_kit._types import Ranked
from rerank_kit._windows import (
    MIN_BUDGET,
    WindowPlan,
    aggregate,
    check_long_documents,
    make_windows,
)

__all__ = [
    "Reranker",
    "ScoreCache",
    "check_query",
    "check_texts",
    "check_threshold",
    "check_threshold_supported",
    "check_top_n",
    "pair_overflow",
    "ranked_by_score",
    "select",
]

logger = logging.getLogger(__name__)

_MODE_SUFFIX = re.compile(r" \[long_documents=\w+\]$")


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


class ScoreCache:
    """A bounded, thread-safe LRU of scores keyed by model, query and passage text.

    Opt-in for rerankers whose score depends on the (query, passage) pair (cross-encoders):
    repeated questions (chat applications, evaluation sweeps, tuning runs) are scored once.
    Pass ``score_cache=N`` to a reranker for a private cache of ``N`` pairs, or one
    ``ScoreCache`` to several rerankers to share it (the key includes the reranker's name).
    Each entry costs about the size of its query and passage text plus ~200 bytes.

    With ``path``, the cache also lives on disk: entries already in the file (JSON lines of
    ``[model, query, passage, score, truncated]``) are loaded on construction, and every new
    entry is appended as soon as it is scored, so an interrupted evaluation or tuning run keeps
    what it paid for and the next run scores only what is new. The file is keyed by the
    reranker's ``name`` (for ``load_reranker`` specs, the spec), holds the passage text in clear
    and only grows (``clear()`` empties memory, not the file: delete the file to start over).
    An unreadable line (a run killed mid-write) is skipped with a warning.

    Args:
        max_size: Pairs kept in memory (least recently used dropped first); must be >= 1.
        path: Optional JSON-lines file to load from and append to.

    Example:
        >>> cache = ScoreCache(1000)
        >>> cache.put("m", "q", ["a"], [0.5], [False])
        >>> cache.get("m", "q", ["a", "b"])
        [(0.5, False), None]
        >>> cache.info()
        {'size': 1, 'max_size': 1000, 'hits': 1, 'misses': 1}
    """

    def __init__(self, max_size: int, path: str | os.PathLike[str] | None = None) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"ScoreCache max_size must be an int >= 1, got {max_size!r}")
        from collections import OrderedDict

        self.max_size = max_size
        self._data: OrderedDict[tuple[str, str, str], tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self.path: Path | None = None if path is None else Path(path)
        self._newline_first = False
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        if path.is_dir():
            raise ValueError(f"ScoreCache path {path} is a folder; give a file name")
        if not path.exists():
            return
        skipped = 0
        raw = path.read_bytes()
        self._newline_first = bool(raw) and not raw.endswith(b"\n")
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                model, query, text, score, cut = json.loads(line)
                key = (str(model), str(query), str(text))
                entry = (float(score), bool(cut))
            except (ValueError, TypeError):
                skipped += 1
                continue
            self._data[key] = entry
            self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)
        if skipped:
            logger.warning("score cache %s: skipped %d unreadable line(s)", path, skipped)
        logger.info("score cache %s: loaded %d entries", path, len(self._data))

    def get(self, model: str, query: str, texts: Sequence[str]) -> list[tuple[float, bool] | None]:
        """The cached ``(score, truncated)`` of each text, or ``None`` where there is none."""
        out: list[tuple[float, bool] | None] = []
        with self._lock:
            for text in texts:
                key = (model, query, text)
                entry = self._data.get(key)
                if entry is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._data.move_to_end(key)
                out.append(entry)
        return out

    def put(
        self,
        model: str,
        query: str,
        texts: Sequence[str],
        scores: Sequence[float],
        truncated: Sequence[bool],
    ) -> None:
        """Store the scores and truncation flags of ``texts`` for ``query``."""
        with self._lock:
            lines = []
            for text, score, cut in zip(texts, scores, truncated, strict=True):
                self._data[(model, query, text)] = (float(score), bool(cut))
                self._data.move_to_end((model, query, text))
                if self.path is not None:
                    lines.append(json.dumps([model, query, text, float(score), bool(cut)]))
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)
            if self.path is not None and lines:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    prefix = "\n" if self._newline_first else ""
                    fh.write(prefix + "\n".join(lines) + "\n")
                self._newline_first = False

    def info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses (since the last clear)."""
        with self._lock:
            return {
                "size": len(self._data),
                "max_size": self.max_size,
                "hits": self._hits,
                "misses": self._misses,
            }

    def clear(self) -> None:
        """Forget every entry held in memory and reset the counts (a ``path`` file is kept)."""
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0


#: Pairs kept in memory by a cache built from a file name (``score_cache="scores.jsonl"``).
FILE_CACHE_SIZE = 1_000_000


def make_score_cache(score_cache: Any) -> ScoreCache | None:
    """``score_cache`` as rerankers take it: ``0``/``None`` (off), a size, a file, a ``ScoreCache``.

    A file name (``str`` or path) gives a persistent ``ScoreCache(FILE_CACHE_SIZE, path=...)``.
    """
    if score_cache is None or isinstance(score_cache, ScoreCache):
        return score_cache
    if isinstance(score_cache, (str, os.PathLike)):
        return ScoreCache(FILE_CACHE_SIZE, path=score_cache)
    if isinstance(score_cache, bool) or not isinstance(score_cache, int) or score_cache < 0:
        raise ValueError(
            f"score_cache must be an int >= 0 (pairs kept; 0 = off), a file name or a "
            f"ScoreCache, got {score_cache!r}"
        )
    return ScoreCache(score_cache) if score_cache else None


def check_threshold_supported(reranker: Reranker, score_threshold: float | None) -> None:
    """Refuse a threshold for a reranker whose scores are ranks, not relevance (e.g. listwise LLMs)."""
    if score_threshold is not None and not getattr(reranker, "supports_threshold", True):
        raise ValueError(
            f"{reranker.name} gives rank-derived scores (1/rank), not relevance scores, so "
            "score_threshold has no meaning for it; use top_n instead"
        )


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


@dataclass(frozen=True)
class _Request:
    """Checked arguments of one ``rerank`` call, and what to do with the model's ranking."""

    query: str
    texts: list[str]
    top_n: int | None
    threshold: float | None
    fusion: Fusion | None
    first_stage_scores: list[float] | None

    def finish(self, ranked: list[Ranked]) -> list[Ranked]:
        """Fuse (if asked), then filter by the threshold, then cut to ``top_n``."""
        if self.fusion is not None:
            ranked = fuse_ranked(ranked, self.first_stage_scores, self.fusion)
        return select(ranked, self.threshold, self.top_n)


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
    #: False for rerankers whose scores only encode rank (``score_threshold`` is then refused).
    supports_threshold: bool = True

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        """Score each text against the query (``texts`` is never empty here)."""

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        """Which pairs the model truncates (``None``: this backend cannot tell)."""
        return None

    def _llm_repaired(self) -> list[bool] | None:
        """``llm_repaired`` flags of this thread's last ``_score_checked`` (``None``: not an LLM)."""
        return None

    #: ``"truncate"`` (default), ``"max"``, ``"mean"`` or ``"first"``: see ``set_long_documents``.
    long_documents: str = "truncate"

    def _window_plan(self, query: str) -> WindowPlan | None:
        """How to split long passages for ``query`` (``None``: this backend cannot)."""
        return None

    def set_score_cache(
        self, score_cache: int | str | os.PathLike[str] | ScoreCache | None
    ) -> None:
        """Give this reranker a score cache after construction (``None``/``0`` removes it).

        Takes what the constructors' ``score_cache=`` takes: a size, a file name (a persistent
        cache, see ``ScoreCache``) or a ``ScoreCache`` to share. Rerankers that score pairs
        (cross-encoders on every backend, FlashRank) accept it; a cascade passes it to the
        stages that do; others raise ``ValueError``.

        Example:
            >>> from rerank_kit import load_reranker  # doctest: +SKIP
            >>> r = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")  # doctest: +SKIP
            >>> r.set_score_cache("scores.jsonl")  # doctest: +SKIP
        """
        if "_score_cache" not in self.__dict__:
            raise ValueError(f"{type(self).__name__} keeps no score cache")
        self._score_cache = make_score_cache(score_cache)

    def set_long_documents(self, mode: str) -> None:
        """Choose how passages longer than the model's token limit are scored.

        ``"truncate"`` (default) scores the start of the passage only (and flags it).
        ``"max"``, ``"mean"`` and ``"first"`` split such a passage, with the model's own
        tokenizer, into windows that fit beside the whole query (a quarter of each window
        repeated in the next), score every window of every passage in the same batched call
        as the short passages, and give the passage the max, mean or first of its windows'
        scores. A windowed passage is not flagged as truncated (``"first"`` still flags it:
        the rest was not read). Cost grows with the number of windows. The backends'
        constructors take it as ``long_documents=``; a mode other than truncate is shown in
        ``name``.

        Example:
            >>> from rerank_kit import load_reranker  # doctest: +SKIP
            >>> r = load_reranker("bi-encoder:all-MiniLM-L6-v2", long_documents="max")  # doctest: +SKIP
            >>> r.set_long_documents("truncate")  # doctest: +SKIP
        """
        mode = check_long_documents(mode)
        if mode != "truncate" and type(self)._window_plan is Reranker._window_plan:
            raise ValueError(
                f"{type(self).__name__} cannot score long documents in windows; "
                "use long_documents='truncate'"
            )
        self.long_documents = mode
        base = _MODE_SUFFIX.sub("", self.name)
        self.name = base if mode == "truncate" else f"{base} [long_documents={mode}]"

    def _score_windows(self, query: str, texts: list[str]) -> tuple[Sequence[float], list[bool]]:
        """Raw scores and truncation flags, scoring long passages in windows if asked to."""
        mode = self.long_documents
        plan = self._window_plan(query) if mode != "truncate" else None
        if plan is not None and plan.budget >= MIN_BUDGET:
            windows, owner, split = make_windows(texts, plan, first_only=mode == "first")
            if any(split):
                logger.debug("%s: %d passages -> %d windows", self.name, len(texts), len(windows))
                raw = [float(x) for x in self._score(query, windows)]
                if len(raw) != len(windows):
                    raise RuntimeError(
                        f"{self.name} returned {len(raw)} scores for {len(windows)} windows"
                    )
                wflags = self._truncated(query, windows) or [False] * len(windows)
                flags = [mode == "first" and cut for cut in split]
                for i, cut in zip(owner, wflags, strict=True):
                    flags[i] = flags[i] or bool(cut)
                return aggregate(raw, owner, len(texts), mode), flags
        elif plan is not None:
            logger.warning(
                "%s: the query leaves only %d tokens for the passage; truncating instead of "
                "scoring windows",
                self.name,
                plan.budget,
            )
        raw_scores = self._score(query, texts)
        return raw_scores, list(self._truncated(query, texts) or [False] * len(texts))

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

    def cache_info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses of this reranker's score cache (zeros: none).

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> FakeReranker().cache_info()
            {'size': 0, 'max_size': 0, 'hits': 0, 'misses': 0}
        """
        cache: ScoreCache | None = self.__dict__.get("_score_cache")
        if cache is None:
            return {"size": 0, "max_size": 0, "hits": 0, "misses": 0}
        return cache.info()

    def clear_cache(self) -> None:
        """Empty this reranker's score cache, if it has one."""
        cache: ScoreCache | None = self.__dict__.get("_score_cache")
        if cache is not None:
            cache.clear()

    def _model_scores(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        """Model scores and flags, read from the score cache where possible."""
        cache: ScoreCache | None = self.__dict__.get("_score_cache")
        if cache is None:
            with self._model_lock():
                raw, flags = self._score_windows(query, texts)
            scores = self._checked_floats(raw, len(texts))
            return scores, list(flags) if flags is not None else [False] * len(texts)
        found = cache.get(self.name, query, texts)
        missing = list(dict.fromkeys(t for t, hit in zip(texts, found, strict=True) if not hit))
        fresh: dict[str, tuple[float, bool]] = {}
        if missing:
            with self._model_lock():
                raw, flags = self._score_windows(query, missing)
            new_scores = self._checked_floats(raw, len(missing))
            new_flags = list(flags) if flags is not None else [False] * len(missing)
            cache.put(self.name, query, missing, new_scores, new_flags)
            fresh = dict(zip(missing, zip(new_scores, new_flags, strict=True), strict=True))
        pairs = [hit if hit is not None else fresh[t] for t, hit in zip(texts, found, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _checked_floats(self, raw: Sequence[float], n: int) -> list[float]:
        scores = [float(s) for s in raw]
        if len(scores) != n:
            raise RuntimeError(f"{self.name} returned {len(scores)} scores for {n} texts")
        for i, s in enumerate(scores):
            if math.isnan(s):
                raise RuntimeError(f"{self.name} returned NaN for texts[{i}]")
        return scores

    def _score_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        """Scores as floats (count and NaN checked) and truncation flags, for checked input."""
        if not texts:
            return [], []
        scores, truncated = self._model_scores(query, texts)
        return self._checked_scores(texts, scores, truncated)

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
        first_stage_scores: Sequence[float] | None = None,
        fusion: float | Fusion | None = None,
    ) -> list[Ranked]:
        """Order ``texts`` by relevance to ``query``.

        Order is by score, highest first; equal scores keep their input order. The threshold
        filters first (scores ``>= score_threshold`` stay), then ``top_n`` cuts.

        With ``fusion`` (a weight on the reranker in [0, 1], or a ``Fusion``), each candidate's
        score is fused with its first-stage signal (``first_stage_scores``, else its input
        position) per query, see ``rerank_kit._fusion``; then ``Ranked.score`` is the fused
        score, which orders and is compared with ``score_threshold``, ``reranker_score`` the
        model's own and ``first_stage_score`` the first-stage one. For a cascade, fusion
        orders the last stage's survivors.

        Args:
            query: The search query (non-empty).
            texts: The candidate passages; never modified.
            top_n: Keep at most this many (``None`` keeps all; larger than the list keeps all).
            score_threshold: Drop candidates scoring below this value.
            first_stage_scores: The first stage's score of each text (higher is better); used
                only with ``fusion``.
            fusion: ``None`` (reranker score only), a weight on the reranker, or a ``Fusion``.

        Returns:
            ``Ranked`` items whose ``index`` points into ``texts``.

        Example:
            >>> from rerank_kit import load_reranker  # doctest: +SKIP
            >>> r = load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2")  # doctest: +SKIP
            >>> [x.index for x in r.rerank("capital of France", ["Berlin", "Paris"], top_n=1)]  # doctest: +SKIP
            [1]
        """
        request = self._request(query, texts, top_n, score_threshold, first_stage_scores, fusion)
        if not request.texts:
            return []
        return request.finish(self._rank(request.query, request.texts))

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
        first_stage_scores: Sequence[float] | None = None,
        fusion: float | Fusion | None = None,
    ) -> list[Ranked]:
        """Async ``rerank``: the model runs in ``_arank`` (a worker thread unless overridden)."""
        request = self._request(query, texts, top_n, score_threshold, first_stage_scores, fusion)
        if not request.texts:
            return []
        return request.finish(await self._arank(request.query, request.texts))

    async def _arank(self, query: str, texts: list[str]) -> list[Ranked]:
        """Async ``_rank``: a worker thread here; network and LLM rerankers await instead."""
        return await asyncio.to_thread(self._rank, query, texts)

    def _request(
        self,
        query: Any,
        texts: Any,
        top_n: Any,
        score_threshold: Any,
        first_stage_scores: Any,
        fusion: Any,
    ) -> _Request:
        """Check the arguments of ``rerank``/``arerank`` once, for both."""
        items = check_texts(texts)
        threshold = check_threshold(score_threshold)
        check_threshold_supported(self, threshold)
        return _Request(
            query=check_query(query),
            texts=items,
            top_n=check_top_n(top_n),
            threshold=threshold,
            fusion=to_fusion(fusion),
            first_stage_scores=check_first_stage_scores(first_stage_scores, len(items)),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
