"""The "expected relevant" cutoff (``expected_share``): engine, adapters, config, CLI, report."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import PipelineConfig
from rerank_kit._core.calibration import CUTOFF_SETTINGS, Calibration
from rerank_kit.testing import FakeReranker

TEXTS = ["red apple pie", "red apple", "apple", "green pear", "   "]
QUERY = "red apple pie"  # FakeReranker: probabilities 1, 2/3, 1/3, 0, 0 under the identity map
WORDS = "red apple pie green pear tart crumble orange juice".split()


def _identity_map(identity: str = "fake") -> Calibration:
    """Probability = score (FakeReranker's scores are shares in [0, 1])."""
    return Calibration(identity, (0.0, 1.0), (0.0, 1.0))


def _shortest_prefix(probs: list[float], share: float) -> int:
    """The reference: the fewest best candidates whose summed probability reaches the share."""
    target = share * sum(probs)
    for k in range(len(probs) + 1):
        if sum(probs[:k]) >= target - 1e-9:
            return k
    return len(probs)


def _indices(query: str = QUERY, texts: list[str] = TEXTS, **options: Any) -> list[int]:
    return [r.index for r in FakeReranker().rerank(query, texts, **options)]


# -- the engine ------------------------------------------------------------------------------


def test_a_rank_aware_map_feeds_the_share_its_ranked_probabilities() -> None:
    """With a ``logistic-rank`` map each passage's probability depends on its rank: the share is
    taken of those rank-aware probabilities (computed from the scores, by hand here)."""
    terms = {"intercept": 1.0, "score": 2.0, "log_rank": -1.5, "gap": -1.0}
    c = Calibration("fake", (0.0, 1.0), (0.9, 0.95), method="logistic-rank", terms=terms)
    ranked = FakeReranker().rerank(QUERY, TEXTS, calibration=c)
    best = ranked[0].score
    want = [
        1 / (1 + math.exp(-(1.0 + 2.0 * r.score - 1.5 * math.log(k) - (best - r.score))))
        if r.score > float("-inf")
        else 0.0
        for k, r in enumerate(ranked, start=1)
    ]
    assert [r.probability for r in ranked] == pytest.approx(want)
    for share in (0.3, 0.6, 0.9):
        got = FakeReranker().rerank(QUERY, TEXTS, calibration=c, expected_share=share)
        assert [r.index for r in got] == [r.index for r in ranked][: _shortest_prefix(want, share)]


@pytest.mark.parametrize("share", [0.1, 0.5, 0.6, 0.8, 0.9, 1.0])
def test_keeps_the_shortest_prefix_reaching_the_share(share: float) -> None:
    rng = random.Random(int(share * 100))
    c = _identity_map()
    for _ in range(20):
        texts = [" ".join(rng.sample(WORDS, rng.randint(1, 4))) for _ in range(8)]
        query = " ".join(rng.sample(WORDS, 3))
        ranked = FakeReranker().rerank(query, texts, calibration=c)
        probs = [r.probability or 0.0 for r in ranked]
        got = FakeReranker().rerank(query, texts, calibration=c, expected_share=share)
        assert [r.index for r in got] == [r.index for r in ranked][: _shortest_prefix(probs, share)]
        if got:  # the prefix reaches the share, and one passage fewer would not
            mass = sum(r.probability or 0.0 for r in got)
            assert mass >= share * sum(probs) - 1e-9
            assert mass - (got[-1].probability or 0.0) < share * sum(probs)


def test_ceiling_floor_and_a_query_nothing_answers() -> None:
    c = _identity_map()
    assert _indices(calibration=c, expected_share=0.6) == [0, 1]  # 1 + 2/3 >= 0.6 * 2
    assert _indices(calibration=c, expected_share=0.9, top_n=2) == [0, 1]  # top_n: ceiling
    assert _indices("banana", calibration=c, expected_share=0.9) == []  # no probability at all
    assert _indices("banana", calibration=c, expected_share=0.9, min_n=2) == [0, 1]  # the floor
    assert _indices(calibration=c, expected_share=0.1, min_n=3) == [0, 1, 2]


def test_composes_with_min_probability_and_the_threshold() -> None:
    c = _identity_map()
    for share in (0.3, 0.6, 0.9, 1.0):
        for p in (0.0, 0.2, 0.5, 0.9):
            alone = _indices(calibration=c, expected_share=share)
            other = _indices(calibration=c, min_probability=p)
            both = _indices(calibration=c, expected_share=share, min_probability=p)
            assert both == min(alone, other, key=len)  # both must keep it: the stricter wins
    # the total is every candidate's: a threshold does not shrink the share's target
    assert _indices(calibration=c, expected_share=0.6, score_threshold=0.5) == [0, 1]
    assert _indices(calibration=c, expected_share=0.6, score_threshold=0.5, dedupe=1.0) == [0, 1]


def test_composes_with_token_budget_and_dedupe_and_async_agrees() -> None:
    c = _identity_map()
    options: dict[str, Any] = {"calibration": c, "expected_share": 0.9, "token_budget": 5}
    kept = FakeReranker().rerank(QUERY, TEXTS, **options)
    assert [r.index for r in kept] == [0, 1]  # 3 + 2 words; "apple" (p=1/3) does not fit
    assert all(r.tokens is not None for r in kept)
    assert asyncio.run(FakeReranker().arerank(QUERY, TEXTS, **options)) == kept
    # a dropped duplicate's probability counts as passed with the passage that absorbed it
    texts = ["red apple pie", "red  apple pie", "red apple", "green pear"]
    got = FakeReranker().rerank(QUERY, texts, calibration=c, expected_share=0.6, dedupe=1.0)
    assert [(r.index, r.duplicates) for r in got] == [(0, (1,))]
    assert _indices(QUERY, texts, calibration=c, expected_share=0.6) == [0, 1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expected_share": 0.5}, "expected_share needs a calibration"),
        ({"calibration": _identity_map(), "expected_share": 0}, r"in \(0, 1\]"),
        ({"calibration": _identity_map(), "expected_share": 1.5}, r"in \(0, 1\]"),
        ({"calibration": _identity_map(), "expected_share": True}, "expected_share"),
        ({"calibration": _identity_map(), "expected_share": "0.5"}, "expected_share"),
        ({"calibration": _identity_map(), "expected_share": math.nan}, "expected_share"),
        ({"calibration": _identity_map(), "min_n": 1}, "min_probability or expected_share"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeReranker().rerank(QUERY, TEXTS, **options)
    with pytest.raises(ValueError, match=message):
        asyncio.run(FakeReranker().arerank(QUERY, TEXTS, **options))


def test_the_setting_is_named_once() -> None:
    assert "expected_share" in CUTOFF_SETTINGS
    from rerank_kit.adapters import WrapperSettings, run_rerank

    settings = WrapperSettings(
        reranker=FakeReranker(), calibration=_identity_map(), expected_share=0.6, top_n=None
    )
    run = settings.run_settings()
    assert set(CUTOFF_SETTINGS) <= set(run) and run["expected_share"] == 0.6
    outcome = run_rerank(settings.get_reranker(), QUERY, TEXTS, **run)
    assert [r.index for r in outcome.ranked] == [0, 1]
    settings.expected_share = 1.0  # a changed field rebuilds the run settings
    assert settings.run_settings()["expected_share"] == 1.0
    with pytest.raises(ValueError, match="needs a calibration"):
        WrapperSettings(reranker=FakeReranker(), expected_share=0.5)


# -- adapters ----------------------------------------------------------------------------------


def test_langchain_and_llamaindex_keep_the_same_documents() -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_rerank_kit import RerankCompressor
    from llamaindex_rerank_kit import RerankPostprocessor

    options: dict[str, Any] = {"calibration": _identity_map(), "expected_share": 0.6, "top_n": 4}
    docs = [Document(page_content=t) for t in TEXTS]
    got = RerankCompressor(reranker=FakeReranker(), **options).compress_documents(docs, QUERY)
    assert [d.page_content for d in got] == TEXTS[:2]
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in TEXTS]
    post = RerankPostprocessor(reranker=FakeReranker(), **options)
    kept = post.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert [n.node.get_content() for n in kept] == TEXTS[:2]
    floor = RerankPostprocessor(reranker=FakeReranker(), **options, min_n=1)
    assert len(floor.postprocess_nodes(nodes, query_bundle=QueryBundle("banana"))) == 1


def test_haystack_offers_the_cutoff_as_langchain_does_and_saves_it() -> None:
    pytest.importorskip(
        "haystack", reason='needs the haystack extra: pip install "rerank-kit[haystack]"'
    )
    pytest.importorskip("langchain_core")
    from haystack import Document

    import langchain_rerank_kit as lc
    from haystack_rerank_kit import CrossEncoderRerank, RerankComponent
    from haystack_rerank_kit._base import settings_names

    for ours, theirs in ((RerankComponent, lc.RerankCompressor), (CrossEncoderRerank, lc.CrossEncoderRerank)):  # fmt: skip
        assert set(CUTOFF_SETTINGS) <= settings_names(ours.settings_type)
        for name in CUTOFF_SETTINGS:
            assert ours.settings_type.model_fields[name].default is None
            assert theirs.model_fields[name].default is None
    docs = [Document(content=t, score=1.0) for t in TEXTS]
    cut: dict[str, Any] = {"calibration": _identity_map(), "expected_share": 0.6}
    ranker = RerankComponent(reranker=FakeReranker(), **cut, top_k=4)
    assert [d.content for d in ranker.run(query=QUERY, documents=docs)["documents"]] == TEXTS[:2]
    again = asyncio.run(ranker.run_async(query=QUERY, documents=docs))["documents"]
    assert [d.content for d in again] == TEXTS[:2]
    # to_dict / from_dict: a Calibration object is saved as its points, every setting kept
    saved = CrossEncoderRerank(**cut, min_probability=0.2, min_n=1, top_k=5).to_dict()
    params = saved["init_parameters"]
    assert params["calibration"] == _identity_map().to_dict()
    assert (params["expected_share"], params["min_probability"], params["min_n"]) == (0.6, 0.2, 1)
    json.dumps(saved)  # a pipeline file can hold it
    restored = CrossEncoderRerank.from_dict(saved)
    assert restored.settings.calibration == _identity_map()
    assert restored.settings.expected_share == 0.6 and restored.to_dict() == saved
    with pytest.raises(ValueError, match="expected_share needs a calibration"):
        CrossEncoderRerank(expected_share=0.5)


# -- saved pipelines and the CLI ---------------------------------------------------------------


def test_config_round_trip_and_pipeline(tmp_path: Path) -> None:
    from rerank_kit import Pipeline

    c = _identity_map()
    config = PipelineConfig("x:y", calibration=c, expected_share=0.6, min_n=1, top_n=8)
    loaded = PipelineConfig.load(config.save(tmp_path / "pipeline.json"))
    assert loaded == config and loaded.expected_share == 0.6
    assert loaded.cutoff_options()["expected_share"] == 0.6
    assert "expected_share" not in PipelineConfig("x:y", calibration=c).to_dict()
    assert [r.index for r in Pipeline(loaded, FakeReranker()).rerank(QUERY, TEXTS)] == [0, 1]
    data = loaded.to_dict()
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="expected_share"):
            PipelineConfig.from_dict({**data, "expected_share": bad})
    with pytest.raises(ValueError, match="needs a calibration"):
        PipelineConfig("x:y", expected_share=0.5)
    assert config.with_cutoff(c, None, None, 0.8).expected_share == 0.8


def test_cli_calibrate_writes_expected_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("sklearn")
    from test_calibration import _write_judgments

    import rerank_kit._registry as registry
    from rerank_kit.cli import main

    monkeypatch.setattr(registry, "load_reranker", lambda spec, **_: FakeReranker())
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    data = _write_judgments(tmp_path / "topics")
    config = tmp_path / "pipeline.json"
    args = ["calibrate", str(data), "--reranker", "fake:x", "--folds", "3", "--depth", "10"]
    args += ["--expected-share", "0.8", "--min-n", "1", "--no-progress", "--config", str(config)]
    plot = tmp_path / "calibration.png"
    assert main([*args, "--plot", str(plot)] if has_matplotlib else args) == 0
    assert not has_matplotlib or plot.stat().st_size > 0  # the share's curve beside the others
    out = capsys.readouterr().out
    assert "expected_share=0.8, min_n=1" in out and "share " in out  # the report's rows
    saved = PipelineConfig.load(config)
    assert (saved.expected_share, saved.min_n, saved.min_probability) == (0.8, 1, None)
    assert saved.calibration is not None and saved.calibration.score_identity == "fake"
    assert main([*args[:-2], "--expected-share", "1.5"]) == 2
    assert "expected_share" in capsys.readouterr().err
    tune_args = ["tune", str(data), "--reranker", "fake:x", "--depth", "10", "--folds", "3"]
    assert main([*tune_args, "--target-recall", "0.8", "--no-progress"]) == 2
    assert "target_recall needs calibrate" in capsys.readouterr().err


# -- the report (eval --calibrate, rerank-kit calibrate) ---------------------------------------


def test_report_rows_follow_the_engine_and_mean_what_they_say() -> None:
    from rerank_kit.learning._calibrate_report import cutoff_curve, same_recall

    rng = random.Random(3)
    queries = {}
    for q in range(400):  # calibrated by construction: label ~ Bernoulli(probability)
        probs = sorted((rng.random() ** 2 for _ in range(20)), reverse=True)
        labels = [int(rng.random() < p) for p in probs]
        queries[f"q{q}"] = (probs, labels, [10] * 20)
    rows = cutoff_curve(queries, top_ns=(3, 5), probabilities=(0.5,), expected_shares=(0.5, 0.8))
    share = {r["expected_share"]: r for r in rows if "expected_share" in r}
    for s, row in share.items():  # the count is the engine's prefix
        want = [min(max(_shortest_prefix(list(p), s), 1), 20) for p, _, _ in queries.values()]
        assert row["passages"] == pytest.approx(sum(want) / len(want))
        # expected recall of a calibrated map is the share (a little above: whole passages)
        assert s - 0.03 <= row["recall"] <= s + 0.08
    assert share[0.5]["passages"] < share[0.8]["passages"]
    compared = same_recall(rows, "expected_share")
    assert [r["top_n"] for r in compared] == [3, 5]
    assert [r["top_n"] for r in same_recall(rows)] == [3, 5]  # share rows are no fixed top_n
    with pytest.raises(ValueError, match="policy"):
        same_recall(rows, "top_n")


def test_share_for_recall_is_the_lowest_share_reaching_it() -> None:
    from rerank_kit.learning._calibrate_report import SHARE_GRID, cutoff_curve, share_for_recall

    rng = random.Random(5)
    held_out = {}
    for q in range(60):
        probs = sorted((rng.random() for _ in range(10)), reverse=True)
        held_out[f"q{q}"] = (probs, [int(rng.random() < p) for p in probs])
    queries = {q: (p, y, [1] * len(p)) for q, (p, y) in held_out.items()}
    for target in (0.3, 0.6, 0.9):
        share = share_for_recall(held_out, target)
        assert share is not None
        rows = cutoff_curve(
            queries, top_ns=(), probabilities=(), min_n=0, expected_shares=SHARE_GRID
        )
        recall = {r["expected_share"]: r["recall"] for r in rows}
        assert recall[share] >= target
        assert all(recall[s] < target for s in SHARE_GRID if s < share)
    assert share_for_recall(held_out, 0.9, top_n=1) is None  # the ceiling holds recall down


def test_tune_calibrate_picks_expected_share_for_a_target_recall() -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("sklearn")
    from test_tune import _dataset

    from rerank_kit.evaluation import tune
    from rerank_kit.learning._tune_report import describe

    with pytest.raises(ValueError, match="target_recall needs calibrate"):
        tune(_dataset(), FakeReranker(), depths=[10], folds=3, target_recall=0.8)
    result = tune(
        _dataset(), FakeReranker(), depths=[10], folds=3, calibrate=True, target_recall=0.8
    )
    config = result.config
    if config.first_stage_only:
        pytest.skip("tune chose the first stage alone here")
    assert config.calibration is not None and config.expected_share is not None
    assert 0.0 < config.expected_share <= 1.0 and config.min_probability is None
    assert f"expected_share {config.expected_share:g}" in describe(config)
