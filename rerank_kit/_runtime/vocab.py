"""Text a model cannot read: one warning when most of a query's or passage's tokens are unknown.

An English WordPiece model turns Chinese, emoji or other scripts missing from its vocabulary
into its unknown token (``[UNK]``); the pair still gets a score (the bundled model gave 0.9997 to
a Chinese query against an emoji passage), which means nothing. ``UnknownTokens`` counts unknown
ids in encodings the model makes anyway and logs one WARNING per reranker the first time more
than ``SHARE`` of a query's or a passage's tokens are unknown. Byte-level tokenizers (ModernBERT,
Qwen) have no unknown token and are never flagged.

Example:
    >>> watch = UnknownTokens("my-model", unk_id=1)
    >>> watch.check_ids([1, 1, 7], [[5, 6]])
    >>> watch.warned
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["SHARE", "UnknownTokens", "hf_unk_id", "tokenizers_unk_id"]

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


class UnknownTokens:
    """Watches a reranker's inputs for text its vocabulary cannot represent; warns once.

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
        if self.warned:
            return
        unk = self.unk_id
        if _share(query_ids, unk) > SHARE:
            self._warn("the query's", _share(query_ids, unk))
            return
        for ids in passages_ids:
            if unk in ids and _share(ids, unk) > SHARE:
                self._warn("a passage's", _share(ids, unk))
                return

    def check_encodings(self, encodings: Sequence[Any]) -> None:
        """``check_ids`` on ``tokenizers`` encodings of (query, passage) pairs."""
        if self.warned or not encodings:
            return
        unk = self.unk_id
        if not any(unk in e.ids for e in encodings):
            return
        split = [_split_pair(e) for e in encodings]
        self.check_ids(split[0][0], [p for _, p in split])

    def _warn(self, whose: str, share: float) -> None:
        self.warned = True
        logger.warning(
            "%s: %.0f%% of %s tokens are unknown to the model's vocabulary (its unknown "
            "token), so its scores for such text mean little. The text is probably in a "
            "language or script the model was not trained on; a multilingual reranker fits "
            "(e.g. BAAI/bge-reranker-v2-m3). Logged once per reranker.",
            self.model,
            100 * share,
            whose,
        )


def _share(ids: Sequence[int], unk: int | None) -> float:
    return sum(1 for i in ids if i == unk) / len(ids) if ids else 0.0


def _split_pair(encoding: Any) -> tuple[list[int], list[int]]:
    """The query's and the passage's ids of a pair encoding (special tokens left out)."""
    query: list[int] = []
    passage: list[int] = []
    for token, seq, special in zip(
        encoding.ids, encoding.sequence_ids, encoding.special_tokens_mask, strict=True
    ):
        if special or seq is None:
            continue
        (query if seq == 0 else passage).append(token)
    return query, passage
