"""The listwise prompt and the reading of an LLM's answer: pure functions, no model.

``default_prompt`` numbers the passages, ``parse_ranking`` reads (and repairs) the answer and
``plan_windows`` lays out RankGPT's sliding windows; ``ListwiseLLMReranker`` drives them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ParsedRanking", "default_prompt", "parse_ranking", "plan_windows"]

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.DOTALL)
_JSON_ITEM = re.compile(r"^\s*\[?\s*(\d+)\s*\]?\s*$")


def default_prompt(query: str, passages: Sequence[str]) -> str:
    """The RankGPT-style prompt: numbered passages, the query, and the answer format wanted.

    Example:
        >>> print(default_prompt("capital of France", ["Berlin is in Germany.", "Paris is in France."]))
        I will give you 2 passages, each introduced by a number in square brackets. Rank them by relevance to the search query.
        <BLANKLINE>
        Search query: capital of France
        <BLANKLINE>
        [1] Berlin is in Germany.
        [2] Paris is in France.
        <BLANKLINE>
        Search query: capital of France
        Rank the 2 passages above from most to least relevant to the search query. Answer with the passage numbers only, most relevant first, in the form [2] > [1], and say nothing else.
    """
    n = len(passages)
    lines = [
        f"I will give you {n} passages, each introduced by a number in square brackets. "
        "Rank them by relevance to the search query.",
        "",
        f"Search query: {query}",
        "",
    ]
    lines += [f"[{i}] {' '.join(p.split())}" for i, p in enumerate(passages, 1)]
    lines += [
        "",
        f"Search query: {query}",
        f"Rank the {n} passages above from most to least relevant to the search query. Answer "
        "with the passage numbers only, most relevant first, in the form [2] > [1], and say "
        "nothing else.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedRanking:
    """An LLM's answer for one window, parsed and repaired into a full ordering.

    Attributes:
        order: 0-based positions in the window, best first; every position exactly once.
        shape: How the answer was read: ``"json"`` (a JSON list), ``"brackets"`` (``[3] > [1]``),
            ``"numbers"`` (``3, 1, 2`` or ``3 > 1 > 2``), or ``"none"`` (empty or no number).
        repaired: True unless the answer named every passage exactly once and nothing else.
        unparsable: True if the answer held no passage number at all (input order kept).
        ignored: Numbers dropped from the answer (unknown, or repeated), as written.
        missing: Passage numbers (1-based) the answer left out, appended in input order.
    """

    order: list[int]
    shape: str
    repaired: bool
    unparsable: bool
    ignored: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def _json_numbers(text: str) -> list[int] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    numbers: list[int] = []
    for item in value:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            numbers.append(item)
        elif isinstance(item, str) and (m := _JSON_ITEM.match(item)):
            numbers.append(int(m[1]))
        else:
            return None
    return numbers


def parse_ranking(answer: str | None, n: int) -> ParsedRanking:
    """Read an LLM's ordering of ``n`` numbered passages, repairing what is not clean.

    Accepted shapes: ``[3] > [1] > [2]`` (any text around bracketed numbers is ignored),
    ``3, 1, 2`` or ``3 > 1 > 2`` (bare numbers), a JSON list (``[3, 1, 2]`` or ``["[3]", "[1]"]``),
    optionally inside a Markdown code fence. Repairs: numbers outside ``1..n`` and repeats are
    ignored; passages the answer leaves out follow the ranked ones in their input order. An empty
    answer or one without any number keeps the input order (``unparsable``).

    Args:
        answer: The LLM's text (``None`` counts as empty).
        n: How many passages the prompt numbered (``1..n``).

    Returns:
        A ``ParsedRanking`` whose ``order`` always holds each of ``0..n-1`` once.

    Example:
        >>> parse_ranking("[3] > [1] > [2]", 3).order
        [2, 0, 1]
        >>> p = parse_ranking("2, 2, 7", 3)
        >>> (p.order, p.repaired, p.ignored, p.missing)
        ([1, 0, 2], True, [2, 7], [1, 3])
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    text = (answer or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced[1].strip()
    numbers = _json_numbers(text)
    shape = "json"
    if numbers is None:
        bracketed = _BRACKETED.findall(text)
        if bracketed:
            numbers, shape = [int(x) for x in bracketed], "brackets"
        else:
            numbers, shape = [int(x) for x in _NUMBER.findall(text)], "numbers"
    if not numbers:
        return ParsedRanking(
            order=list(range(n)),
            shape="none",
            repaired=True,
            unparsable=True,
            missing=list(range(1, n + 1)),
        )
    order: list[int] = []
    seen: set[int] = set()
    ignored: list[int] = []
    for number in numbers:
        if 1 <= number <= n and number not in seen:
            seen.add(number)
            order.append(number - 1)
        else:
            ignored.append(number)
    missing = [i + 1 for i in range(n) if i + 1 not in seen]
    order += [m - 1 for m in missing]
    return ParsedRanking(
        order=order,
        shape=shape,
        repaired=bool(ignored or missing),
        unparsable=False,
        ignored=ignored,
        missing=missing,
    )


def plan_windows(
    n: int, window: int = 20, step: int = 10, max_calls: int | None = None
) -> list[tuple[int, int]]:
    """The ``(start, end)`` slices the LLM orders, in call order: from the bottom of the list up.

    Each window overlaps the next by ``window - step`` candidates, so a relevant passage can climb
    from the bottom to the top in one pass (RankGPT's sliding window). The last window always
    starts at 0. A window of fewer than two candidates needs no call and is left out. With
    ``max_calls``, only the first ``window + (max_calls - 1) * step`` candidates are covered (the
    rest keep their input order below them).

    Example:
        >>> plan_windows(50)
        [(30, 50), (20, 40), (10, 30), (0, 20)]
        >>> plan_windows(8)
        [(0, 8)]
        >>> plan_windows(100, max_calls=2)
        [(10, 30), (0, 20)]
    """
    span = n if max_calls is None else min(n, window + (max_calls - 1) * step)
    windows: list[tuple[int, int]] = []
    end = span
    while end > 0:
        start = max(0, end - window)
        if end - start >= 2:
            windows.append((start, end))
        if start == 0:
            break
        end -= step
    return windows
