"""Several ``(query, texts)`` requests scored in one model call (``rerank-kit serve``).

A mixin of ``Reranker``: a family whose pair scores do not depend on their batch
(``batch_independent = True``) may override ``_score_groups`` to run the pairs of several
groups together; ``_rerank_groups`` runs ``rerank`` for each request around that one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rerank_kit._core.ranking import Request, RerankOptions
from rerank_kit._core.scoring import ScorePlan, Split, checked
from rerank_kit._core.types import PairScores, Ranked

__all__ = ["GroupScoring"]


class GroupScoring:
    """``Reranker``'s group scoring (its other members are declared for the type checker)."""

    #: True when a pair's score depends on the pair alone, whatever else shares its model call
    #: (``_runtime/batch_rule.py``): ``rerank-kit serve`` then batches requests together.
    batch_independent: bool = False

    if TYPE_CHECKING:
        name: str

        def _score_pairs(self, query: str, texts: list[str]) -> PairScores | Sequence[float]: ...
        def _plan(self, query: str, texts: list[str]) -> ScorePlan: ...
        def _split(self, query: str, texts: list[str]) -> Split: ...
        def _model_lock(self) -> Any: ...
        def _report(self, result: PairScores) -> PairScores: ...

    def _score_groups(
        self, groups: list[tuple[str, list[str]]]
    ) -> list[PairScores | Sequence[float]]:
        """Score several ``(query, texts)`` groups: one ``_score_pairs`` each by default.

        A family with ``batch_independent = True`` may run every pair in one model call; each
        group must get what ``_score_pairs`` gives it alone.
        """
        return [self._score_pairs(query, texts) for query, texts in groups]

    def _scored_groups(self, groups: list[tuple[str, list[str]]]) -> list[PairScores]:
        """``_scored`` for several groups (checked input), their model calls made as one."""
        plans = [self._plan(query, texts) for query, texts in groups]
        todo = [i for i, plan in enumerate(plans) if plan.pending]
        fresh: dict[int, PairScores] = {}
        if todo:
            with self._model_lock():
                splits = {i: self._split(groups[i][0], plans[i].pending) for i in todo}
                raws = self._score_groups([(groups[i][0], splits[i].texts) for i in todo])
            for i, raw in zip(todo, raws, strict=True):
                split = splits[i]
                fresh[i] = split.fold(checked(raw, len(split.texts), self.name))
        return [self._report(plan.finish(fresh.get(i))) for i, plan in enumerate(plans)]

    def _rerank_groups(
        self, requests: Sequence[tuple[str, Sequence[str], RerankOptions]]
    ) -> list[list[Ranked]]:
        """``rerank`` for several ``(query, texts, options)`` requests, scored together.

        Each request's result equals its own ``rerank`` call when ``batch_independent`` is
        true (the default ``_score_groups`` scores the groups one by one, so it always does).
        ``rerank_kit.serve`` batches concurrent HTTP requests through this.
        """
        built = [Request.build(self, q, texts, **options) for q, texts, options in requests]
        live = [i for i, request in enumerate(built) if request.texts]
        scored = self._scored_groups([(built[i].query, built[i].texts) for i in live])
        out: list[list[Ranked]] = [[] for _ in built]
        for i, scores in zip(live, scored, strict=True):
            out[i] = built[i].finish(scores, built[i].context(self, scores))
        return out
