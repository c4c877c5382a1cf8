"""``RerankRetriever``: a retriever and a compressor, on langchain-core alone.

The same two fields and the same behaviour as langchain-classic's
``ContextualCompressionRetriever``, so moving off classic is a one-import change.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever, RetrieverLike
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict, Field

__all__ = ["RerankRetriever"]


class RerankRetriever(BaseRetriever):
    """Retrieve with ``base_retriever``, then rerank with ``base_compressor``: langchain-core only.

    A drop-in for ``langchain_classic.retrievers.ContextualCompressionRetriever`` (same fields,
    same results): the compressor gets the query and the retrieved documents; nothing retrieved
    gives ``[]`` without calling the compressor; ``ainvoke`` awaits the base retriever's async
    path and the compressor's ``acompress_documents``. Both steps are child runs of this
    retriever's run, so a trace (LangSmith, any callback handler) shows the retrieval and the
    rerank apart. The compressors of this package return new ``Document`` objects with
    ``metadata["relevance_score"]``; the retrieved documents are never changed.

    Setup:
        ``pip install "rerank-kit[langchain,bundled]"`` (no langchain-classic needed)

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import CrossEncoderRerank, RerankRetriever

            retriever = RerankRetriever(
                base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20}),
                base_compressor=CrossEncoderRerank(
                    model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=3
                ),
            )

    Invoke:
        .. code-block:: python

            docs = retriever.invoke("how do I reset my password?")
            [(d.id, d.metadata["relevance_score"]) for d in docs]

    Async:
        .. code-block:: python

            docs = await retriever.ainvoke("how do I reset my password?")

    In a chain (it is a ``Runnable``: a string in, the reranked documents out):
        .. code-block:: python

            chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> from rerank_kit.testing import FakeReranker
        >>> from langchain_rerank_kit import RerankCompressor
        >>> docs = [Document(page_content="a pear"), Document(page_content="a red apple")]
        >>> retriever = RerankRetriever(
        ...     base_retriever=RunnableLambda(lambda query: docs),
        ...     base_compressor=RerankCompressor(reranker=FakeReranker(), top_n=1),
        ... )
        >>> [d.page_content for d in retriever.invoke("red apple")]
        ['a red apple']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_compressor: BaseDocumentCompressor = Field(
        description="Reranks (compresses) the retrieved documents for the query."
    )
    base_retriever: RetrieverLike = Field(
        description="The first stage: any retriever, or a runnable from a query to documents."
    )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        config: RunnableConfig = {"callbacks": run_manager.get_child()}
        docs = self.base_retriever.invoke(query, config=config, **kwargs)
        if not docs:
            return []
        callbacks = run_manager.get_child()
        return list(self.base_compressor.compress_documents(docs, query, callbacks=callbacks))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        config: RunnableConfig = {"callbacks": run_manager.get_child()}
        docs = await self.base_retriever.ainvoke(query, config=config, **kwargs)
        if not docs:
            return []
        callbacks = run_manager.get_child()
        compressed = await self.base_compressor.acompress_documents(
            docs, query, callbacks=callbacks
        )
        return list(compressed)
