"""End to end: the adapters inside real LangChain and LlamaIndex pipelines over Chroma.

The first stage is Chroma with lexical (hashed bag-of-words) vectors, the reranker the real
all-MiniLM-L6-v2 bi-encoder; the demo corpus has one answering passage per question, which the
lexical stage ranks below word-matching distractors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rerank_kit.demo import CORPUS, QUERIES, HashingEmbedding

pytestmark = pytest.mark.models

TEXT = dict(CORPUS)


def _chroma_client() -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


def test_langchain_lcel_chain_over_chroma(minilm_path: str) -> None:
    from langchain_chroma import Chroma
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import FakeListLLM
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    from langchain_rerank_kit import BiEncoderRerank

    class LexicalEmbeddings(Embeddings):
        def __init__(self) -> None:
            self.inner = HashingEmbedding()

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.inner(texts)

        def embed_query(self, text: str) -> list[float]:
            return self.inner([text])[0]

    store = Chroma(
        collection_name=f"lc-{time.time_ns()}",
        embedding_function=LexicalEmbeddings(),
        client=_chroma_client(),
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_documents([Document(page_content=t, id=i, metadata={"doc_id": i}) for i, t in CORPUS])
    base = store.as_retriever(search_kwargs={"k": 8})

    def fmt(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    prompt = PromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}\nAnswer:")
    llm = FakeListLLM(responses=["fake answer"] * 10)

    seen_prompts: list[str] = []

    class Capture(BaseCallbackHandler):
        def on_llm_start(
            self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any
        ) -> None:
            seen_prompts.extend(prompts)

    def chain_for(retriever: Any) -> Any:
        return (
            {"context": retriever | fmt, "question": RunnablePassthrough()}
            | prompt
            | llm
            | (StrOutputParser())
        )

    # the only change to the chain: wrap the retriever
    reranking = ContextualCompressionRetriever(
        base_compressor=BiEncoderRerank(model=minilm_path, top_n=3), base_retriever=base
    )
    for question, answer in QUERIES:
        plain_first = base.invoke(question)[0].id
        docs = reranking.invoke(question)
        assert len(docs) == 3
        assert docs[0].id == answer != plain_first
        assert docs[0].metadata["doc_id"] == answer
        assert isinstance(docs[0].metadata["relevance_score"], float)
        adocs = asyncio.run(reranking.ainvoke(question))
        assert [d.id for d in adocs] == [d.id for d in docs]

    question, answer = QUERIES[0]
    assert chain_for(reranking).invoke(question, config={"callbacks": [Capture()]}) == (
        "fake answer"
    )
    context = seen_prompts[-1].split("Context:\n", 1)[1]
    assert context.startswith(TEXT[answer])
    out = asyncio.run(chain_for(reranking).ainvoke(question, config={"callbacks": [Capture()]}))
    assert out == "fake answer"
    assert seen_prompts[-1].split("Context:\n", 1)[1].startswith(TEXT[answer])


def test_llamaindex_query_engine_over_chroma(minilm_path: str) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events import BaseEvent
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from llamaindex_rerank_kit import BiEncoderRerank, RerankedNodeWithScore

    lexical = HashingEmbedding()

    class LexicalEmbedding(BaseEmbedding):
        def _get_text_embedding(self, text: str) -> list[float]:
            return lexical([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embedding(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embedding(query)

    collection = _chroma_client().create_collection(
        f"li-{time.time_ns()}", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )
    nodes = [TextNode(text=t, id_=i) for i, t in CORPUS]
    index = VectorStoreIndex(nodes, storage_context=storage, embed_model=LexicalEmbedding())
    rerank = BiEncoderRerank(model=minilm_path, top_n=3)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=8, node_postprocessors=[rerank])
    plain = index.as_retriever(similarity_top_k=8)

    ends: list[ReRankEndEvent] = []

    class Collect(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event: BaseEvent, **kwargs: Any) -> None:
            if isinstance(event, ReRankEndEvent):
                ends.append(event)

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    try:
        for question, answer in QUERIES:
            first = plain.retrieve(question)
            response = engine.query(question)
            sources = response.source_nodes
            assert len(sources) == 3
            assert sources[0].node.node_id == answer != first[0].node.node_id
            assert isinstance(sources[0].score, float)
            retrieval = {n.node.node_id: n.score for n in first}
            assert isinstance(sources[0], RerankedNodeWithScore)
            assert sources[0].retrieval_score == pytest.approx(retrieval[answer])
            aresponse = asyncio.run(engine.aquery(question))
            assert [n.node.node_id for n in aresponse.source_nodes] == [
                n.node.node_id for n in sources
            ]
    finally:
        root.event_handlers.remove(handler)
    assert len(ends) == 2 * len(QUERIES)


def test_demo_runs_and_reranking_moves_the_answers_up(capsys: pytest.CaptureFixture[str]) -> None:
    from rerank_kit.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "stage 2: onnx:cross-encoder/ms-marco-MiniLM-L-12-v2" in out
    assert "int8 ONNX Runtime graph" in out
    assert (
        f"ranked first for 0 of {len(QUERIES)} queries before reranking, {len(QUERIES)} after"
        in out
    )
