"""Small result types shared by every reranker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Ranked"]


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
