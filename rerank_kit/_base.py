"""Transitional re-exports while the engine moves to ``rerank_kit._core`` (removed in this change)."""

from __future__ import annotations

from rerank_kit._core.checks import (
    check_query,
    check_texts,
    check_threshold,
    check_threshold_supported,
    check_top_n,
    pair_overflow,
)
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.ranking import order_by_score, select
from rerank_kit._core.score_cache import FILE_CACHE_SIZE, ScoreCache, make_score_cache
from rerank_kit._core.types import PairScores, Ranked

__all__ = [
    "FILE_CACHE_SIZE",
    "Reranker",
    "ScoreCache",
    "check_query",
    "check_texts",
    "check_threshold",
    "check_threshold_supported",
    "check_top_n",
    "make_score_cache",
    "order_by_score",
    "pair_overflow",
    "ranked_by_score",
    "select",
]


def ranked_by_score(scores: list[float], truncated: list[bool]) -> list[Ranked]:
    """Transitional: ``Ranked`` items best first."""
    return PairScores(scores, truncated=truncated).ranked()
