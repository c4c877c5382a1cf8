"""The score cache: a bounded, thread-safe LRU of pair scores, optionally kept in a JSON-lines file."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core.lru import LRU

__all__ = ["FILE_CACHE_SIZE", "ScoreCache", "make_score_cache"]

logger = logging.getLogger(__name__)


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
        self.max_size = max_size
        self._lru: LRU[tuple[str, str, str], tuple[float, bool]] = LRU(max_size)
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
        entries: list[tuple[tuple[str, str, str], tuple[float, bool]]] = []
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                model, query, text, score, cut = json.loads(line)
                entries.append(((str(model), str(query), str(text)), (float(score), bool(cut))))
            except (ValueError, TypeError):
                skipped += 1
        self._lru.put_many(entries)
        if skipped:
            logger.warning("score cache %s: skipped %d unreadable line(s)", path, skipped)
        logger.info("score cache %s: loaded %d entries", path, len(self._lru))

    def get(self, model: str, query: str, texts: Sequence[str]) -> list[tuple[float, bool] | None]:
        """The cached ``(score, truncated)`` of each text, or ``None`` where there is none."""
        return self._lru.lookup((model, query, text) for text in texts)

    def put(
        self,
        model: str,
        query: str,
        texts: Sequence[str],
        scores: Sequence[float],
        truncated: Sequence[bool],
    ) -> None:
        """Store the scores and truncation flags of ``texts`` for ``query``."""
        entries = [
            ((model, query, text), (float(score), bool(cut)))
            for text, score, cut in zip(texts, scores, truncated, strict=True)
        ]
        self._lru.put_many(entries)
        if self.path is None or not entries:
            return
        lines = [json.dumps([*key, score, cut]) for key, (score, cut) in entries]
        with self._lru.lock:  # one writer at a time keeps lines whole
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                prefix = "\n" if self._newline_first else ""
                fh.write(prefix + "\n".join(lines) + "\n")
            self._newline_first = False

    def info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses (since the last clear)."""
        return self._lru.info()

    def clear(self) -> None:
        """Forget every entry held in memory and reset the counts (a ``path`` file is kept)."""
        self._lru.clear()


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
