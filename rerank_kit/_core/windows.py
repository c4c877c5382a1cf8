"""Long passages scored whole: token windows with overlap, scored in one call, aggregated.

A reranker reads at most its token limit of a (query, passage) pair; the rest of a long passage
is cut. With ``long_documents="max"`` (or ``"mean"``, ``"first"``) a passage that does not fit
is split, with its own model's tokenizer, into windows that do fit beside the whole query; the
windows of every passage go through the model in the same batched call as the short passages,
and each passage gets the max (mean, first) of its windows' scores. Windows overlap by a
quarter of their length, so a relevant sentence cut by one window's edge is whole in the next.

Each backend says how to tokenize (``WindowPlan``); the splitting and aggregation live here.

Example:
    >>> plan = WindowPlan(budget=5, offsets=whitespace_offsets)
    >>> windows, owner, split = make_windows(["a b c d e f g h i j", "short"], plan)
    >>> windows
    ['a b c d', 'd e f g', 'g h i j', 'short']
    >>> owner, split
    ([0, 0, 0, 1], [True, False])
    >>> aggregate([0.1, 0.9, 0.2, 0.5], owner, 2, "max")
    [0.9, 0.5]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "LONG_DOCUMENTS",
    "LongDocuments",
    "WindowPlan",
    "aggregate",
    "check_long_documents",
    "hf_offsets",
    "make_windows",
    "tokenizers_offsets",
    "whitespace_offsets",
]

LongDocuments = Literal["truncate", "max", "mean", "first"]

#: Accepted values of ``long_documents``.
LONG_DOCUMENTS: tuple[str, ...] = ("truncate", "max", "mean", "first")

#: Share of a window repeated at the start of the next one.
OVERLAP = 0.25

#: Below this many passage tokens per window (a very long query), windows are not worth it.
MIN_BUDGET = 16

Offsets = list[tuple[int, int]]


def check_long_documents(mode: Any) -> str:
    """Return ``mode`` if it is one of ``LONG_DOCUMENTS``, else raise a clear error.

    Example:
        >>> check_long_documents("max")
        'max'
    """
    if mode not in LONG_DOCUMENTS:
        raise ValueError(f"long_documents must be one of {', '.join(LONG_DOCUMENTS)}, got {mode!r}")
    return str(mode)


@dataclass(frozen=True)
class WindowPlan:
    """How a reranker splits long passages into windows for one query (public).

    A reranker family returns one from its windows hook, ``_window_plan(query)``, to score
    passages longer than its token limit in overlapping windows (``long_documents="max"``,
    ``"mean"`` or ``"first"``); the base class does the splitting, the batching and the
    aggregation. Build one with ``WindowPlan.words`` (whitespace words as tokens),
    ``WindowPlan.from_tokenizer`` (a Hugging Face fast tokenizer or a ``tokenizers.Tokenizer``)
    or directly from a function of your own.

    Attributes:
        budget: Passage tokens that fit in one window beside this query (and the special
            tokens).
        offsets: Maps texts to each text's token character spans ``(start, end)``, without
            special tokens and without truncation.

    Example:
        >>> plan = WindowPlan.words(4)
        >>> plan.budget, plan.offsets(["to be or"])
        (4, [[(0, 2), (3, 5), (6, 8)]])
    """

    budget: int
    offsets: Callable[[list[str]], Sequence[Offsets]]

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int):
            raise TypeError(f"WindowPlan budget must be an int, got {self.budget!r}")
        if not callable(self.offsets):
            raise TypeError(f"WindowPlan offsets must be callable, got {self.offsets!r}")

    @classmethod
    def words(cls, budget: int) -> WindowPlan:
        """Windows of at most ``budget`` whitespace-separated words.

        Example:
            >>> make_windows(["a b c d e f g h i j"], WindowPlan.words(6))[0]
            ['a b c d e', 'e f g h i', 'i j']
        """
        return cls(budget, whitespace_offsets)

    @classmethod
    def from_tokenizer(cls, budget: int, tokenizer: Any) -> WindowPlan:
        """Windows of at most ``budget`` tokens of ``tokenizer``.

        Args:
            budget: Passage tokens per window (the model's limit less the query's tokens and
                the special tokens).
            tokenizer: A Hugging Face *fast* tokenizer (``transformers``) or a
                ``tokenizers.Tokenizer``; both report character offsets.

        Raises:
            TypeError: A tokenizer that reports no character offsets (a slow one).
        """
        if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "no_truncation"):
            return cls(budget, tokenizers_offsets(tokenizer))
        if getattr(tokenizer, "is_fast", False):
            return cls(budget, hf_offsets(tokenizer))
        raise TypeError(
            f"{type(tokenizer).__name__} reports no character offsets: give a Hugging Face "
            "fast tokenizer or a tokenizers.Tokenizer, or build WindowPlan(budget, offsets)"
        )


def whitespace_offsets(texts: list[str]) -> list[Offsets]:
    """Character spans of whitespace-separated words (a tokenizer for examples and tests)."""
    return [[(m.start(), m.end()) for m in re.finditer(r"\S+", t)] for t in texts]


def hf_offsets(tokenizer: Any) -> Callable[[list[str]], Sequence[Offsets]]:
    """Token spans from a Hugging Face *fast* tokenizer (``transformers``)."""

    def offsets(texts: list[str]) -> Sequence[Offsets]:
        out = tokenizer(
            texts,
            add_special_tokens=False,
            truncation=False,
            return_offsets_mapping=True,
            verbose=False,
        )["offset_mapping"]
        return [[(int(a), int(b)) for a, b in row] for row in out]

    return offsets


def tokenizers_offsets(tokenizer: Any) -> Callable[[list[str]], Sequence[Offsets]]:
    """Token spans from a ``tokenizers.Tokenizer`` (truncation is switched off first)."""

    def offsets(texts: list[str]) -> Sequence[Offsets]:
        tokenizer.no_truncation()
        encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encoded]

    return offsets


def _word_start(spans: Offsets, i: int, limit: int) -> int:
    """``i``, or the first later token (before ``limit``) that starts a word."""
    j = i
    while 0 < j < limit and spans[j][0] == spans[j - 1][1]:  # glued to the previous token
        j += 1
    return j if j < limit else i


def _spans(spans: Offsets, size: int, first_only: bool) -> list[tuple[int, int]]:
    """Token index ranges ``[start, end)`` of the windows over one passage's tokens."""
    n = len(spans)
    stride = max(1, size - int(size * OVERLAP))
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(n, start + size)
        out.append((start, end))
        if end >= n or first_only:
            return out
        nxt = _word_start(spans, start + stride, end)
        start = nxt if nxt > start else start + stride


def make_windows(
    texts: list[str], plan: WindowPlan, *, first_only: bool = False
) -> tuple[list[str], list[int], list[bool]]:
    """Split the texts that do not fit ``plan.budget`` into overlapping windows.

    Only texts whose UTF-8 size could exceed the budget are tokenized. A few tokens of the
    budget are kept spare, since a window's text re-tokenized on its own may differ slightly at
    its edges.

    Args:
        texts: The passages.
        plan: The backend's budget and tokenizer.
        first_only: Keep only each long passage's first window.

    Returns:
        ``(windows, owner, split)``: the texts to score (a short passage is its own single
        window), the passage index of each window, and whether each passage was split.
    """
    size = max(1, plan.budget - 1 - plan.budget // 50)
    suspects = [i for i, t in enumerate(texts) if len(t.encode("utf-8")) > plan.budget]
    token_spans: dict[int, Offsets] = {}
    if suspects:
        rows = plan.offsets([texts[i] for i in suspects])
        token_spans = {i: list(r) for i, r in zip(suspects, rows, strict=True)}
    windows: list[str] = []
    owner: list[int] = []
    split = [False] * len(texts)
    for i, text in enumerate(texts):
        spans = token_spans.get(i)
        if spans is None or len(spans) <= plan.budget:
            windows.append(text)
            owner.append(i)
            continue
        split[i] = True
        for start, end in _spans(spans, size, first_only):
            windows.append(text[spans[start][0] : spans[end - 1][1]])
            owner.append(i)
    return windows, owner, split


def aggregate(scores: Sequence[float], owner: Sequence[int], n: int, mode: str) -> list[float]:
    """Each passage's score from its windows' scores: ``"max"``, ``"mean"`` or ``"first"``.

    Example:
        >>> aggregate([1.0, 3.0, 2.0], [0, 0, 1], 2, "mean")
        [2.0, 2.0]
    """
    per: list[list[float]] = [[] for _ in range(n)]
    for s, i in zip(scores, owner, strict=True):
        per[i].append(float(s))
    if mode == "max":
        return [max(v) for v in per]
    if mode == "mean":
        return [sum(v) / len(v) for v in per]
    return [v[0] for v in per]
