"""``token_budget``: keep the best passages whose total length fits the budget.

Passages are taken in the final selection order; one that does not fit in what is left is
skipped and the next one tried, so a long passage never blocks shorter ones after it. With
``top_n`` both limits hold. Lengths are counted with the reranker's own tokenizer when it has
one (cross-encoders, bi-encoders, FlashRank; a cascade: its last stage's; a listwise LLM
reranker: its ``count_tokens``), without special tokens, and as whitespace-separated words
otherwise.

Example:
    >>> count = token_counter(object())
    >>> count.name, count(["one two three", "four"])
    ('words', [3, 1])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenCounter", "token_counter"]


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


def _find(reranker: Any) -> Callable[[list[str]], list[int]] | None:
    stages = getattr(reranker, "stages", None)
    if stages:
        return _find(stages[-1].reranker)
    count = getattr(reranker, "count_tokens", None)
    if callable(count):  # a listwise LLM reranker: str -> int
        return lambda texts: [int(count(t)) for t in texts]
    for holder in ("_model", "_onnx", "model", "ranker"):
        tokenizer = getattr(getattr(reranker, holder, None), "tokenizer", None)
        if tokenizer is not None:
            found = _from_tokenizer(tokenizer)
            if found is not None:
                return found
    return None


def token_counter(reranker: Any) -> TokenCounter:
    """How ``token_budget`` counts for ``reranker`` (built once per reranker, then reused)."""
    cached = getattr(reranker, "__dict__", {}).get("_assembly_token_counter")
    if isinstance(cached, TokenCounter):
        return cached
    found = _find(reranker)
    counter = WORDS if found is None else TokenCounter("tokenizer", found)
    if hasattr(reranker, "__dict__"):
        reranker.__dict__["_assembly_token_counter"] = counter
    return counter
