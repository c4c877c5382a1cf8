"""A compressor in LCEL: a ``Runnable`` over ``{"query": ..., "documents": [...]}``.

``compressor_runnable`` turns any ``BaseDocumentCompressor`` into a ``Runnable`` (what
``compressor.as_runnable()`` returns), so a chain needs no subclass and no
``ContextualCompressionRetriever``. The compressors here also run through it when they are
given ``callbacks`` (by ``RerankRetriever``, ``ContextualCompressionRetriever`` or
``RerankMiddleware``): the rerank step is then a run of its own, a child of the caller's run,
and a trace shows the retrieval and the rerank apart.

(No ``from __future__ import annotations`` here: ``RunnableLambda`` reads the functions'
annotations to build the runnable's input schema.)
"""

from collections.abc import Mapping, Sequence

from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables import Runnable, RunnableLambda
from typing_extensions import TypedDict

__all__ = ["RerankInput", "compressor_runnable"]


class RerankInput(TypedDict):
    """What ``compressor.as_runnable()`` takes: the query and the documents to rerank."""

    query: str
    documents: Sequence[Document]


def _inputs(value: object) -> tuple[str, list[Document]]:
    """The query and documents of a runnable's input, or a ``TypeError`` that names the keys."""
    if not isinstance(value, Mapping) or not {"query", "documents"} <= value.keys():
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise TypeError(
            'a rerank runnable takes {"query": str, "documents": [Document, ...]}, got '
            f"{got}; in a chain write "
            '{"query": RunnablePassthrough(), "documents": retriever} | rerank.as_runnable()'
        )
    return value["query"], list(value["documents"])


def compressor_runnable(
    compressor: BaseDocumentCompressor, name: str | None = None
) -> Runnable[RerankInput, list[Document]]:
    """``compressor`` as a ``Runnable``: ``{"query", "documents"}`` in, reranked documents out.

    ``invoke`` calls ``compress_documents``, ``ainvoke`` awaits ``acompress_documents``;
    ``batch`` / ``abatch`` come from ``Runnable``. The run is named after the compressor (one
    run: the compressor is called without callbacks, so it reports nothing twice).
    """

    def rerank(value: RerankInput) -> list[Document]:
        query, documents = _inputs(value)
        return list(compressor.compress_documents(documents, query))

    async def arerank(value: RerankInput) -> list[Document]:
        query, documents = _inputs(value)
        return list(await compressor.acompress_documents(documents, query))

    return RunnableLambda(rerank, afunc=arerank, name=name or type(compressor).__name__)
