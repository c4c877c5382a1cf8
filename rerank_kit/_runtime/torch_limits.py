"""Limits of a torch (sentence-transformers) cross-encoder that its files do not state."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["cap_to_positions", "padding_offset"]

logger = logging.getLogger(__name__)

#: Model types whose positions start after the padding index (transformers'
#: ``create_position_ids_from_input_ids``): ``pad_token_id + 1`` positions are never a token's.
_PADDING_OFFSET_TYPES = {
    "camembert",
    "data2vec-text",
    "ibert",
    "longformer",
    "mpnet",
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "xmod",
}


def cap_to_positions(model: Any, name: str, max_length: int | None) -> None:
    """Keep a torch cross-encoder's ``max_seq_length`` within its position embeddings.

    An XLM-R folder whose tokenizer gives no ``model_max_length`` gets the position count (514)
    from sentence-transformers, two more than RoBERTa-style models can read: a pair over 512
    tokens then crashes inside the model. The limit is ``max_position_embeddings -
    (pad_token_id + 1)`` for those model types (512 for bge-reranker-base), as transformers
    counts positions.
    """
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return
    limit = positions - padding_offset(
        getattr(config, "model_type", None), getattr(config, "pad_token_id", None)
    )
    current = getattr(model, "max_seq_length", None)
    if max_length is not None and max_length > limit:
        raise ValueError(f"max_length={max_length} exceeds {name!r}'s limit of {limit} tokens")
    if isinstance(current, int) and current > limit:
        logger.debug("%s: max_length %d capped to %d (its positions)", name, current, limit)
        model.max_seq_length = limit


def padding_offset(model_type: object, pad_token_id: object) -> int:
    """Positions a model never gives a token: ``pad_token_id + 1`` for RoBERTa-style types.

    Example:
        >>> padding_offset("xlm-roberta", 1), padding_offset("bert", 0), padding_offset("roberta", None)
        (2, 0, 2)
    """
    if model_type not in _PADDING_OFFSET_TYPES:
        return 0
    return (pad_token_id if isinstance(pad_token_id, int) and pad_token_id >= 0 else 1) + 1
