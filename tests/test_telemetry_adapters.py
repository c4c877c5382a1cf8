"""RERANKER spans and usage through the framework adapters (LangChain, LlamaIndex, Haystack)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from rerank_kit._core import telemetry
from rerank_kit.testing import FakeReranker

pytest.importorskip("opentelemetry.sdk")
semconv = pytest.importorskip("openinference.semconv.trace")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

SA = semconv.SpanAttributes
RA = semconv.RerankerAttributes
QUERY = "how do I reset my password"
TEXTS = [
    "the canteen opens at noon",
    "reset your password from the login page",
    "password rules: twelve characters",
    "parking is behind building B",
]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = telemetry.configure_tracing(tracer_provider=provider)
    try:
        yield exporter
    finally:
        telemetry.configure_tracing(**vars(previous))


def reranker_span(exporter: InMemorySpanExporter) -> Any:
    (span,) = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(SA.OPENINFERENCE_SPAN_KIND) == "RERANKER"
    ]
    return span


@pytest.mark.parametrize("run", ["invoke", "ainvoke"])
def test_langchain_retriever_gives_a_reranker_span_and_a_usage_event(
    spans: InMemorySpanExporter, run: str
) -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_v1_smoke import ListRetriever

    from langchain_rerank_kit import RerankCompressor, RerankRetriever

    events: list[tuple[str, Any]] = []

    class Collect(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
            events.append((name, data))

    docs = [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    retriever = RerankRetriever(
        base_retriever=ListRetriever(docs=docs),
        base_compressor=RerankCompressor(reranker=FakeReranker(), top_n=2),
    )
    config = {"callbacks": [Collect()]}
    if run == "invoke":
        got = retriever.invoke(QUERY, config=config)  # type: ignore[arg-type]
    else:
        got = asyncio.run(retriever.ainvoke(QUERY, config=config))  # type: ignore[arg-type]
    assert len(got) == 2
    a = reranker_span(spans).attributes
    assert a[RA.RERANKER_QUERY] == QUERY
    assert a[RA.RERANKER_TOP_K] == 2
    assert a["rerank_kit.pairs_scored"] == len(TEXTS)
    assert events == [
        (
            "rerank_kit.usage",
            {
                "model": "fake",
                "pairs": len(TEXTS),
                "tokens": 0,
                "model_calls": 1,
                "billed_units": {},
            },
        )
    ]


@pytest.mark.parametrize("run", ["query", "aquery"])
def test_llamaindex_query_engine_gives_a_reranker_span_and_usage_in_the_end_event(
    spans: InMemorySpanExporter, run: str
) -> None:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events import BaseEvent
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    ends: list[ReRankEndEvent] = []

    class Collect(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event: BaseEvent, **kwargs: Any) -> None:
            if isinstance(event, ReRankEndEvent):
                ends.append(event)

    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    rerank = RerankPostprocessor(reranker=FakeReranker(), top_n=2, metadata_mode="none")
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=4, node_postprocessors=[rerank])
    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    try:
        if run == "query":
            response = engine.query(QUERY)
        else:
            response = asyncio.run(engine.aquery(QUERY))
    finally:
        root.event_handlers.remove(handler)
    assert len(response.source_nodes) == 2
    a = reranker_span(spans).attributes
    assert a[RA.RERANKER_QUERY] == QUERY
    assert a[RA.RERANKER_TOP_K] == 2
    (end,) = ends
    assert end.tags["rerank_kit.usage"] == {
        "pairs": 4,
        "tokens": 0,
        "model_calls": 1,
        "billed_units": {},
    }


@pytest.mark.parametrize("run", ["run", "run_async"])
def test_haystack_pipeline_gives_a_reranker_span(spans: InMemorySpanExporter, run: str) -> None:
    pytest.importorskip(
        "haystack", reason='needs the haystack extra: pip install "rerank-kit[haystack]"'
    )
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from haystack_rerank_kit import RerankComponent

    store = InMemoryDocumentStore()
    store.write_documents([Document(content=t, id=f"d{i}") for i, t in enumerate(TEXTS)])
    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(store, top_k=4))
    pipe.add_component("ranker", RerankComponent(reranker=FakeReranker(), top_k=2))
    pipe.connect("retriever.documents", "ranker.documents")
    data = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}
    out = pipe.run(data) if run == "run" else asyncio.run(pipe.run_async(data))
    assert len(out["ranker"]["documents"]) == 2
    span = reranker_span(spans)
    assert span.attributes[RA.RERANKER_QUERY] == QUERY
    assert span.attributes[RA.RERANKER_TOP_K] == 2
