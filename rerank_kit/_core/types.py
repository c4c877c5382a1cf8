"""Small result types shared by every reranker: ``PairScores`` (one scoring call) and ``Ranked``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["PairScores", "Ranked"]


def _flags(values: Sequence[bool] | None, n: int, label: str) -> list[bool]:
    if values is None:
        return [False] * n
    out = [bool(v) for v in values]
    if len(out) != n:
        raise ValueError(f"PairScores.{label} has {len(out)} flags for {n} scores")
    return out


@dataclass(frozen=True)
class PairScores:
    """What one scoring call returns: a score and its flags for each passage, in input order.

    A reranker's one scoring hook (``Reranker._score_pairs`` and its async twin) returns this, or
    plain floats when it has no flags to report. Flags left at ``None`` mean "all False". The
    cascade, fusion, the score cache, long-document windows and both adapters read it, so a flag
    never travels through an attribute or a thread-local.

    Attributes:
        scores: One float per passage (higher is more relevant).
        truncated: Which (query, passage) pairs the model saw only the start of.
        llm_repaired: Which passages an LLM placed from an answer it had to repair.
        empty: Which passages were blank (set by the core: they are never scored).
        stage_scores: For cascades, each passage's score by stage name.
        order: For cascades, the surviving passages best first (``None``: every passage,
            ordered by score).

    Example:
        >>> from rerank_kit import PairScores
        >>> p = PairScores([0.2, 0.9], truncated=[False, True])
        >>> p.truncated, p.llm_repaired
        ([False, True], [False, False])
        >>> p.ranking()
        [1, 0]
    """

    scores: list[float]
    truncated: list[bool] | None = None
    llm_repaired: list[bool] | None = None
    empty: list[bool] | None = None
    stage_scores: list[dict[str, float]] | None = None
    order: list[int] | None = None

    def __post_init__(self) -> None:
        n = len(self.scores)
        object.__setattr__(self, "scores", list(self.scores))
        object.__setattr__(self, "truncated", _flags(self.truncated, n, "truncated"))
        object.__setattr__(self, "llm_repaired", _flags(self.llm_repaired, n, "llm_repaired"))
        object.__setattr__(self, "empty", _flags(self.empty, n, "empty"))
        if self.stage_scores is not None and len(self.stage_scores) != n:
            raise ValueError(f"PairScores.stage_scores has {len(self.stage_scores)} rows for {n}")

    def ranking(self) -> list[int]:
        """Indices best first: ``order`` if given, else by score (ties keep input order)."""
        if self.order is not None:
            return list(self.order)
        return sorted(range(len(self.scores)), key=lambda i: -self.scores[i])

    def ranked(self) -> list[Ranked]:
        """``Ranked`` items best first (survivors only, for cascades)."""
        truncated, repaired, empty = self.truncated or [], self.llm_repaired or [], self.empty or []
        return [
            Ranked(
                index=i,
                score=self.scores[i],
                stage_scores=dict(self.stage_scores[i]) if self.stage_scores else {},
                truncated=truncated[i],
                llm_repaired=repaired[i],
                empty=empty[i],
            )
            for i in self.ranking()
        ]


@dataclass(frozen=True)
class Ranked:
    """One reranked candidate.

    Attributes:
        index: Position of the candidate in the list the caller passed in.
        score: Relevance score (a plain ``float``; higher is more relevant).
        stage_scores: For cascades, the score each stage gave this candidate, keyed by stage
            name, in stage order. Empty for single-model rerankers.
        truncated: True if the model saw only the start of this (query, text) pair because it
            was longer than the model's token limit (every stage counts, for cascades).
        llm_repaired: True if an LLM reranker placed this candidate from an answer it had to
            repair (unknown, duplicate or missing passage numbers) or could not parse at all
            (the candidate then kept its input order); see ``ListwiseLLMReranker``.
        reranker_score: With score fusion, the reranker's own score (``score`` is then the
            fused one); ``None`` without fusion.
        first_stage_score: With score fusion, the first-stage score that was fused (``None``
            without fusion, or when the first-stage order stood in for a score).
        empty: True if the passage was empty or whitespace only: it was not scored, its score
            is ``-inf`` and it ranks after every scored passage (in input order).
        duplicates: With ``dedupe``: input indices of the candidates dropped as near-duplicates
            of this one.
        boost: With ``boosts``: what the metadata boosts added to ``score`` (already in it).
        context_rank: With any context-assembly step: the passage's rank in the selection
            order (1 = best), which ``order="lost-in-the-middle"`` leaves as it was.
        similarity: With ``dedupe`` or ``diversity``: the similarity measure used
            (``"lexical:jaccard-3-shingles"``, ``"cosine:<bi-encoder>"`` or ``"exact"``).
        tokens: With ``token_budget``: the passage's length as counted for the budget.
        probability: With a ``calibration``: the probability that the passage is relevant, from
            ``score`` (fused, before boosts) through the fitted map; ``None`` without one.

    Example:
        >>> from rerank_kit import Ranked
        >>> r = Ranked(index=2, score=0.9)
        >>> (r.index, r.score)
        (2, 0.9)
    """

    index: int
    score: float
    stage_scores: Mapping[str, float] = field(default_factory=dict)
    truncated: bool = False
    llm_repaired: bool = False
    reranker_score: float | None = None
    first_stage_score: float | None = None
    empty: bool = False
    duplicates: tuple[int, ...] = ()
    boost: float | None = None
    context_rank: int | None = None
    similarity: str | None = None
    tokens: int | None = None
    probability: float | None = None
