"""LangChain adapters for rerank-kit: ``BaseDocumentCompressor``s for ``ContextualCompressionRetriever``.

Example:
    >>> from langchain_classic.retrievers import ContextualCompressionRetriever  # doctest: +SKIP
    >>> from langchain_rerank_kit import FlashRankRerank  # doctest: +SKIP
    >>> retriever = ContextualCompressionRetriever(
    ...     base_compressor=FlashRankRerank(top_n=3), base_retriever=base_retriever
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the import-isolation test
    raise ImportError(
        'langchain_rerank_kit needs LangChain. Install it with: pip install "rerank-kit[langchain]"'
    ) from exc

# the public names are listed once, in _compressors.__all__
from langchain_rerank_kit._compressors import *  # noqa: F403
from langchain_rerank_kit._compressors import __all__ as __all__
