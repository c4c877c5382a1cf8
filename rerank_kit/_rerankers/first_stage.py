"""The "first stage only" reranker: keeps the order it is given and loads no model.

``rerank-kit tune`` can find that no reranker helps on a collection; the pipeline it then saves
(``PipelineConfig(reranker="none")``) reranks with this class, so ``load_pipeline`` and both
adapters' ``from_config`` pass the first stage's order through, cut to ``top_n``.

Example:
    >>> from rerank_kit._rerankers.first_stage import FirstStageOnly
    >>> [(r.index, r.score) for r in FirstStageOnly().rerank("q", ["a", "b", "c"], top_n=2)]
    [(0, 1.0), (1, 0.5)]
"""

from __future__ import annotations

from collections.abc import Sequence

from rerank_kit._core.protocol import Reranker

__all__ = ["FIRST_STAGE_ONLY", "FirstStageOnly", "is_first_stage_only"]

#: The ``PipelineConfig.reranker`` value (and ``tune`` label) of "no reranker".
FIRST_STAGE_ONLY = "none"


def is_first_stage_only(spec: object) -> bool:
    """True for the spec that means "no reranker" (``"none"``, any case, or ``None``).

    Example:
        >>> is_first_stage_only("None"), is_first_stage_only("bi-encoder:x")
        (True, False)
    """
    return spec is None or (isinstance(spec, str) and spec.strip().lower() == FIRST_STAGE_ONLY)


class FirstStageOnly(Reranker):
    """Scores each passage by its position in the input: ``1 / (position + 1)``.

    The order is the input order (the first stage's), blank passages last as for every
    reranker; scores only encode rank, so ``score_threshold`` is refused.
    """

    name = FIRST_STAGE_ONLY
    supports_threshold = False
    serialise = False

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        return [1.0 / (i + 1) for i in range(len(texts))]
