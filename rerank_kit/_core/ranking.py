"""From scores to the caller's answer: order, fuse, filter by threshold, cut to ``top_n``.

Example:
    >>> from rerank_kit import Ranked
    >>> [r.index for r in select([Ranked(0, 0.9), Ranked(1, 0.2)], threshold=0.5, top_n=None)]
    [0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from rerank_kit._core.assembly import AssemblySettings, Context, check_metadata
from rerank_kit._core.calibration import Cutoff, fusion_key
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
    """The keyword arguments of ``rerank`` and ``arerank`` (see ``Reranker.rerank``).

    The six context-assembly keywords (``dedupe`` ... ``token_budget``) are the fields of
    ``AssemblySettings``; ``assembly`` gives them as one checked value instead.
    """

    top_n: int | None
    score_threshold: float | None
    first_stage_scores: Sequence[float] | None
    fusion: float | Fusion | None
    fusion_method: str | None
    metadata: Sequence[Mapping[str, Any] | None] | None
    dedupe: float | None
    diversity: float | None
    similarity_model: Any
    order: str | None
    boosts: Any
    token_budget: int | None
    assembly: AssemblySettings | None
    # the adaptive cutoff (rerank_kit._core.calibration)
    calibration: Any
    min_probability: float | None
    min_n: int | None
    expected_share: float | None


def order_by_score(scores: Sequence[float]) -> list[int]:
    """Indices sorted by score, highest first; ties keep input order (the sort is stable).

    Example:
        >>> order_by_score([0.1, 0.9, 0.1])
        [1, 0, 2]
    """
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def select(
    ranked: list[Ranked],
    threshold: float | None,
    top_n: int | None,
    cutoff: Cutoff | None = None,
) -> list[Ranked]:
    """Apply the threshold (scores ``>= threshold`` stay) and the cutoff, then cut to ``top_n``."""
    walk = None if cutoff is None else cutoff.walk(ranked)  # the total: every candidate
    if threshold is not None:
        ranked = [r for r in ranked if r.score >= threshold]
    if walk is not None:
        kept: list[Ranked] = []
        for r in ranked:
            if walk.admits(r):
                kept.append(r)
                walk.keep(r)
        ranked = kept
    if top_n is not None:
        ranked = ranked[:top_n]
    return ranked


def _for_query(fusion: Fusion | None, query: Any) -> Fusion | None:
    """A query-dependent ``Fusion`` resolved for this query (plain ones pass through)."""
    if fusion is None or fusion.long_weight is None:
        return fusion
    return fusion.for_query(check_query(query))


def _with_probabilities(ranked: list[Ranked], calibration: Any) -> list[Ranked]:
    """Each passage's probability; a rank-aware map also reads its 1-based rank in ``ranked``.

    ``ranked`` is the reranked order (fused when fused, blank passages last), so a passage's
    rank is its position there, and the gap is measured from the first finite score.
    """
    if not calibration.uses_rank:
        return [replace(r, probability=calibration.probability(r.score)) for r in ranked]
    best = next((r.score for r in ranked if math.isfinite(r.score)), None)
    return [
        replace(r, probability=calibration.probability(r.score, rank, best))
        for rank, r in enumerate(ranked, start=1)
    ]


@dataclass(frozen=True)
class Request:
    """Checked arguments of one ``rerank`` call, and what to do with the model's scores."""

    query: str
    texts: list[str]
    top_n: int | None
    threshold: float | None
    fusion: Fusion | None
    first_stage_scores: list[float] | None
    assembly: AssemblySettings | None = None
    metadata: list[Mapping[str, Any] | None] | None = None
    cutoff: Cutoff | None = None

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
        metadata: Any = None,
        calibration: Any = None,
        min_probability: Any = None,
        min_n: Any = None,
        expected_share: Any = None,
        **assembly: Any,
    ) -> Request:
        """Check the arguments of ``rerank``/``arerank`` once, for both.

        ``assembly``: the context-assembly keywords (``SETTINGS``) or ``assembly=`` an
        ``AssemblySettings``, which was checked when it was built and is taken as it is.
        """
        items = check_texts(texts)
        threshold = check_threshold(score_threshold)
        check_threshold_supported(reranker, threshold)
        if fusion_method is not None and not isinstance(fusion_method, str):
            raise TypeError(f"fusion_method must be a str, got {fusion_method!r}")
        cutoff = Cutoff.build(calibration, min_probability, min_n, expected_share)
        if cutoff is not None:
            identity = getattr(reranker, "_score_identity", lambda: reranker.name)()
            key = fusion_key(to_fusion(fusion, fusion_method))
            cutoff.calibration.check(identity, key, where=f"reranker {reranker.name!r}")
        return cls(
            query=check_query(query),
            texts=items,
            top_n=check_top_n(top_n),
            threshold=threshold,
            fusion=_for_query(to_fusion(fusion, fusion_method), query),
            first_stage_scores=check_first_stage_scores(first_stage_scores, len(items)),
            assembly=AssemblySettings.from_options(assembly),
            metadata=check_metadata(metadata, len(items)),
            cutoff=cutoff,
        )

    def _live(self, scored: PairScores) -> list[int]:
        empty = scored.empty or []
        return [i for i in scored.ranking() if not empty[i]]

    def context(self, reranker: Any, scored: PairScores) -> Context | None:
        """What context assembly needs (the similarity of the passages), or ``None``."""
        if self.assembly is None:
            return None
        return self.assembly.prepare(self.texts, self._live(scored), reranker)

    async def acontext(self, reranker: Any, scored: PairScores) -> Context | None:
        """Async ``context``: only the embedding of the passages is awaited."""
        if self.assembly is None:
            return None
        return await self.assembly.aprepare(self.texts, self._live(scored), reranker)

    def finish(self, scored: PairScores, context: Context | None = None) -> list[Ranked]:
        """Order, fuse (if asked; blank passages stay last), assemble, filter and cut.

        With context assembly (``context`` from ``context``/``acontext``), the threshold,
        ``top_n`` and ``token_budget`` apply after boosts, dedupe and diversity, and ``order``
        places the kept passages (see ``rerank_kit._core.assembly``).
        """
        ranked = scored.ranked()
        if self.fusion is not None:
            live = [r for r in ranked if not r.empty]
            ranked = fuse_ranked(live, self.first_stage_scores, self.fusion) + [
                r for r in ranked if r.empty
            ]
        if self.cutoff is not None:  # probabilities from the (fused) score, before boosts
            ranked = _with_probabilities(ranked, self.cutoff.calibration)
        if self.assembly is not None and context is not None:
            return self.assembly.apply(
                ranked,
                self.texts,
                context=context,
                threshold=self.threshold,
                top_n=self.top_n,
                metadata=self.metadata,
                cutoff=self.cutoff,
            )
        return select(ranked, self.threshold, self.top_n, self.cutoff)
