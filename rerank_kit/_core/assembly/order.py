"""``order``: where the kept passages go in the prompt.

``"score"`` (default) keeps the selection order, best first (with ``diversity``, the order of
maximal marginal relevance). ``"lost-in-the-middle"`` puts the best passages at the two ends of
the list and the weakest in the middle, as LangChain's ``LongContextReorder`` did: LLMs read
the start and the end of a long context best (Liu et al., 2023). It is LangChain's algorithm
exactly: for an odd count the best passage comes first and the second best last; for an even
count the best comes last and the second best first. Scores are unchanged;
``Ranked.context_rank`` keeps each passage's rank in the selection order (1 = best).

Example:
    >>> lost_in_the_middle([1, 2, 3, 4, 5])
    [1, 3, 5, 4, 2]
    >>> lost_in_the_middle([1, 2, 3, 4])
    [2, 4, 3, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["ORDERS", "check_order", "lost_in_the_middle"]

ORDERS = ("score", "lost-in-the-middle")
T = TypeVar("T")


def check_order(order: object) -> str:
    """``order`` if it is one of ``ORDERS``, else a ``ValueError``."""
    if order not in ORDERS:
        raise ValueError(f"order must be 'score' or 'lost-in-the-middle', got {order!r}")
    return str(order)


def lost_in_the_middle(items: Sequence[T]) -> list[T]:
    """``items`` (best first) with the best at both ends and the weakest in the middle."""
    out: list[T] = []
    for i, item in enumerate(reversed(items)):
        if i % 2 == 1:
            out.append(item)
        else:
            out.insert(0, item)
    return out
