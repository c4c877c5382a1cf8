"""What a rerank call cost: ``Usage`` per call, summed per reranker instance.

``Usage`` is a small frozen value: pairs scored, tokens scored, model calls and, for hosted
providers, the units each bills (read from the provider's answer). Every ``rerank``/``arerank``
returns a :class:`RankedList` (a ``list`` of ``Ranked``) that carries its call's ``usage``, so
the cost of one call is read from its own result, never from a "last call" attribute that
threads and tasks would race on. ``Reranker.usage`` is the sum over an instance's calls
(:class:`UsageTotal`, lock-protected; ``Reranker.reset_usage()`` starts it again).

Example:
    >>> a = Usage(pairs=3, tokens=120, model_calls=1)
    >>> b = Usage(pairs=2, model_calls=1, billed_units={"search_units": 1.0})
    >>> (a + b).pairs, (a + b).billed_units
    (5, {'search_units': 1.0})
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RankedList", "Usage", "UsageTotal", "usage_total"]


@dataclass(frozen=True)
class Usage:
    """The cost of one rerank call (or a sum of calls).

    Attributes:
        pairs: (query, passage) pairs sent to a model: blank passages and score-cache hits are
            not counted; a passage scored in windows counts once per window; a cascade counts
            every stage's pairs.
        tokens: Tokens scored: for local models the tokens each pair fed the model (after
            truncation, without padding); for hosted providers what the provider reports
            (``usage.total_tokens``), 0 when it reports none.
        model_calls: Calls into a model: one per scoring call of a local model, one per
            answered HTTP request for a remote one (retries are not counted).
        billed_units: What hosted providers bill, by unit, summed over their answers:
            ``search_units`` (Cohere ``meta.billed_units``), ``tokens`` (Jina, Voyage
            ``usage.total_tokens``), ``rerank_units`` (Pinecone).
    """

    pairs: int = 0
    tokens: int = 0
    model_calls: int = 0
    billed_units: Mapping[str, float] = field(default_factory=dict)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        billed = dict(self.billed_units)
        for unit, amount in other.billed_units.items():
            billed[unit] = billed.get(unit, 0) + amount
        return Usage(
            self.pairs + other.pairs,
            self.tokens + other.tokens,
            self.model_calls + other.model_calls,
            billed,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for callback metadata and JSON).

        Example:
            >>> Usage(pairs=2, billed_units={"tokens": 42}).as_dict()
            {'pairs': 2, 'tokens': 0, 'model_calls': 0, 'billed_units': {'tokens': 42}}
        """
        return {
            "pairs": self.pairs,
            "tokens": self.tokens,
            "model_calls": self.model_calls,
            "billed_units": dict(self.billed_units),
        }

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        """The sum of ``usages`` (``Usage()`` for none)."""
        out = cls()
        for usage in usages:
            out = out + usage
        return out


class UsageTotal:
    """A running, thread-safe sum of ``Usage`` (one per reranker instance).

    Example:
        >>> total = UsageTotal()
        >>> total.add(Usage(pairs=2)); total.add(Usage(pairs=3))
        >>> total.value.pairs, total.reset().pairs, total.value.pairs
        (5, 5, 0)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = Usage()

    def add(self, usage: Usage) -> None:
        """Add one call's usage."""
        with self._lock:
            self._value = self._value + usage

    @property
    def value(self) -> Usage:
        """The sum so far."""
        with self._lock:
            return self._value

    def reset(self) -> Usage:
        """Start again from zero; returns the sum until now."""
        with self._lock:
            value, self._value = self._value, Usage()
        return value


_CREATE = threading.Lock()


def usage_total(owner: Any) -> UsageTotal:
    """The ``UsageTotal`` of a reranker instance (made on first use, once, under a lock)."""
    total: UsageTotal | None = owner.__dict__.get("_usage_total")
    if total is None:
        with _CREATE:
            total = owner.__dict__.setdefault("_usage_total", UsageTotal())
    return total


class RankedList(list):
    """What ``rerank``/``arerank`` return: a plain ``list`` of ``Ranked``, plus ``usage``.

    It is a ``list`` in every respect (indexing, equality with lists, ``json``, pickling); the
    extra ``usage`` attribute is the :class:`Usage` of the call that produced it.

    Example:
        >>> from rerank_kit.testing import FakeReranker
        >>> out = FakeReranker().rerank("apple", ["an apple", "a pear"])
        >>> isinstance(out, list), out.usage.pairs
        (True, 2)
    """

    usage: Usage

    def __init__(self, items: Iterable[Any] = (), usage: Usage | None = None) -> None:
        super().__init__(items)
        self.usage = usage if usage is not None else Usage()

    def __reduce__(self) -> Any:
        return (RankedList, (list(self), self.usage))
