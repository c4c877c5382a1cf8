"""One contract, run over the adapters (LangChain compressors, LlamaIndex postprocessors,
Haystack rankers)."""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from rerank_kit import CascadeReranker, Reranker
from rerank_kit.testing import FakeReranker


@dataclass
class Item:
    """Framework-neutral view of one returned document or node."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    stage_scores: dict[str, float]
    empty: bool = False


class Adapter(Protocol):
    name: str
    module: Any
    wrapper: str  # the class that wraps an engine reranker

    def make(self, texts: Sequence[str]) -> list[Any]: ...
    def wrap(self, reranker: Reranker, **kw: Any) -> Any: ...
    def run(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]: ...
    async def arun(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]: ...


class _Wraps:
    module: Any
    wrapper: str  # the class that wraps an engine reranker

    def wrap(self, reranker: Reranker, **kw: Any) -> Any:
        return getattr(self.module, self.wrapper)(reranker=reranker, **kw)


def _document_item(doc: Any) -> Item:
    """A returned LangChain Document: scores and flags are read from its metadata."""
    from langchain_core.documents import Document

    assert isinstance(doc, Document)
    meta = dict(doc.metadata)
    score, stages = meta.pop("relevance_score"), meta.pop("stage_scores", {})
    empty = meta.pop("rerank_empty", False)
    assert type(score) is float
    assert isinstance(meta.pop("rerank_model"), str)  # the reranker's name, in both adapters
    return Item(str(doc.id), doc.page_content, meta, score, stages, empty)


def _node_item(item: Any) -> Item:
    """A returned LlamaIndex node: scores and flags are fields; the retrieval score is kept."""
    from llamaindex_rerank_kit import RerankedNodeWithScore

    assert isinstance(item, RerankedNodeWithScore) and type(item.score) is float
    node = item.node
    assert item.retrieval_score == pytest.approx(1.0 - int(node.node_id.split("-")[1]) / 100)
    meta = dict(node.metadata)
    assert isinstance(meta.pop("rerank_model"), str)  # the reranker's name, in both adapters
    fields = (meta, item.score, dict(item.stage_scores), item.empty)
    return Item(node.node_id, node.get_content(), *fields)


class LangChainAdapter(_Wraps):
    name = "langchain"
    module = pytest.importorskip("langchain_rerank_kit")
    wrapper = "RerankCompressor"

    def make(self, texts: Sequence[str]) -> list[Any]:
        from langchain_core.documents import Document

        return [
            Document(page_content=t, id=f"doc-{i}", metadata={"source": f"s{i}", "nested": [i]})
            for i, t in enumerate(texts)
        ]

    def run(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        return [_document_item(d) for d in wrapped.compress_documents(inputs, query)]

    async def arun(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        return [_document_item(d) for d in await wrapped.acompress_documents(inputs, query)]


class LlamaIndexAdapter(_Wraps):
    name = "llamaindex"
    module = pytest.importorskip("llamaindex_rerank_kit")
    wrapper = "RerankPostprocessor"

    def make(self, texts: Sequence[str]) -> list[Any]:
        from llama_index.core.schema import NodeWithScore, TextNode

        hidden = ["source", "nested"]  # not in get_content(EMBED): only the text is scored
        nodes = [
            TextNode(text=t, id_=f"doc-{i}", metadata={"source": f"s{i}", "nested": [i]})
            for i, t in enumerate(texts)
        ]
        for node in nodes:
            node.excluded_embed_metadata_keys = list(hidden)
        return [NodeWithScore(node=n, score=1.0 - i / 100) for i, n in enumerate(nodes)]

    def run(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        return [_node_item(n) for n in wrapped.postprocess_nodes(inputs, query_str=query)]

    async def arun(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        nodes = await wrapped.apostprocess_nodes(inputs, query_str=query)
        return [_node_item(n) for n in nodes]


def _haystack_item(doc: Any) -> Item:
    """A returned Haystack Document: the score is its score, flags are in its meta."""
    from haystack import Document

    assert isinstance(doc, Document) and type(doc.score) is float
    meta = dict(doc.meta)
    first = meta.pop("first_stage_score")  # the incoming score, kept
    assert first == pytest.approx(1.0 - int(doc.id.split("-")[1]) / 100)
    assert isinstance(meta.pop("rerank_model"), str)  # the reranker's name, in every adapter
    stages, empty = meta.pop("stage_scores", {}), meta.pop("rerank_empty", False)
    return Item(doc.id, doc.content or "", meta, doc.score, stages, empty)


class HaystackAdapter:
    name = "haystack"
    module: Any = None
    wrapper = "RerankComponent"

    def __init__(self) -> None:
        os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
        self.module = pytest.importorskip("haystack_rerank_kit")

    def make(self, texts: Sequence[str]) -> list[Any]:
        from haystack import Document

        meta = [{"source": f"s{i}", "nested": [i]} for i in range(len(texts))]
        return [
            Document(id=f"doc-{i}", content=t, meta=meta[i], score=1.0 - i / 100)
            for i, t in enumerate(texts)
        ]

    def wrap(self, reranker: Reranker, **kw: Any) -> Any:
        if "top_n" in kw:  # Haystack spells it top_k
            kw["top_k"] = kw.pop("top_n")
        return self.module.RerankComponent(reranker=reranker, **kw)

    def run(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        return [_haystack_item(d) for d in wrapped.run(query=query, documents=inputs)["documents"]]

    async def arun(self, wrapped: Any, inputs: list[Any], query: str) -> list[Item]:
        out = await wrapped.run_async(query=query, documents=inputs)
        return [_haystack_item(d) for d in out["documents"]]


@pytest.fixture(
    params=[LangChainAdapter, LlamaIndexAdapter, HaystackAdapter],
    ids=["langchain", "llamaindex", "haystack"],
)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.param()


TEXTS = ["green pear", "red apple pie", "red car", "apple", "red apple", "banana"]
QUERY = "red apple"
# FakeReranker: share of query words in the text
EXPECTED = [(4, 1.0), (1, 1.0), (2, 0.5), (3, 0.5), (0, 0.0), (5, 0.0)]


def test_orders_by_score_ties_in_input_order(adapter: Adapter) -> None:
    out = adapter.run(adapter.wrap(FakeReranker(), top_n=None), adapter.make(TEXTS), QUERY)
    assert [(i.id, i.score) for i in out] == [
        ("doc-1", 1.0),
        ("doc-4", 1.0),
        ("doc-2", 0.5),
        ("doc-3", 0.5),
        ("doc-0", 0.0),
        ("doc-5", 0.0),
    ]


def test_top_n(adapter: Adapter) -> None:
    out = adapter.run(adapter.wrap(FakeReranker(), top_n=3), adapter.make(TEXTS), QUERY)
    assert [i.id for i in out] == ["doc-1", "doc-4", "doc-2"]


def test_default_top_n_is_three(adapter: Adapter) -> None:
    assert len(adapter.run(adapter.wrap(FakeReranker()), adapter.make(TEXTS), QUERY)) == 3


def test_threshold_applies_before_top_n(adapter: Adapter) -> None:
    wrapped = adapter.wrap(FakeReranker(), top_n=5, score_threshold=0.5)
    assert [i.id for i in adapter.run(wrapped, adapter.make(TEXTS), QUERY)] == [
        "doc-1",
        "doc-4",
        "doc-2",
        "doc-3",
    ]


def test_ids_text_and_metadata_kept(adapter: Adapter) -> None:
    out = adapter.run(adapter.wrap(FakeReranker(), top_n=None), adapter.make(TEXTS), QUERY)
    for item in out:
        i = int(item.id.split("-")[1])
        assert item.text == TEXTS[i]
        assert item.metadata == {"source": f"s{i}", "nested": [i]}


def _dump(x: Any) -> Any:
    """Everything an input object holds (pydantic models, or a Haystack dataclass)."""
    return x.model_dump() if hasattr(x, "model_dump") else x.to_dict()


def test_inputs_not_mutated(adapter: Adapter) -> None:
    inputs = adapter.make(TEXTS)
    before = [copy.deepcopy(_dump(x)) for x in inputs]
    order_before = [id(x) for x in inputs]
    out = adapter.run(adapter.wrap(FakeReranker(), top_n=2), inputs, QUERY)
    assert [_dump(x) for x in inputs] == before
    assert [id(x) for x in inputs] == order_before
    assert len(out) == 2


def test_empty_input(adapter: Adapter) -> None:
    wrapped = adapter.wrap(FakeReranker())
    assert adapter.run(wrapped, [], QUERY) == []
    assert asyncio.run(adapter.arun(wrapped, [], QUERY)) == []


@pytest.mark.parametrize("kw", [{"top_n": 2}, {"top_n": None, "score_threshold": 0.5}])
def test_sync_equals_async(adapter: Adapter, kw: dict[str, Any]) -> None:
    wrapped = adapter.wrap(FakeReranker(), **kw)
    sync = adapter.run(wrapped, adapter.make(TEXTS), QUERY)
    async_ = asyncio.run(adapter.arun(wrapped, adapter.make(TEXTS), QUERY))
    assert sync == async_


def test_cascade_records_every_stage(adapter: Adapter) -> None:
    cascade = CascadeReranker([(FakeReranker("cheap"), 3), FakeReranker("good")])
    out = adapter.run(adapter.wrap(cascade, top_n=2), adapter.make(TEXTS), QUERY)
    assert [i.id for i in out] == ["doc-1", "doc-4"]
    assert out[0].stage_scores == {"cheap": 1.0, "good": 1.0}


def test_bad_top_n_is_a_clear_error(adapter: Adapter) -> None:
    spelled = "top_k" if adapter.name == "haystack" else "top_n"  # as each framework spells it
    with pytest.raises(ValueError, match=spelled):
        adapter.run(adapter.wrap(FakeReranker(), top_n=0), adapter.make(TEXTS), QUERY)


def test_wrong_input_type_is_a_clear_error(adapter: Adapter) -> None:
    with pytest.raises(TypeError, match=r"\[1\]"):
        adapter.run(adapter.wrap(FakeReranker()), [*adapter.make(["a"]), "raw string"], QUERY)


def test_llamaindex_needs_a_query() -> None:
    wrapped = LlamaIndexAdapter().wrap(FakeReranker())
    with pytest.raises(ValueError, match="query"):
        wrapped.postprocess_nodes(LlamaIndexAdapter().make(TEXTS))


def test_llamaindex_emits_rerank_events() -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events import BaseEvent
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent

    seen: list[BaseEvent] = []

    class Collect(BaseEventHandler):
        def handle(self, event: BaseEvent, **kwargs: Any) -> None:
            seen.append(event)

        @classmethod
        def class_name(cls) -> str:
            return "Collect"

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    try:
        adapter = LlamaIndexAdapter()
        wrapped = adapter.wrap(FakeReranker(), top_n=2)
        adapter.run(wrapped, adapter.make(TEXTS), QUERY)
        asyncio.run(adapter.arun(wrapped, adapter.make(TEXTS), QUERY))
    finally:
        root.event_handlers.remove(handler)
    starts = [e for e in seen if isinstance(e, ReRankStartEvent)]
    ends = [e for e in seen if isinstance(e, ReRankEndEvent)]
    assert len(starts) == 2 and len(ends) == 2
    assert starts[0].top_n == 2 and starts[0].model_name == "fake"
    assert len(starts[0].nodes) == len(TEXTS)
    assert [n.node.node_id for n in ends[0].nodes] == ["doc-1", "doc-4"]


def test_llamaindex_class_names() -> None:
    import llamaindex_rerank_kit as li

    for name in [
        "RerankPostprocessor",
        "RerankCompressor",
        "CrossEncoderRerank",
        "FlashRankRerank",
        "BiEncoderRerank",
        "CascadeRerank",
    ]:
        assert getattr(li, name).class_name() == name


# --- settings and inputs shared by both adapters (rerank_kit._adapters) ---------------------


def test_blank_passages_come_last_flagged_empty(adapter: Adapter) -> None:
    texts = ["red apple", "", "apple", "   \n"]
    for out in (
        adapter.run(adapter.wrap(FakeReranker(), top_n=None), adapter.make(texts), QUERY),
        asyncio.run(
            adapter.arun(adapter.wrap(FakeReranker(), top_n=None), adapter.make(texts), QUERY)
        ),
    ):
        assert [(i.id, i.empty) for i in out] == [
            ("doc-0", False),
            ("doc-2", False),
            ("doc-1", True),
            ("doc-3", True),
        ]
        assert out[2].score == out[3].score == float("-inf")


def test_unknown_fields_are_rejected(adapter: Adapter) -> None:
    # the other frameworks' spelling of top_n; Haystack refuses unknown arguments as Python does
    wrong, error = ("top_n", TypeError) if adapter.name == "haystack" else ("top_k", ValueError)
    with pytest.raises(error, match=wrong):
        getattr(adapter.module, adapter.wrapper)(reranker=FakeReranker(), **{wrong: 3})
    with pytest.raises(error, match="modle"):
        adapter.module.FlashRankRerank(modle="ms-marco-TinyBERT-L-2-v2")  # before any model load


def test_same_top_level_fields_in_both_frameworks() -> None:
    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    only = {"first_stage_score_key"}, {"metadata_mode", "callback_manager"}
    for name in ["CrossEncoderRerank", "FlashRankRerank", "BiEncoderRerank", "RemoteRerank"]:
        lc_fields = set(getattr(lc, name).model_fields) - only[0]
        assert lc_fields == set(getattr(li, name).model_fields) - only[1], name
    engine = {"backend", "quantize", "file_name", "threads", "cache_dir", "score_cache"}
    assert engine | {"long_documents", "fusion", "fusion_method", "model_kwargs"} <= set(
        lc.CrossEncoderRerank.model_fields
    )


def test_a_non_text_passage_is_named_in_the_adapters_words() -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    docs = [Document(page_content="a"), Document.model_construct(page_content=None)]
    with pytest.raises(TypeError, match=r"documents\[1\]\.page_content must be text") as lc_err:
        LangChainAdapter().wrap(FakeReranker()).compress_documents(docs, QUERY)

    class BytesNode(TextNode):
        def get_content(self, metadata_mode: Any = None) -> Any:
            return b"bytes"

    nodes = [NodeWithScore(node=TextNode(text="a")), NodeWithScore(node=BytesNode(text="b"))]
    wrapped = LlamaIndexAdapter().wrap(FakeReranker())
    with pytest.raises(TypeError, match=r"nodes\[1\]") as li_err:
        wrapped.postprocess_nodes(nodes, query_str=QUERY)
    for err in (lc_err, li_err):
        assert "texts[" not in str(err.value) and "document object" not in str(err.value)


def test_passthrough_never_hides_a_bad_passage() -> None:
    from langchain_core.documents import Document

    wrapped = LangChainAdapter().wrap(FakeReranker(), on_error="passthrough")
    with pytest.raises(TypeError, match="page_content"):
        wrapped.compress_documents([Document.model_construct(page_content=None)], QUERY)


def test_llamaindex_rerank_compressor_is_a_deprecated_alias() -> None:
    import warnings

    from llamaindex_rerank_kit import RerankCompressor, RerankPostprocessor

    with pytest.warns(DeprecationWarning, match="RerankPostprocessor"):
        old = RerankCompressor(reranker=FakeReranker(), top_n=2)
    assert isinstance(old, RerankPostprocessor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LangChainAdapter().wrap(FakeReranker())  # the LangChain name is not deprecated
        RerankPostprocessor(reranker=FakeReranker())
    out = LlamaIndexAdapter().run(old, LlamaIndexAdapter().make(TEXTS), QUERY)
    assert [i.id for i in out] == ["doc-1", "doc-4"]


def _node(text: str, metadata: dict[str, Any]) -> Any:
    from llama_index.core.schema import NodeWithScore, TextNode

    return NodeWithScore(node=TextNode(text=text, id_="n", metadata=metadata), score=0.5)


def test_llamaindex_metadata_mode_chooses_what_is_scored() -> None:
    from llama_index.core.schema import MetadataMode

    nodes = [_node("banana", {"topic": "red apple"})]
    embed = LlamaIndexAdapter().wrap(FakeReranker())
    assert embed.metadata_mode is MetadataMode.EMBED  # the default, as LlamaIndex's rerankers
    assert embed.postprocess_nodes(nodes, query_str=QUERY)[0].score == 1.0  # metadata scored
    text_only = LlamaIndexAdapter().wrap(FakeReranker(), metadata_mode="none")
    assert text_only.metadata_mode is MetadataMode.NONE
    assert text_only.postprocess_nodes(nodes, query_str=QUERY)[0].score == 0.0
    with pytest.raises(ValueError, match="bogus"):
        LlamaIndexAdapter().wrap(FakeReranker(), metadata_mode="bogus")


def test_same_passage_same_score_in_both_frameworks_with_metadata_mode_none() -> None:
    from langchain_core.documents import Document

    meta = {"topic": "red apple"}
    lc = LangChainAdapter().wrap(FakeReranker())
    lc_score = lc.compress_documents([Document(page_content="red pear", metadata=meta)], QUERY)[
        0
    ].metadata["relevance_score"]
    li = LlamaIndexAdapter().wrap(FakeReranker(), metadata_mode="none")
    assert li.postprocess_nodes([_node("red pear", meta)], query_str=QUERY)[0].score == lc_score
