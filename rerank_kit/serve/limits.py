"""Per-request limits (documents, query length, tokens) and ``max_tokens_per_doc``.

Tokens are counted as ``token_budget`` counts them (``_core/assembly/budget.py``): with the
model's own tokenizer, without special tokens, or as words for a model without one.

Example:
    >>> from rerank_kit.testing import FakeReranker
    >>> cut_documents(["one two three four", "five"], 2, FakeReranker())
    ['one two', 'five']
"""

from __future__ import annotations

from rerank_kit._core.assembly.budget import token_counter
from rerank_kit._core.protocol import Reranker
from rerank_kit.serve.config import Limits
from rerank_kit.serve.schemas import ApiError, Parsed, Schema

__all__ = ["check_limits", "cut_documents", "token_count"]


def token_count(parsed: Parsed, reranker: Reranker) -> int:
    """Tokens of the query and every document of a request."""
    return sum(token_counter(reranker)([parsed.query, *parsed.texts]))


def check_limits(parsed: Parsed, limits: Limits, reranker: Reranker, schema: Schema) -> int | None:
    """Refuse a request over a limit (:class:`ApiError`); its token count if it was counted.

    Too many documents or tokens is 400 in Cohere's schemas and 413 in TEI's (as TEI answers
    a batch over ``--max-client-batch-size``).
    """
    status = 413 if schema.name == "tei" else 400
    n = len(parsed.texts)
    if limits.max_documents is not None and n > limits.max_documents:
        raise ApiError(
            status, f"{n} documents is over this server's limit of {limits.max_documents}"
        )
    if limits.max_query_chars is not None and len(parsed.query) > limits.max_query_chars:
        raise ApiError(
            status,
            f"the query is {len(parsed.query)} characters, over the limit of "
            f"{limits.max_query_chars}",
        )
    if limits.max_tokens is None:
        return None
    tokens = token_count(parsed, reranker)
    if tokens > limits.max_tokens:
        raise ApiError(
            status,
            f"the request holds {tokens} tokens (query and documents), over this server's "
            f"limit of {limits.max_tokens}",
        )
    return tokens


def cut_documents(texts: list[str], max_tokens: int, reranker: Reranker) -> list[str]:
    """Each document cut to its first ``max_tokens`` tokens (Cohere's ``max_tokens_per_doc``).

    A document over the limit keeps the longest prefix of whole words that fits.
    """
    count = token_counter(reranker)
    lengths = count(texts)
    out = list(texts)
    for i, (text, length) in enumerate(zip(texts, lengths, strict=True)):
        if length <= max_tokens:
            continue
        words = text.split()
        lo, hi = 0, min(len(words), max_tokens)  # a word is at least one token
        while lo < hi:  # the most words whose prefix fits
            mid = (lo + hi + 1) // 2
            if count([" ".join(words[:mid])])[0] <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        out[i] = " ".join(words[:lo]) if lo else words[0] if words else text
    return out
