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

# the public names are listed once, in each module's __all__
from llamaindex_rerank_kit import _feedback, _postprocessors
from llamaindex_rerank_kit._feedback import *  # noqa: F403
from llamaindex_rerank_kit._postprocessors import *  # noqa: F403

__all__ = [*_postprocessors.__all__, *_feedback.__all__]
