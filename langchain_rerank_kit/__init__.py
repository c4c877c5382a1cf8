"""LangChain adapters for rerank-kit: document compressors, a retriever and agent middleware.

On langchain-core alone (``pip install "rerank-kit[langchain]"``): the compressors
(``CrossEncoderRerank``, ``FlashRankRerank``...), usable in LCEL through ``as_runnable()``, and
``RerankRetriever`` (a retriever and a compressor: what ``ContextualCompressionRetriever`` from
langchain-classic does). ``RerankMiddleware`` reranks what an agent's retrieval tool returns; it
needs LangChain 1.x agents (``pip install "langchain>=1,<2"``) and is imported on first use.

Example:
    >>> from langchain_rerank_kit import CrossEncoderRerank, RerankRetriever  # doctest: +SKIP
    >>> retriever = RerankRetriever(
    ...     base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20}),
    ...     base_compressor=CrossEncoderRerank(top_n=3),
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the import-isolation test
    raise ImportError(
        'langchain_rerank_kit needs LangChain. Install it with: pip install "rerank-kit[langchain]"'
    ) from exc

# each module lists its public names once, in its __all__
from langchain_rerank_kit import _compressors, _feedback, _retriever
from langchain_rerank_kit._compressors import *  # noqa: F403
from langchain_rerank_kit._feedback import *  # noqa: F403
from langchain_rerank_kit._retriever import *  # noqa: F403

if TYPE_CHECKING:
    from langchain_rerank_kit._middleware import RerankMiddleware as RerankMiddleware

#: Names whose module needs more than langchain-core: imported on first use.
_LAZY = {"RerankMiddleware": "langchain_rerank_kit._middleware"}
_NEEDS = 'LangChain 1.x agents. Install them with: pip install "langchain>=1,<2"'

__all__ = [*_compressors.__all__, *_retriever.__all__, *_feedback.__all__, *_LAZY]


def __getattr__(name: str) -> Any:
    """``RerankMiddleware``, imported when first asked for (it needs the ``langchain`` package)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(_LAZY[name])
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("langchain", "langgraph"):
            raise
        raise ImportError(f"{name} needs {_NEEDS}") from exc
    value = getattr(module, name)
    globals()[name] = value
    return value
