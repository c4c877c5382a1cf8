"""``diversity``: maximal marginal relevance over the reranker's final scores.

Scores are min-max normalised over the candidates (all equal: all 1.0) to ``relevance``; each
pick is the candidate maximising ``(1 - weight) * relevance - weight * max similarity to the
candidates already picked`` (ties: the better-scored first). The first pick is the best
candidate. The picks come one at a time, so the selection after it stops as soon as ``top_n``
is reached.

Example:
    >>> from rerank_kit import Ranked
    >>> sims = {(0, 1): 0.99, (0, 2): 0.0, (1, 2): 0.0}
    >>> sim = lambda i, j: 1.0 if i == j else sims[min(i, j), max(i, j)]
    >>> [r.index for r in mmr([Ranked(0, 3.0), Ranked(1, 2.9), Ranked(2, 1.0)], 0.5, sim)]
    [0, 2, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from rerank_kit._core.types import Ranked

__all__ = ["mmr", "normalised"]


def normalised(scores: Sequence[float]) -> list[float]:
    """Min-max normalised scores in [0, 1] (all 1.0 when they are all equal).

    Example:
        >>> normalised([2.0, 4.0, 3.0]), normalised([5.0, 5.0])
        ([0.0, 1.0, 0.5], [1.0, 1.0])
    """
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def mmr(
    ranked: Sequence[Ranked], weight: float, similarity: Callable[[int, int], float]
) -> Iterator[Ranked]:
    """Yield ``ranked`` (best first) in maximal-marginal-relevance order."""
    relevance = normalised([r.score for r in ranked])
    remaining = list(range(len(ranked)))
    nearest: list[float | None] = [None] * len(ranked)
    while remaining:
        best = max(
            remaining,
            key=lambda k: (1.0 - weight) * relevance[k] - weight * (nearest[k] or 0.0),
        )
        remaining.remove(best)
        yield ranked[best]
        picked = ranked[best].index
        for k in remaining:
            s = similarity(picked, ranked[k].index)
            current = nearest[k]
            nearest[k] = s if current is None else max(current, s)
