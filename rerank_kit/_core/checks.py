"""Input checks shared by every reranker and both adapters: query, texts, ``top_n``, threshold.

Example:
    >>> check_texts(["a", "b"])
    ['a', 'b']
    >>> is_blank("  ")
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = [
    "check_encodable",
    "check_query",
    "check_texts",
    "check_threshold",
    "check_threshold_supported",
    "check_top_n",
    "is_blank",
    "pair_overflow",
]


#: Code points that cannot be encoded as UTF-8 (lone surrogates; a ``str`` has no others).
_UNENCODABLE = re.compile("[\ud800-\udfff]")


class _HasThresholdSupport(Protocol):
    name: str


def is_blank(text: str) -> bool:
    """True for an empty or whitespace-only passage (never sent to a model)."""
    return not text.strip()


def pair_overflow(
    tokenizer: Any, query: str, texts: list[str], max_tokens: int | None
) -> list[bool]:
    """Which (query, text) pairs exceed ``max_tokens`` with a Hugging Face tokenizer.

    Only pairs whose UTF-8 size could exceed the limit are tokenized (a token covers at least
    one byte), so short candidate lists cost nothing.
    """
    flags = [False] * len(texts)
    if not max_tokens or tokenizer is None:
        return flags
    budget = max_tokens - 4  # room for [CLS]/[SEP]-style special tokens
    qbytes = len(query.encode("utf-8"))
    suspects = [i for i, t in enumerate(texts) if qbytes + len(t.encode("utf-8")) > budget]
    if not suspects:
        return flags
    encoded = tokenizer(
        [query] * len(suspects),
        [texts[i] for i in suspects],
        truncation=False,
        add_special_tokens=True,
        verbose=False,
    )["input_ids"]
    for i, ids in zip(suspects, encoded, strict=True):
        flags[i] = len(ids) > max_tokens
    return flags


def check_encodable(text: str, where: str) -> str:
    r"""Return ``text`` if it can be encoded as UTF-8, else a ``ValueError`` naming the position.

    A Python ``str`` can hold lone surrogates (``"\ud800"``, e.g. from bytes decoded with
    ``errors="surrogateescape"``); no tokenizer, server or cache file can take them.

    Example:
        >>> check_encodable("café", "query")
        'café'
        >>> check_encodable("ab\ud800", "texts[2]")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: texts[2] holds a lone surrogate ('\ud800') at character 2, which cannot ...
    """
    if text.isascii():
        return text
    found = _UNENCODABLE.search(text)
    if found is not None:
        raise ValueError(
            f"{where} holds a lone surrogate ({found.group()!r}) at character {found.start()}, "
            "which cannot be encoded as UTF-8; clean the text first "
            '(e.g. text.encode("utf-8", "replace").decode())'
        )
    return text


def check_query(query: Any) -> str:
    """Return ``query`` if it is a non-blank string, else raise a clear error."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    check_encodable(query, "query")
    if not query.strip():
        raise ValueError("query must be a non-empty string (it is empty or whitespace only)")
    return query


def check_texts(texts: Any) -> list[str]:
    """Return ``texts`` as a new list of strings, or raise naming the first bad entry."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a sequence of str (for example a list), got {type(texts).__name__}"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{i}] must be a str, got {type(text).__name__}; "
                "pass the document text, not the document object"
            )
        check_encodable(text, f"texts[{i}]")
    return out


def check_top_n(top_n: Any) -> int | None:
    """Return ``top_n`` if it is ``None`` or a positive int, else raise ``ValueError``."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be a positive int or None, got {top_n!r}")
    if top_n <= 0:
        raise ValueError(f"top_n must be >= 1 or None (keep all), got {top_n}")
    return top_n


def check_threshold(score_threshold: Any) -> float | None:
    """Return ``score_threshold`` as a float if finite (negative is fine), else raise."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise TypeError(f"score_threshold must be a number or None, got {score_threshold!r}")
    try:
        value = float(score_threshold)
    except OverflowError:
        raise ValueError(
            f"score_threshold is out of float range, got {score_threshold!r}"
        ) from None
    if math.isnan(value):
        raise ValueError("score_threshold must not be NaN (use None for no threshold)")
    return value


def check_threshold_supported(
    reranker: _HasThresholdSupport, score_threshold: float | None
) -> None:
    """Refuse a threshold for a reranker whose scores are ranks, not relevance (e.g. listwise LLMs)."""
    if score_threshold is not None and not getattr(reranker, "supports_threshold", True):
        raise ValueError(
            f"{reranker.name} gives rank-derived scores (1/rank), not relevance scores, so "
            "score_threshold has no meaning for it; use top_n instead"
        )
