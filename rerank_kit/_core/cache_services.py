"""``Reranker``'s score-cache services: ``set_score_cache``, ``score_cache``, ``cache_info``.

A mixin of ``Reranker``: a family that keeps a score cache (``keeps_score_cache = True``)
gets these for free; the cache itself is ``_core/score_cache.py``.
"""

from __future__ import annotations

import os

from rerank_kit._core.score_cache import ScoreCache, make_score_cache

__all__ = ["CacheServices"]


class CacheServices:
    """The score-cache methods every reranker offers."""

    #: Declared by ``Reranker`` (see its documentation).
    keeps_score_cache: bool = False
    _score_cache: ScoreCache | None

    def set_score_cache(
        self, score_cache: int | str | os.PathLike[str] | ScoreCache | None
    ) -> None:
        """Give this reranker a score cache after construction (``None``/``0`` removes it).

        Takes what the constructors' ``score_cache=`` takes: a size, a file name (a persistent
        cache, see ``ScoreCache``) or a ``ScoreCache`` to share. Rerankers whose scores depend
        on the pair alone (``keeps_score_cache``: cross-encoders on every backend, FlashRank,
        the bi-encoder) accept it; a cascade passes it to the stages that do; others raise
        ``ValueError``.

        Example:
            >>> from rerank_kit import load_reranker  # doctest: +SKIP
            >>> r = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")  # doctest: +SKIP
            >>> r.set_score_cache("scores.jsonl")  # doctest: +SKIP
        """
        if not self.keeps_score_cache and "_score_cache" not in self.__dict__:
            raise ValueError(f"{type(self).__name__} keeps no score cache")
        self._score_cache = make_score_cache(score_cache)

    @property
    def score_cache(self) -> ScoreCache | None:
        """This reranker's score cache (``None``: none); set it with ``set_score_cache``.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> FakeReranker().score_cache is None
            True
        """
        cache: ScoreCache | None = self.__dict__.get("_score_cache")
        return cache

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
