"""``token_budget``: keep the best passages whose total length fits the budget.

Passages are taken in the final selection order; one that does not fit in what is left is
skipped and the next one tried, so a long passage never blocks shorter ones after it. With
``top_n`` both limits hold. Lengths are what the reranker's public ``token_counts(texts)`` says
(``Reranker.token_counts``: its own tokenizer, without special tokens; a cascade: its last
stage's; a listwise LLM reranker: its ``count_tokens``), and whitespace-separated words when
it returns ``None`` (a reranker without a tokenizer). A family builds its counter with
``tokenizer_counts`` from its tokenizer.

Example:
    >>> count = token_counter(object())
    >>> count.name, count(["one two three", "four"])
    ('words', [3, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenCounter", "token_counter", "tokenizer_counts"]


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of texts; ``name`` says how (``"words"`` or ``"tokenizer"``)."""

    name: str
    count: Callable[[list[str]], list[int]]

    def __call__(self, texts: list[str]) -> list[int]:
        return self.count(texts) if texts else []


def _words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


WORDS = TokenCounter("words", _words)


def _from_tokenizer(tokenizer: Any) -> Callable[[list[str]], list[int]] | None:
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "to_str"):  # tokenizers
        own = type(tokenizer).from_str(tokenizer.to_str())  # a copy without truncation
        own.no_truncation()
        own.no_padding()

        def fast(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in own.encode_batch(texts, add_special_tokens=False)]

        return fast
    if callable(tokenizer) and hasattr(tokenizer, "num_special_tokens_to_add"):  # transformers

        def hf(texts: list[str]) -> list[int]:
            ids = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
            return [len(row) for row in ids["input_ids"]]

        return hf
    return None


def tokenizer_counts(owner: Any, tokenizer: Any, texts: Sequence[str]) -> list[int] | None:
    """Each text's tokens under ``tokenizer`` (no special tokens, no truncation), or ``None``.

    For a family's ``token_counts``: ``tokenizer`` is a ``tokenizers.Tokenizer`` or a
    transformers tokenizer (``None`` or another object: ``None``, count words). The counter is
    built once per ``owner`` (the reranker) and tokenizer, then reused.

    Example:
        >>> class Owner:
        ...     pass
        >>> tokenizer_counts(Owner(), None, ["a b"]) is None
        True
    """
    if tokenizer is None:
        return None
    store = getattr(owner, "__dict__", {})
    cached = store.get("_token_counter")
    if cached is None or cached[0] is not tokenizer:
        cached = store["_token_counter"] = (tokenizer, _from_tokenizer(tokenizer))
    count: Callable[[list[str]], list[int]] | None = cached[1]
    if count is None:
        return None
    items = list(texts)
    return count(items) if items else []


def token_counter(reranker: Any) -> TokenCounter:
    """How ``token_budget`` counts for ``reranker``: its ``token_counts``, else words.

    ``token_counts([])`` tells which: ``None`` means the reranker has no tokenizer.
    """
    counts = getattr(reranker, "token_counts", None)
    if not callable(counts) or counts([]) is None:
        return WORDS

    def count(texts: list[str]) -> list[int]:
        found = counts(texts)
        return _words(texts) if found is None else [int(n) for n in found]

    return TokenCounter("tokenizer", count)
