"""LlamaIndex adapters for rerank-kit: ``BaseNodePostprocessor``s for ``node_postprocessors=[...]``.

Example:
    >>> from llamaindex_rerank_kit import FlashRankRerank  # doctest: +SKIP
    >>> engine = index.as_query_engine(
    ...     similarity_top_k=20, node_postprocessors=[FlashRankRerank(top_n=3)]
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the import-isolation test
    raise ImportError(
        "llamaindex_rerank_kit needs LlamaIndex. "
        'Install it with: pip install "rerank-kit[llamaindex]"'
    ) from exc

from llamaindex_rerank_kit._postprocessors import (
    BiEncoderRerank,
    CascadeRerank,
    CrossEncoderRerank,
    FlashRankRerank,
    ListwiseLLMRerank,
    RemoteRerank,
    RerankCompressor,
    RerankedNodeWithScore,
    RerankPostprocessor,
    from_config,
)

__all__ = [
    "BiEncoderRerank",
    "CascadeRerank",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "ListwiseLLMRerank",
    "RemoteRerank",
    "RerankCompressor",
    "from_config",
    "RerankPostprocessor",
    "RerankedNodeWithScore",
]
