"""Which passages did an answer use? ``find_citations``: explicit markers first, else overlap.

**Explicit markers** win when the answer has any: ``[1]``, ``[1, 3]``, ``[2-4]``, footnotes
``[^2]``, ``[source 2]`` / ``[doc 2]`` / ``[passage 2]`` (1-based positions among the passages
shown), and ``[doc-id]`` (a bracketed id of a shown passage). Numbers beyond the passages
shown are ignored.

**Otherwise, lexical overlap** (the rule measured in ``docs/feedback-loop.md``): the answer is
cut into sentences; a sentence's content words (lower case, stop words and words under three
letters dropped, each cut to its first ``STEM`` letters so that "cooling" and "cooled" meet)
are weighted by how rare they are among the passages shown (``log(1 + n / df)``, a word in no
passage weighs the most); a sentence **supports** a passage when the weighted share of its
words found in the passage is at least ``threshold`` and it shares ``min_shared`` words with it;
the passage it supports best is cited, and any other within ``margin`` of the best. Sentences
under ``min_words`` content words ("Hope this helps.") cite nothing.

The defaults were chosen on answers written from known Cranfield passages and measured on
CISI (``benchmarks/citation_rule.py``; the figures are in ``docs/feedback-loop.md``).

Example:
    >>> from rerank_kit.citations import find_citations
    >>> passages = ["Clean the laptop fan vents when the fan is loud.",
    ...             "Laptop batteries last longer below 80 percent charge."]
    >>> find_citations("Clean the vents [1].", passages)
    [0]
    >>> find_citations("When the fan is loud, clean the laptop fan vents.", passages)
    [0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

__all__ = ["DEFAULT_MARGIN", "DEFAULT_THRESHOLD", "STEM", "find_citations", "markers"]

#: Weighted share of a sentence's content words a passage must hold to be cited.
DEFAULT_THRESHOLD = 0.5
#: Other passages within this much of the best one for a sentence are cited too.
DEFAULT_MARGIN = 0.0
#: Letters a word is cut to before matching (a cheap stemmer).
STEM = 6

_WORD = re.compile(r"[^\W_]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_BRACKET = re.compile(r"\[\^?([^\[\]]{1,200})\]")
_NUMBERS = re.compile(
    r"^(?:(?:source|doc|document|passage|ref|context)\s*#?\s*)?([\d,;\s\-\u2013]+)$", re.I
)
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom
    why will with would you your yours""".split()
)


def markers(answer: str, ids: Sequence[str]) -> list[int]:
    """Passages cited by explicit markers: ``[n]`` / ``[^n]`` / ``[source n]`` / ``[doc-id]``.

    Example:
        >>> markers("Use the vents [2][^1] and see [faq-9].", ["a", "b", "faq-9"])
        [0, 1, 2]
    """
    by_id = {str(doc_id): i for i, doc_id in enumerate(ids)}
    found: set[int] = set()
    for match in _BRACKET.finditer(answer):
        inside = match.group(1).strip()
        if inside in by_id:
            found.add(by_id[inside])
            continue
        numbers = _NUMBERS.match(inside)
        if not numbers:
            continue
        for part in re.split(r"[,;\s]+", numbers.group(1).strip()):
            bounds = [b for b in re.split("[-\u2013]", part) if b.strip()]
            if not bounds or not all(b.strip().isdigit() for b in bounds):
                continue
            lo, hi = int(bounds[0]), int(bounds[-1])
            for n in range(lo, min(hi, lo + 50) + 1):  # a range, bounded
                if 1 <= n <= len(ids):
                    found.add(n - 1)
    return sorted(found)


def _stems(text: str) -> list[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return [w[:STEM] for w in words if len(w) >= 3 and w not in _STOP]


def find_citations(
    answer: str,
    passages: Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    min_shared: int = 3,
    min_words: int = 3,
    use_markers: bool = True,
) -> list[int]:
    """The positions (0-based, in order) of the passages ``answer`` used.

    Args:
        answer: The answer text.
        passages: The passages shown to the model, in the order shown.
        ids: Their ids, for ``[doc-id]`` markers (default: none).
        threshold: Weighted share of a sentence's words a passage must hold (see the module).
        margin: Also cite passages within this much of a sentence's best one.
        min_shared: Content words a sentence must share with a passage it cites.
        min_words: Content words a sentence needs to cite anything.
        use_markers: Look for explicit markers first (``False``: overlap only).

    Raises:
        ValueError: On a threshold outside (0, 1] or ``ids`` of another length.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if ids is not None and len(ids) != len(passages):
        raise ValueError(f"{len(ids)} ids for {len(passages)} passages")
    if not isinstance(answer, str) or not answer.strip() or not passages:
        return []
    if use_markers:
        cited = markers(answer, ids if ids is not None else [""] * len(passages))
        if cited:
            return cited
    bags = [set(_stems(str(p))) for p in passages]
    n = len(bags)
    df: dict[str, int] = {}
    for bag in bags:
        for word in bag:
            df[word] = df.get(word, 0) + 1
    cited_set: set[int] = set()
    for sentence in _SENTENCE.split(answer):
        words = set(_stems(_BRACKET.sub(" ", sentence)))
        if len(words) < min_words:
            continue
        weight = {w: math.log(1 + n / df.get(w, 0.5)) for w in words}
        total = sum(weight.values())
        shares = []
        for bag in bags:
            shared = words & bag
            share = sum(weight[w] for w in shared) / total if len(shared) >= min_shared else 0.0
            shares.append(share)
        best = max(shares)
        if best >= threshold:
            cited_set.update(
                i for i, s in enumerate(shares) if s >= threshold and s >= best - margin
            )
    return sorted(cited_set)
