"""``dedupe``: drop near-duplicates, best first, so ``top_n`` fills with distinct passages.

Walk the candidates best first; a candidate whose similarity to an already kept one is at or
above the threshold is dropped, and the kept one records it (``Ranked.duplicates``, input
indices). A threshold of 1.0 drops exact duplicates only, after whitespace normalisation,
whatever the similarity measure.

Example:
    >>> from rerank_kit import Ranked
    >>> from rerank_kit._core.assembly.similarity import LexicalSimilarity
    >>> texts = ["red apple pie recipe", "red  apple pie recipe", "green pear tart"]
    >>> kept = dedupe([Ranked(0, 0.9), Ranked(1, 0.8), Ranked(2, 0.1)], texts, 1.0, None)
    >>> [(r.index, r.duplicates) for r in kept]
    [(0, (1,)), (2, ())]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from rerank_kit._core.assembly.similarity import normalise_space
from rerank_kit._core.types import Ranked

__all__ = ["dedupe"]


def dedupe(
    ranked: Sequence[Ranked],
    texts: Sequence[str],
    threshold: float,
    similarity: Callable[[int, int], float] | None,
) -> list[Ranked]:
    """The candidates (best first) that are not near-duplicates of a better one.

    Args:
        ranked: Candidates, best first.
        texts: The caller's texts (``Ranked.index`` points here).
        threshold: In (0, 1]; 1.0 means exact duplicates after whitespace normalisation.
        similarity: ``(i, j) -> similarity`` by input index (unused at 1.0).

    Returns:
        The kept candidates, in order, each with ``duplicates`` naming those it absorbed.
    """
    kept: list[Ranked] = []
    absorbed: dict[int, list[int]] = {}
    if threshold >= 1.0 or similarity is None:
        first: dict[str, int] = {}
        for r in ranked:
            key = normalise_space(texts[r.index])
            if key in first:
                absorbed[first[key]].append(r.index)
            else:
                first[key] = r.index
                absorbed[r.index] = []
                kept.append(r)
    else:
        for r in ranked:
            twin = next((k for k in kept if similarity(k.index, r.index) >= threshold), None)
            if twin is None:
                absorbed[r.index] = []
                kept.append(r)
            else:
                absorbed[twin.index].append(r.index)
    return [
        dataclasses.replace(r, duplicates=tuple(absorbed[r.index])) if absorbed[r.index] else r
        for r in kept
    ]
