"""Text a model cannot read: one warning when most of a query's or passage's tokens are unknown.

An English WordPiece model turns Chinese, emoji or other scripts missing from its vocabulary
into its unknown token (``[UNK]``); the pair still gets a score (the bundled model gave 0.9997 to
a Chinese query against an emoji passage), which means nothing. ``UnknownTokens`` counts unknown
ids in encodings the model makes anyway and logs one WARNING per reranker the first time more
than ``SHARE`` of a query's or a passage's tokens are unknown. Byte-level tokenizers (ModernBERT,
Qwen) have no unknown token and are never flagged.

Example:
    >>> watch = UnknownTokens("my-model", unk_id=1)
    >>> watch.check(([1, 7], [(0, 1), (1, 2)]), [])  # half of the query's characters
    >>> watch.warned
    False
    >>> watch.check_ids([1, 1, 7], [[5, 6]])
    >>> watch.warned
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

__all__ = [
    "SHARE",
    "Tokens",
    "UnknownTokens",
    "check_hf_texts",
    "hf_unk_id",
    "tokenizers_unk_id",
]

logger = logging.getLogger(__name__)

#: Warn when more than this share of one text's tokens are the unknown token.
SHARE = 0.5


def tokenizers_unk_id(tokenizer: Any) -> int | None:
    """The unknown token's id of a ``tokenizers.Tokenizer`` (``None``: it has none)."""
    model: Any = getattr(tokenizer, "model", None)
    if hasattr(model, "unk_token"):  # BPE, WordPiece, WordLevel (byte-level BPE: None)
        token = model.unk_token
        found = tokenizer.token_to_id(token) if isinstance(token, str) else None
        return int(found) if found is not None else None
    for token in ("<unk>", "[UNK]"):  # Unigram (XLM-R, DeBERTa-v3) keeps only an id
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return None


def hf_unk_id(tokenizer: Any) -> int | None:
    """The unknown token's id of a transformers tokenizer (``None``: none, or byte-level)."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    return int(unk_id) if isinstance(unk_id, int) else None


#: One text's tokens: their ids, and their character spans when the tokenizer gives them.
Tokens = tuple[Sequence[int], Sequence[tuple[int, int]] | None]


class UnknownTokens:
    """Watches a reranker's inputs for text its vocabulary cannot represent; warns once.

    The share is counted in characters when the tokenizer gives offsets (a SentencePiece
    tokenizer turns a whole Chinese word into one unknown piece beside a word-boundary piece),
    else in tokens.

    Args:
        model: The model's name, for the message.
        unk_id: The unknown token's id (``None``: nothing to watch).
    """

    def __init__(self, model: str, unk_id: int | None) -> None:
        self.model = model
        self.unk_id = unk_id
        self.warned = unk_id is None  # nothing to watch: never warns, costs nothing

    def check_ids(self, query_ids: Sequence[int], passages_ids: Sequence[Sequence[int]]) -> None:
        """Warn (once) if most tokens of the query or of a passage are the unknown token."""
        self.check((query_ids, None), [(ids, None) for ids in passages_ids])

    def check(self, query: Tokens, passages: Sequence[Tokens]) -> None:
        """Warn (once) if most of the query's or of a passage's text is the unknown token."""
        if self.warned:
            return
        share = _share(query, self.unk_id)
        if share > SHARE:
            self._warn("the query's text", share)
            return
        for tokens in passages:
            if self.unk_id in tokens[0]:
                share = _share(tokens, self.unk_id)
                if share > SHARE:
                    self._warn("a passage's text", share)
                    return

    def check_encodings(self, encodings: Sequence[Any]) -> None:
        """``check`` on ``tokenizers`` encodings of (query, passage) pairs."""
        if self.warned or not encodings:
            return
        unk = self.unk_id
        if not any(unk in e.ids for e in encodings):
            return
        split = [_split_pair(e) for e in encodings]
        self.check(split[0][0], [passage for _, passage in split])

    def _warn(self, whose: str, share: float) -> None:
        self.warned = True
        logger.warning(
            "%s: %.0f%% of %s is unknown to the model's vocabulary (read as its unknown "
            "token), so its scores for such text mean little. The text is probably in a "
            "language or script the model was not trained on; a multilingual reranker fits "
            "(e.g. BAAI/bge-reranker-v2-m3). Logged once per reranker.",
            self.model,
            100 * share,
            whose,
        )


def _share(tokens: Tokens, unk: int | None) -> float:
    """Share of the text (characters when spans are known, else tokens) read as ``unk``."""
    ids, spans = tokens
    if not ids:
        return 0.0
    if spans is not None:
        total = sum(max(0, end - start) for start, end in spans)
        if total:
            unknown = sum(
                max(0, end - start) for i, (start, end) in zip(ids, spans, strict=True) if i == unk
            )
            return unknown / total
    return sum(1 for i in ids if i == unk) / len(ids)


def _split_pair(encoding: Any) -> tuple[Tokens, Tokens]:
    """The query's and the passage's ids and spans in a pair encoding (specials left out)."""
    out: tuple[tuple[list[int], list[tuple[int, int]]], ...] = (([], []), ([], []))
    for token, seq, special, span in zip(
        encoding.ids,
        encoding.sequence_ids,
        encoding.special_tokens_mask,
        encoding.offsets,
        strict=True,
    ):
        if special or seq is None:
            continue
        ids, spans = out[0 if seq == 0 else 1]
        ids.append(token)
        spans.append((int(span[0]), int(span[1])))
    return out[0], out[1]


def check_hf_texts(unknown: UnknownTokens, tokenizer: Any, query: str, texts: list[str]) -> None:
    """Count unknown tokens of ``query`` and ``texts`` with a transformers tokenizer."""
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(
        [query, *texts], add_special_tokens=False, verbose=False, return_offsets_mapping=fast
    )
    spans = enc["offset_mapping"] if fast else [None] * (len(texts) + 1)
    tokens = list(zip(enc["input_ids"], spans, strict=True))
    unknown.check(tokens[0], tokens[1:])
