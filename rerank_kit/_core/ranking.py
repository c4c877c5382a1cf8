"""From scores to the caller's answer: order, fuse, filter by threshold, cut to ``top_n``.

Example:
    >>> from rerank_kit import Ranked
    >>> [r.index for r in select([Ranked(0, 0.9), Ranked(1, 0.2)], threshold=0.5, top_n=None)]
    [0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from rerank_kit._core.checks import (
    check_query,
    check_texts,
    check_threshold,
    check_threshold_supported,
    check_top_n,
)
from rerank_kit._core.fusion import Fusion, check_first_stage_scores, fuse_ranked, to_fusion
from rerank_kit._core.types import PairScores, Ranked

__all__ = ["RerankOptions", "Request", "order_by_score", "select"]


class RerankOptions(TypedDict, total=False):
    """The keyword arguments of ``rerank`` and ``arerank`` (see ``Reranker.rerank``)."""

    top_n: int | None
    score_threshold: float | None
    first_stage_scores: Sequence[float] | None
    fusion: float | Fusion | None
    fusion_method: str | None


def order_by_score(scores: Sequence[float]) -> list[int]:
    """Indices sorted by score, highest first; ties keep input order (the sort is stable).

    Example:
        >>> order_by_score([0.1, 0.9, 0.1])
        [1, 0, 2]
    """
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def select(ranked: list[Ranked], threshold: float | None, top_n: int | None) -> list[Ranked]:
    """Apply the threshold (scores ``>= threshold`` stay), then cut to ``top_n``."""
    if threshold is not None:
        ranked = [r for r in ranked if r.score >= threshold]
    if top_n is not None:
        ranked = ranked[:top_n]
    return ranked


def _for_query(fusion: Fusion | None, query: Any) -> Fusion | None:
    """A query-dependent ``Fusion`` resolved for this query (plain ones pass through)."""
    if fusion is None or fusion.long_weight is None:
        return fusion
    return fusion.for_query(check_query(query))


@dataclass(frozen=True)
class Request:
    """Checked arguments of one ``rerank`` call, and what to do with the model's scores."""

    query: str
    texts: list[str]
    top_n: int | None
    threshold: float | None
    fusion: Fusion | None
    first_stage_scores: list[float] | None

    @classmethod
    def build(
        cls,
        reranker: Any,
        query: Any,
        texts: Any,
        *,
        top_n: Any = None,
        score_threshold: Any = None,
        first_stage_scores: Any = None,
        fusion: Any = None,
        fusion_method: Any = None,
    ) -> Request:
        """Check the arguments of ``rerank``/``arerank`` once, for both."""
        items = check_texts(texts)
        threshold = check_threshold(score_threshold)
        check_threshold_supported(reranker, threshold)
        if fusion_method is not None and not isinstance(fusion_method, str):
            raise TypeError(f"fusion_method must be a str, got {fusion_method!r}")
        return cls(
            query=check_query(query),
            texts=items,
            top_n=check_top_n(top_n),
            threshold=threshold,
            fusion=_for_query(to_fusion(fusion, fusion_method), query),
            first_stage_scores=check_first_stage_scores(first_stage_scores, len(items)),
        )

    def finish(self, scored: PairScores) -> list[Ranked]:
        """Order, fuse (if asked; blank passages stay last), filter by threshold, cut."""
        ranked = scored.ranked()
        if self.fusion is not None:
            live = [r for r in ranked if not r.empty]
            ranked = fuse_ranked(live, self.first_stage_scores, self.fusion) + [
                r for r in ranked if r.empty
            ]
        return select(ranked, self.threshold, self.top_n)
