"""Bad input, concurrency and failures: every row of docs/reliability.md has a test here.

Each row runs through the engine and both adapters.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import CrossEncoderReranker, ModelNotAvailableError, Reranker, load_reranker
from rerank_kit.testing import FakeReranker

QUERY = "red apple"


# --- three ways in: engine, LangChain, LlamaIndex ----------------------------------------
def via_engine(
    reranker: Reranker, query: str, texts: Sequence[Any], **kw: Any
) -> list[tuple[int, float]]:
    return [(r.index, r.score) for r in reranker.rerank(query, texts, **kw)]


def via_langchain(
    reranker: Reranker, query: str, texts: Sequence[Any], **kw: Any
) -> list[tuple[int, float]]:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    # model_construct: build documents even from invalid text, as a buggy loader might
    docs = [
        Document.model_construct(page_content=t, metadata={"i": i}) for i, t in enumerate(texts)
    ]
    comp = RerankCompressor(reranker=reranker, **{"top_n": None, **kw})
    return [
        (d.metadata["i"], d.metadata["relevance_score"])
        for d in comp.compress_documents(docs, query)
    ]


def via_llamaindex(
    reranker: Reranker, query: str, texts: Sequence[Any], **kw: Any
) -> list[tuple[int, float]]:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    nodes = [
        NodeWithScore(node=TextNode.model_construct(text=t, id_=str(i), metadata={}), score=0.0)
        for i, t in enumerate(texts)
    ]
    post = RerankPostprocessor(reranker=reranker, **{"top_n": None, **kw})
    out = post.postprocess_nodes(nodes, query_str=query)
    return [(int(n.node.node_id), float(n.score or 0.0)) for n in out]


PATHS: list[Callable[..., list[tuple[int, float]]]] = [via_engine, via_langchain, via_llamaindex]


@pytest.fixture(params=PATHS, ids=["engine", "langchain", "llamaindex"])
def call(request: pytest.FixtureRequest) -> Callable[..., list[tuple[int, float]]]:
    return request.param


# --- the table ----------------------------------------------------------------------------
def test_empty_candidate_list(call: Callable[..., Any]) -> None:
    r = FakeReranker()
    assert call(r, QUERY, []) == []
    assert r.calls == 0


def test_one_candidate(call: Callable[..., Any]) -> None:
    assert call(FakeReranker(), QUERY, ["an apple"]) == [(0, 0.5)]


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_empty_or_whitespace_query(call: Callable[..., Any], query: str) -> None:
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        call(FakeReranker(), query, ["a"])


def test_blank_document_text_is_kept_last_unscored(call: Callable[..., Any]) -> None:
    r = FakeReranker()
    got = call(r, QUERY, ["", "red apple", "   "])
    assert got == [(1, 1.0), (0, -math.inf), (2, -math.inf)]
    assert r.calls == 1  # one model call, for the one passage with text


def test_blank_document_text_is_flagged_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    r = FakeReranker()
    with caplog.at_level(logging.WARNING, logger="rerank_kit"):
        for _ in range(3):
            ranked = r.rerank(QUERY, ["\t\n", "red apple", ""])
    assert [(x.index, x.empty) for x in ranked] == [(1, False), (0, True), (2, True)]
    warnings = [rec for rec in caplog.records if "whitespace" in rec.getMessage()]
    assert len(warnings) == 1 and "2 of 3 passages" in warnings[0].getMessage()


@pytest.mark.parametrize("bad", [None, 42, b"bytes"])
def test_none_or_non_string_document_text(call: Callable[..., Any], bad: object) -> None:
    # each surface names the item in its own terms: texts[1], documents[1].page_content, nodes[1]
    with pytest.raises(TypeError, match=r"\[1\]\S* must be (a str|text \(a str\))"):
        call(FakeReranker(), QUERY, ["ok", bad])


def test_duplicates_are_kept_in_input_order(call: Callable[..., Any]) -> None:
    assert call(FakeReranker(), QUERY, ["apple", "red apple", "apple", "red apple"]) == [
        (1, 1.0),
        (3, 1.0),
        (0, 0.5),
        (2, 0.5),
    ]


def test_top_n_larger_than_list(call: Callable[..., Any]) -> None:
    assert len(call(FakeReranker(), QUERY, ["a", "b"], top_n=10)) == 2


@pytest.mark.parametrize("top_n", [0, -3])
def test_top_n_not_positive(call: Callable[..., Any], top_n: int) -> None:
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        call(FakeReranker(), QUERY, ["a"], top_n=top_n)


def test_negative_threshold_is_valid(call: Callable[..., Any]) -> None:
    assert len(call(FakeReranker(), QUERY, ["x", "y"], score_threshold=-0.5)) == 2


def test_nan_threshold(call: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="NaN"):
        call(FakeReranker(), QUERY, ["x"], score_threshold=math.nan)


def test_thousand_candidates(call: Callable[..., Any]) -> None:
    texts = [
        f"doc {i} " + ("red " if i % 3 == 0 else "") + ("apple" if i % 2 else "")
        for i in range(1000)
    ]
    out = call(FakeReranker(), QUERY, texts)
    assert len(out) == 1000
    assert sorted(i for i, _ in out) == list(range(1000))
    scores = [s for _, s in out]
    assert scores == sorted(scores, reverse=True)


def test_non_ascii_and_mixed_scripts_with_a_real_tokenizer(
    call: Callable[..., Any], tiny_ce_dir: Path
) -> None:
    ce = shared_ce(tiny_ce_dir)
    texts = [
        "Zürich und Kraków",
        "東京は日本の首都",
        "Москва — столица",
        "🍎 red apple 🍏",
        "naïve café",
    ]
    out = call(ce, "красное 苹果 apple", texts)
    assert sorted(i for i, _ in out) == list(range(5))
    assert all(0.0 < s < 1.0 for _, s in out)


_CE: dict[str, CrossEncoderReranker] = {}


def shared_ce(folder: Path) -> CrossEncoderReranker:
    if str(folder) not in _CE:
        _CE[str(folder)] = CrossEncoderReranker(str(folder), max_length=128)
    return _CE[str(folder)]


def test_very_long_document_is_truncated_visibly(
    tiny_ce_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_rerank_kit import RerankCompressor
    from llamaindex_rerank_kit import RerankPostprocessor as LlamaRerank

    ce = shared_ce(tiny_ce_dir)
    long_text = "the quick brown fox jumps over the lazy dog " * 2300  # ~100k characters
    assert len(long_text) >= 100_000
    texts = ["a short passage about apples", long_text]
    with caplog.at_level(logging.WARNING, logger="rerank_kit"):
        ranked = ce.rerank(QUERY, texts)
    assert {r.index: r.truncated for r in ranked} == {0: False, 1: True}
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 2 passages" in warnings[0].getMessage()

    docs = RerankCompressor(reranker=ce, top_n=None).compress_documents(
        [Document(page_content=t) for t in texts], QUERY
    )
    flags = {d.page_content[:10]: d.metadata.get("rerank_truncated", False) for d in docs}
    assert flags == {texts[0][:10]: False, long_text[:10]: True}

    nodes = LlamaRerank(reranker=ce, top_n=None).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t)) for t in texts], query_str=QUERY
    )
    assert sorted(n.truncated for n in nodes) == [False, True]  # type: ignore[attr-defined]


def test_long_passages_flagged_for_flashrank_and_bi_encoder(
    tiny_flashrank_dir: Path, minilm_path: str
) -> None:
    long_text = "apple " * 5000
    for spec in (f"flashrank:{tiny_flashrank_dir}", f"bi-encoder:{minilm_path}"):
        ranked = load_reranker(spec).rerank(QUERY, ["short apple", long_text])
        assert {r.index: r.truncated for r in ranked} == {0: False, 1: True}, spec


def test_unknown_model_spec(call: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="expected 'KIND:MODEL'"):
        load_reranker("colbert:some-model")


def test_model_folder_missing_files(tmp_path: Path, tiny_ce_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_ce_dir, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ModelNotAvailableError, match="missing tokenizer files"):
        load_reranker(f"cross-encoder:{broken}")
    (broken / "config.json").unlink()
    with pytest.raises(ModelNotAvailableError, match=r"missing config\.json"):
        load_reranker(f"bi-encoder:{broken}")


def test_hub_id_not_cached_while_offline() -> None:
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="not-cached/model"):
        load_reranker("cross-encoder:not-cached/model")
    assert time.perf_counter() - start < 5


# --- failure policy ---------------------------------------------------------------------
class Broken(Reranker):
    name = "broken"

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        raise RuntimeError("model exploded")


def test_default_policy_raises() -> None:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    with pytest.raises(RuntimeError, match="exploded"):
        RerankCompressor(reranker=Broken()).compress_documents([Document(page_content="a")], "q")


def test_passthrough_keeps_first_stage_order(caplog: pytest.LogCaptureFixture) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_rerank_kit import RerankCompressor
    from llamaindex_rerank_kit import RerankPostprocessor as LlamaRerank

    docs = [Document(page_content=f"d{i}", id=str(i)) for i in range(5)]
    comp = RerankCompressor(reranker=Broken(), top_n=3, on_error="passthrough")
    with caplog.at_level(logging.WARNING, logger="rerank_kit"):
        out = comp.compress_documents(docs, "q")
        aout = asyncio.run(comp.acompress_documents(docs, "q"))
    assert [d.id for d in out] == ["0", "1", "2"] == [d.id for d in aout]
    assert all(d.metadata["rerank_failed"] is True for d in out)
    assert all("relevance_score" not in d.metadata for d in out)
    assert any(
        "exploded" in r.getMessage() and "passthrough" in r.getMessage() for r in caplog.records
    )

    nodes = [
        NodeWithScore(node=TextNode(text=f"d{i}", id_=str(i)), score=1 - i / 10) for i in range(5)
    ]
    post = LlamaRerank(reranker=Broken(), top_n=2, on_error="passthrough")
    for result in (
        post.postprocess_nodes(nodes, query_str="q"),
        asyncio.run(post.apostprocess_nodes(nodes, query_str="q")),
    ):
        assert [n.node.node_id for n in result] == ["0", "1"]
        assert [n.score for n in result] == [1.0, 0.9]  # retrieval scores kept
        assert all(n.rerank_failed for n in result)  # type: ignore[attr-defined]


def test_bad_policy_name_is_rejected() -> None:
    from langchain_rerank_kit import RerankCompressor

    with pytest.raises(ValueError):
        RerankCompressor(reranker=FakeReranker(), on_error="ignore")  # type: ignore[arg-type]


# --- concurrency ------------------------------------------------------------------------
def _corpus(n: int) -> list[str]:
    words = "red green apple pear car fox dog lazy quick brown capital paris".split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 9)) for i in range(n)]


def test_load_200_concurrent_async_calls_and_a_thread_pool(tiny_ce_dir: Path) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_rerank_kit import RerankCompressor
    from llamaindex_rerank_kit import RerankPostprocessor as LlamaRerank

    ce = shared_ce(tiny_ce_dir)  # ONE shared instance (one tokenizer) for every caller
    comp = RerankCompressor(reranker=ce, top_n=5)
    post = LlamaRerank(reranker=ce, top_n=5)
    texts = _corpus(20)
    queries = [f"{w} apple" for w in ("red", "green", "quick", "lazy", "paris")]
    docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(texts)]
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=str(i)), score=0.0) for i, t in enumerate(texts)
    ]

    expected = {q: [d.id for d in comp.compress_documents(docs, q)] for q in queries}

    async def main() -> tuple[list[list[str | None]], int, float]:
        beats: list[float] = []  # one entry per 10 ms tick the event loop managed

        async def heartbeat() -> None:
            while True:
                beats.append(time.perf_counter())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        start = time.perf_counter()
        calls: list[Coroutine[Any, Any, Sequence[Any]]] = []
        for i in range(200):
            q = queries[i % len(queries)]
            if i % 2:
                calls.append(comp.acompress_documents(docs, q))
            else:
                calls.append(post.apostprocess_nodes(nodes, query_str=q))
        results = await asyncio.gather(*calls)
        wall = time.perf_counter() - start
        beat.cancel()
        ids = [
            [d.id if isinstance(d, Document) else d.node.node_id for d in res] for res in results
        ]
        return ids, len(beats), wall

    ids, ticks, wall = asyncio.run(main())
    assert len(ids) == 200
    for i, got in enumerate(ids):
        assert got == expected[queries[i % len(queries)]], i
    assert ticks >= wall / 0.05  # the loop kept ticking (at least every ~50 ms on average)

    errors: list[BaseException] = []

    def work(i: int) -> list[str | None]:
        try:
            return [d.id for d in comp.compress_documents(docs, queries[i % len(queries)])]
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)
            raise

    with ThreadPoolExecutor(max_workers=16) as pool:
        threaded = list(pool.map(work, range(200)))
    assert not errors
    for i, got in enumerate(threaded):
        assert got == expected[queries[i % len(queries)]]
