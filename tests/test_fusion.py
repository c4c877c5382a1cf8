"""Score fusion: the maths, the engine path, both adapters and ``rerank-kit eval --fusion``."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from rerank_kit import CascadeReranker, Ranked, Reranker
from rerank_kit._adapters.run import run_rerank
from rerank_kit._core.fusion import Fusion, fuse, fuse_ranked, to_fusion
from rerank_kit.evaluation import Dataset, Document, FirstStage, compare
from rerank_kit.evaluation._first_stage import Hit
from rerank_kit.testing import FakeReranker


class _Fixed(Reranker):
    """Returns the scores it was built with, in input order (after the texts' own numbers)."""

    def __init__(self, name: str = "fixed") -> None:
        super().__init__()
        self.name = name

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        return [float(t.split()[-1]) for t in texts]


class _Broken(Reranker):
    name = "broken"

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        raise RuntimeError("model exploded")


def _z(values: list[float]) -> list[float]:
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    return [(v - mean) / std for v in values]


# ----------------------------------------------------------------------------- maths


def test_zscore_fusion_matches_the_formula() -> None:
    rer, first = [0.9, 0.2, 0.4, 0.7], [10.0, 30.0, 20.0, 5.0]
    got = fuse(rer, first, Fusion(0.7, "zscore"))
    want = [0.7 * a + 0.3 * b for a, b in zip(_z(rer), _z(first), strict=True)]
    assert got == pytest.approx(want)


def test_minmax_fusion_matches_the_formula() -> None:
    got = fuse([1.0, 3.0, 2.0], [0.0, 0.5, 1.0], Fusion(0.25, "minmax"))
    assert got == pytest.approx([0.25 * 0.0 + 0.75 * 0.0, 0.25 + 0.75 * 0.5, 0.125 + 0.75])


def test_rrf_fusion_uses_ranks_only() -> None:
    got = fuse([5.0, 9.0, 1.0], [3.0, 2.0, 1.0], Fusion(0.5, "rrf"))
    # reranker ranks 2,1,3; first-stage ranks 1,2,3; k=60
    assert got == pytest.approx([0.5 / 62 + 0.5 / 61, 0.5 / 61 + 0.5 / 62, 0.5 / 63 + 0.5 / 63])
    assert fuse([50.0, 90.0, 10.0], [300.0, 200.0, 100.0], Fusion(0.5, "rrf")) == got


@pytest.mark.parametrize("method", ["zscore", "minmax", "rrf"])
def test_weight_one_is_the_reranker_and_weight_zero_the_first_stage(method: str) -> None:
    rer, first = [0.3, 0.9, 0.1, 0.5], [4.0, 1.0, 3.0, 2.0]

    def order(scores: list[float]) -> list[int]:
        return sorted(range(4), key=lambda i: -scores[i])

    assert order(fuse(rer, first, Fusion(1.0, method))) == order(rer)  # type: ignore[arg-type]
    assert order(fuse(rer, first, Fusion(0.0, method))) == order(first)  # type: ignore[arg-type]


def test_no_first_stage_scores_means_input_order() -> None:
    assert fuse([0.5, 0.5, 0.5], None, Fusion(0.5)) == pytest.approx(
        [0.5 * x for x in _z([3.0, 2.0, 1.0])]
    )


def test_constant_and_single_candidates_do_not_divide_by_zero() -> None:
    assert fuse([0.4], [7.0], Fusion(0.5)) == [0.0]
    assert fuse([0.4, 0.4], [7.0, 7.0], Fusion(0.5, "minmax")) == [0.0, 0.0]
    assert fuse([], None, Fusion()) == []


def test_fusion_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Fusion(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Fusion(float("nan"))
    with pytest.raises(ValueError, match="method"):
        Fusion(0.5, "borda")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight"):
        to_fusion("0.5")
    assert to_fusion(True if False else 0.3, "rrf") == Fusion(0.3, "rrf")


# ----------------------------------------------------------------------------- engine


TEXTS = ["a 0.9", "b 0.1", "c 0.5", "d 0.7"]


def test_rerank_with_fusion_orders_thresholds_and_cuts_on_the_fused_score() -> None:
    r = _Fixed()
    first = [4.0, 3.0, 2.0, 1.0]
    fused = fuse([0.9, 0.1, 0.5, 0.7], first, Fusion(0.5))
    want = sorted(range(4), key=lambda i: -fused[i])
    out = r.rerank("q", TEXTS, first_stage_scores=first, fusion=0.5)
    assert [x.index for x in out] == want
    assert [x.score for x in out] == pytest.approx([fused[i] for i in want])
    assert [x.reranker_score for x in out] == [[0.9, 0.1, 0.5, 0.7][i] for i in want]
    assert [x.first_stage_score for x in out] == [first[i] for i in want]
    # the threshold compares with the fused score, then top_n cuts
    threshold = sorted(fused)[1]
    kept = r.rerank("q", TEXTS, first_stage_scores=first, fusion=0.5, score_threshold=threshold)
    assert {x.index for x in kept} == {i for i in range(4) if fused[i] >= threshold}
    assert [
        x.index for x in r.rerank("q", TEXTS, first_stage_scores=first, fusion=0.5, top_n=2)
    ] == want[:2]


def test_fusion_changes_the_order_where_the_first_stage_disagrees() -> None:
    r = _Fixed()
    plain = [x.index for x in r.rerank("q", TEXTS)]
    assert plain == [0, 3, 2, 1]
    # the first stage strongly prefers b: at weight 0.3, b rises above c and d
    fused = [x.index for x in r.rerank("q", TEXTS, first_stage_scores=[1, 9, 0, 0], fusion=0.3)]
    assert fused.index(1) < fused.index(2)


def test_without_scores_fusion_uses_the_input_order() -> None:
    out = _Fixed().rerank("q", TEXTS, fusion=Fusion(0.5, "rrf"))
    assert all(x.first_stage_score is None for x in out)
    assert {x.index: x.reranker_score for x in out} == {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.7}
    # ranks (reranker, input): a (1, 1), b (4, 2), c (3, 3), d (2, 4); d and b tie at
    # 1/62 + 1/64 and keep the reranker's order; c's 2/63 is a hair lower
    assert [x.index for x in out] == [0, 3, 1, 2]


def test_without_fusion_nothing_changes() -> None:
    out = _Fixed().rerank("q", TEXTS, first_stage_scores=[1, 2, 3, 4])
    assert [(x.index, x.score, x.reranker_score) for x in out] == [
        (0, 0.9, None),
        (3, 0.7, None),
        (2, 0.5, None),
        (1, 0.1, None),
    ]


def test_bad_first_stage_scores_are_rejected() -> None:
    r = _Fixed()
    with pytest.raises(ValueError, match="3 values for 4 texts"):
        r.rerank("q", TEXTS, first_stage_scores=[1, 2, 3], fusion=0.5)
    with pytest.raises(ValueError, match="finite"):
        r.rerank("q", TEXTS, first_stage_scores=[1, 2, math.nan, 4], fusion=0.5)
    with pytest.raises(TypeError, match=r"first_stage_scores\[1\]"):
        r.rerank("q", TEXTS, first_stage_scores=[1, "2", 3, 4], fusion=0.5)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        r.rerank("q", TEXTS, fusion=2.0)


def test_cascade_fusion_orders_the_last_stages_survivors() -> None:
    cascade = CascadeReranker([(_Fixed("one"), 3), _Fixed("two")])
    first = [1.0, 2.0, 3.0, 4.0]
    out = cascade.rerank("q", TEXTS, first_stage_scores=first, fusion=0.5)
    survivors = [0, 3, 2]  # stage one keeps its best three
    fused = fuse([0.9, 0.7, 0.5], [first[i] for i in survivors], Fusion(0.5))
    want = [survivors[j] for j in sorted(range(3), key=lambda j: -fused[j])]
    assert [x.index for x in out] == want
    assert all(set(x.stage_scores) == {"one", "two"} for x in out)


def test_fuse_ranked_keeps_the_rerankers_order_on_ties() -> None:
    ranked = [Ranked(2, 1.0), Ranked(0, 1.0), Ranked(1, 1.0)]
    assert [x.index for x in fuse_ranked(ranked, [5.0, 5.0, 5.0], Fusion(0.5))] == [2, 0, 1]


def test_async_rerank_fuses_too() -> None:
    r = _Fixed()
    sync = r.rerank("q", TEXTS, first_stage_scores=[4, 3, 2, 1], fusion=0.6)
    got = asyncio.run(r.arerank("q", TEXTS, first_stage_scores=[4, 3, 2, 1], fusion=0.6))
    assert got == sync


def test_passthrough_on_failure_keeps_the_first_stage_order() -> None:
    outcome = run_rerank(
        _Broken(),
        "q",
        TEXTS,
        top_n=2,
        score_threshold=None,
        on_error="passthrough",
        fusion=Fusion(0.5),
    )
    assert outcome.failed and [x.index for x in outcome.ranked] == [0, 1]


# ----------------------------------------------------------------------------- LangChain


def test_langchain_compressor_fuses_with_a_metadata_score() -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document as LCDocument

    from langchain_rerank_kit import RerankCompressor

    docs = [
        LCDocument(page_content=t, metadata={"bm25": s, "src": i}, id=f"id{i}")
        for i, (t, s) in enumerate(zip(TEXTS, [4.0, 3.0, 2.0, 1.0], strict=True))
    ]
    before = [d.model_copy(deep=True) for d in docs]
    comp = RerankCompressor(reranker=_Fixed(), top_n=3, fusion=0.5, first_stage_score_key="bm25")
    out = comp.compress_documents(docs, "q")
    engine = _Fixed().rerank("q", TEXTS, first_stage_scores=[4, 3, 2, 1], fusion=0.5, top_n=3)
    assert [d.id for d in out] == [f"id{x.index}" for x in engine]
    for d, x in zip(out, engine, strict=True):
        assert d.metadata["relevance_score"] == pytest.approx(x.score)
        assert d.metadata["reranker_score"] == pytest.approx(x.reranker_score)
        assert d.metadata["first_stage_score"] == pytest.approx(x.first_stage_score)
        assert d.metadata["first_stage_rank"] == x.index + 1
        assert d.metadata["src"] == x.index
    assert docs == before  # input untouched
    assert asyncio.run(comp.acompress_documents(docs, "q")) == out


def test_langchain_compressor_fuses_with_the_order_and_checks_the_key() -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document as LCDocument

    from langchain_rerank_kit import RerankCompressor

    docs = [LCDocument(page_content=t) for t in TEXTS]
    out = RerankCompressor(reranker=_Fixed(), top_n=None, fusion=0.5).compress_documents(docs, "q")
    engine = _Fixed().rerank("q", TEXTS, fusion=0.5)
    assert [d.page_content for d in out] == [TEXTS[x.index] for x in engine]
    assert all("first_stage_score" not in d.metadata for d in out)
    with pytest.raises(ValueError, match=r"documents\[0\] has no metadata\['score'\]"):
        RerankCompressor(
            reranker=_Fixed(), fusion=0.5, first_stage_score_key="score"
        ).compress_documents(docs, "q")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RerankCompressor(reranker=_Fixed(), fusion=1.5)
    with pytest.raises(ValueError):
        RerankCompressor(reranker=_Fixed(), fusion=0.5, fusion_method="borda")  # type: ignore[arg-type]
    plain = RerankCompressor(reranker=_Fixed(), top_n=None).compress_documents(docs, "q")
    assert all("reranker_score" not in d.metadata for d in plain)


# ----------------------------------------------------------------------------- LlamaIndex


def test_llamaindex_postprocessor_fuses_with_the_retrieval_score() -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor as RerankCompressor

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=s)
        for i, (t, s) in enumerate(zip(TEXTS, [0.4, 0.3, 0.2, 0.1], strict=True))
    ]
    post = RerankCompressor(reranker=_Fixed(), top_n=3, fusion=0.5, fusion_method="minmax")
    out = post.postprocess_nodes(nodes, query_bundle=QueryBundle("q"))
    engine = _Fixed().rerank(
        "q", TEXTS, first_stage_scores=[0.4, 0.3, 0.2, 0.1], fusion=Fusion(0.5, "minmax"), top_n=3
    )
    assert [n.node.node_id for n in out] == [f"n{x.index}" for x in engine]
    for n, x in zip(out, engine, strict=True):
        assert n.score == pytest.approx(x.score)
        assert n.reranker_score == pytest.approx(x.reranker_score)  # type: ignore[attr-defined]
        assert n.retrieval_score == pytest.approx(x.first_stage_score)  # type: ignore[attr-defined]
        assert n.first_stage_rank == x.index + 1  # type: ignore[attr-defined]
    assert [n.score for n in nodes] == [0.4, 0.3, 0.2, 0.1]  # input untouched
    got = asyncio.run(post.apostprocess_nodes(nodes, query_bundle=QueryBundle("q")))
    assert [n.node.node_id for n in got] == [n.node.node_id for n in out]


def test_llamaindex_nodes_without_scores_fuse_with_the_order() -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor as RerankCompressor

    nodes = [NodeWithScore(node=TextNode(text=t), score=None) for t in TEXTS]
    nodes[1] = NodeWithScore(node=nodes[1].node, score=0.5)  # one score is not enough
    out = RerankCompressor(reranker=_Fixed(), top_n=None, fusion=0.5).postprocess_nodes(
        nodes, query_bundle=QueryBundle("q")
    )
    engine = _Fixed().rerank("q", TEXTS, fusion=0.5)
    assert [n.node.get_content() for n in out] == [TEXTS[x.index] for x in engine]
    assert [n.score for n in out] == pytest.approx([x.score for x in engine])


# ----------------------------------------------------------------------------- eval


class _Stage(FirstStage):
    name = "fixed"

    def __init__(self, hits: Mapping[str, list[Hit]]) -> None:
        super().__init__()
        self.hits = hits

    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        pass

    def _search(self, query: str, depth: int) -> list[Hit]:
        return self.hits.get(query, [])[:depth]


def _dataset() -> Dataset:
    texts = {
        "d1": "red apples in the orchard",
        "d2": "green pears",
        "d3": "apple pie",
        "d4": "the orchard",
    }
    corpus = {k: Document(k, v) for k, v in texts.items()}
    queries = {"q1": "red apple orchard", "q2": "pears"}
    qrels = {"q1": {"d3": 1}, "q2": {"d2": 1}}
    return Dataset("tiny", corpus, queries, qrels)


def test_compare_adds_fused_variants_from_the_same_scores(tmp_path: Path) -> None:
    stage = _Stage(
        {
            "red apple orchard": [("d3", 9.0), ("d4", 5.0), ("d1", 1.0), ("d2", 0.5)],
            "pears": [("d1", 3.0), ("d2", 2.0)],
        }
    )
    fake = FakeReranker()
    result = compare(_dataset(), stage, [fake], depth=4, k=2, fusion=[0.3, 0.9], warmup=False)
    names = [s.name for s in result.systems]
    assert names == [
        "fixed",
        "fixed >> fake",
        "fixed >> fake (fused zscore w=0.3)",
        "fixed >> fake (fused zscore w=0.9)",
    ]
    assert fake.calls == 2  # one model call per query: fused variants reuse the scores
    plain = result["fixed >> fake"]
    assert plain.run["q1"] == ["d1", "d3", "d4", "d2"]
    # weight 0.3: BM25-like first stage dominates; d3 (9.0) comes back on top
    texts = ["apple pie", "the orchard", "red apples in the orchard", "green pears"]
    want = FakeReranker().rerank(
        "red apple orchard", texts, first_stage_scores=[9.0, 5.0, 1.0, 0.5], fusion=0.3
    )
    fused = result["fixed >> fake (fused zscore w=0.3)"]
    assert fused.run["q1"] == [["d3", "d4", "d1", "d2"][x.index] for x in want]
    assert fused.run["q1"][0] == "d3"
    assert fused.per_query["q1"]["nDCG@2"] > plain.per_query["q1"]["nDCG@2"]
    assert fused.fusion == {"method": "zscore", "weight": 0.3}
    assert fused.reranker == "fake (fused zscore w=0.3)"
    assert fused.latency["reranker"] is not None
    # JSON round trip and plot keep the fused systems
    data = json.loads(json.dumps(result.to_dict()))
    assert [s["fusion"] for s in data["systems"]][2] == {"method": "zscore", "weight": 0.3}
    again = type(result).from_dict(data)
    assert again["fixed >> fake (fused zscore w=0.9)"].fusion == {"method": "zscore", "weight": 0.9}
    pytest.importorskip("matplotlib")
    assert result.plot(tmp_path / "p.png").stat().st_size > 0
    assert "fused zscore w=0.3" in result.to_table()


def test_cli_fusion_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("bm25s")
    from rerank_kit.evaluation._cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "text": d.text}) for k, d in _dataset().corpus.items())
        + "\n"
    )
    (folder / "judgments.jsonl").write_text(
        json.dumps({"query": "red apple orchard", "relevant": ["d3"]}) + "\n"
    )
    args = [str(folder), "--no-progress", "--json", str(tmp_path / "out.json")]
    with pytest.MonkeyPatch.context() as mp:
        import rerank_kit._registry as registry

        mp.setattr(registry, "load_reranker", lambda spec, **kw: FakeReranker(spec))
        assert (
            main([*args, "--reranker", "fake:x", "--fusion", "0.5", "--fusion-method", "rrf"]) == 0
        )
    out = json.loads((tmp_path / "out.json").read_text())
    assert [s["name"] for s in out["systems"]][-1] == "bm25 >> fake:x (fused rrf w=0.5)"
    assert out["settings"]["fusion"] == [{"method": "rrf", "weight": 0.5}]
    assert main([*args, "--reranker", "fake:x", "--fusion", "2"]) == 2
    assert main([*args, "--fusion", "0.5"]) == 2
    assert "--fusion" in capsys.readouterr().err
