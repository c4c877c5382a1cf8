"""ONNX Runtime cross-encoder backend: fidelity to torch, caching, batching, truncation, threads."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("sentence_transformers")

from rerank_kit import OnnxCrossEncoderReranker
from rerank_kit._runtime import cross_encoder as runtime_cross_encoder
from rerank_kit._runtime.batching import length_batches
from rerank_kit._runtime.cpu import default_threads
from rerank_kit._runtime.paths import cache_key, default_cache_dir
from rerank_kit.testing import make_cross_encoder

pytestmark = pytest.mark.models

WORDS = (
    "wing flow pressure boundary layer shock wave heat transfer supersonic subsonic laminar "
    "turbulent drag lift airfoil jet nozzle plate cylinder cone mach number reynolds theory "
    "experiment measurement velocity temperature surface skin friction separation vortex wake "
    "compressible viscous inviscid solution equation numerical method stability panel flutter"
).split()
QUERY = "laminar boundary layer heat transfer at supersonic speed"


def _texts(n: int = 60, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 70))) for _ in range(n)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [*_texts(200, seed=1), QUERY]
    return make_cross_encoder(
        tmp_path_factory.mktemp("ce") / "tiny", corpus, vocab_size=300, initializer_range=0.3
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def fp32(model_dir: Path, cache: Path) -> OnnxCrossEncoderReranker:
    return OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, batch_size=4)


@pytest.fixture(scope="module")
def int8(model_dir: Path, cache: Path, fp32: OnnxCrossEncoderReranker) -> OnnxCrossEncoderReranker:
    return OnnxCrossEncoderReranker(str(model_dir), quantize="int8", cache_dir=cache)


@pytest.fixture(scope="module")
def torch_scores(model_dir: Path) -> list[float]:
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(model_dir), device="cpu")
    pairs = [(QUERY, t) for t in _texts()]
    return [float(s) for s in ce.predict(pairs, batch_size=7, show_progress_bar=False)]


def _order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def test_fp32_matches_cross_encoder_predict(
    fp32: OnnxCrossEncoderReranker, torch_scores: list[float]
) -> None:
    ours = fp32.score(QUERY, _texts())
    assert max(abs(a - b) for a, b in zip(ours, torch_scores, strict=True)) < 1e-4
    assert _order(ours) == _order(torch_scores)
    assert max(torch_scores) - min(torch_scores) > 0.05  # the model really separates the texts
    assert fp32.exported and fp32.onnx_path.name == "model.onnx"
    assert fp32._model.meta["fused"] is True  # ONNX Runtime's transformer fusions applied


def test_rerank_orders_like_torch(
    fp32: OnnxCrossEncoderReranker, torch_scores: list[float]
) -> None:
    ranked = fp32.rerank(QUERY, _texts(), top_n=5)
    assert [r.index for r in ranked] == _order(torch_scores)[:5]


def test_int8_runs_and_orders_similarly(
    int8: OnnxCrossEncoderReranker, torch_scores: list[float]
) -> None:
    from scipy.stats import spearmanr

    ours = int8.score(QUERY, _texts())
    assert int8.onnx_path.name == "model.int8.matmul.onnx"  # MatMul weights: no QAttention
    assert int8._model.rule == "int8-per-token/1"
    assert max(abs(a - b) for a, b in zip(ours, torch_scores, strict=True)) < 0.05
    assert spearmanr(ours, torch_scores).statistic > 0.9
    top = set(_order(ours)[:10]) & set(_order(torch_scores)[:10])
    assert len(top) >= 7


def test_second_construction_reuses_cache(
    model_dir: Path,
    cache: Path,
    fp32: OnnxCrossEncoderReranker,
    int8: OnnxCrossEncoderReranker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mtimes = {p: p.stat().st_mtime_ns for p in (fp32.onnx_path, int8.onnx_path)}

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime_cross_encoder, "export_once", no_export)
    monkeypatch.setattr(runtime_cross_encoder, "quantize_into", no_export)
    again = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache)
    again8 = OnnxCrossEncoderReranker(str(model_dir), quantize="int8", cache_dir=cache)
    assert not again.exported and not again8.exported
    assert again.onnx_path == fp32.onnx_path and again8.onnx_path == int8.onnx_path
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert again.score(QUERY, ["wing flow"]) == pytest.approx(fp32.score(QUERY, ["wing flow"]))
    folders = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
    # the export, and the per-token rewrite of its int8 graph (batch_rule)
    assert len(folders) == 2 and sum("-per-token-" in f for f in folders) == 1, folders


def test_changed_model_files_change_the_cache_key(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    key = cache_key(copy)
    assert cache_key(copy) == key
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"hidden_act"', '"hidden_act" '))
    assert cache_key(copy) != key


def test_cached_model_runs_without_torch(
    model_dir: Path, cache: Path, fp32: OnnxCrossEncoderReranker
) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "sentence_transformers"):
            sys.modules[name] = None  # importing them now raises ImportError
        from rerank_kit import OnnxCrossEncoderReranker
        r = OnnxCrossEncoderReranker({str(model_dir)!r}, cache_dir={str(cache)!r})
        assert not r.exported
        print(r.score({QUERY!r}, ["wing flow", "shock wave drag"]))
        """
    )
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    scores = [float(x) for x in done.stdout.strip().strip("[]").split(",")]
    assert scores == pytest.approx(fp32.score(QUERY, ["wing flow", "shock wave drag"]), abs=1e-6)


def test_length_bucketing_keeps_input_order(fp32: OnnxCrossEncoderReranker) -> None:
    texts = _texts(25, seed=7)
    random.Random(3).shuffle(texts)
    together = fp32.score(QUERY, texts)
    alone = [fp32.score(QUERY, [t])[0] for t in texts]
    assert together == pytest.approx(alone, abs=1e-5)
    lengths = [len(t.split()) for t in texts]
    assert lengths != sorted(lengths)  # the input really was out of length order


def test_batches_respect_size_and_token_budget(fp32: OnnxCrossEncoderReranker) -> None:
    import numpy as np

    lengths = np.array([10, 10, 10, 10, 10, 200, 300, 400])
    order = np.argsort(lengths, kind="stable")
    runs = [list(b) for b in length_batches(order, lengths, 4, 600)]
    assert runs == [[0, 1, 2, 3], [4, 5], [6], [7]]
    # the reranker's settings are the runtime's, and changing them changes its batches
    assert (fp32.batch_size, fp32.max_batch_tokens) == (4, 2048)
    fp32.batch_size, fp32.max_batch_tokens = 2, 600
    try:
        assert (fp32._model.options.batch_size, fp32._model.options.max_batch_tokens) == (2, 600)
        texts = _texts(9, seed=5)
        assert fp32.score(QUERY, texts) == pytest.approx(
            [fp32.score(QUERY, [t])[0] for t in texts], abs=1e-5
        )
    finally:
        fp32.batch_size, fp32.max_batch_tokens = 4, 2048


def test_query_is_kept_whole_under_truncation(
    model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    r = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, max_length=24)
    seen: list[object] = []
    real_run = r._session.run

    def spy(names: object, feeds: dict[str, object]) -> object:
        seen.append(feeds["input_ids"])
        return real_run(names, feeds)

    monkeypatch.setattr(r._session, "run", spy)
    long_text = " ".join(WORDS)  # far more than 24 tokens
    r.score(QUERY, [long_text])
    tok = AutoTokenizer.from_pretrained(model_dir)
    query_ids = tok(QUERY, add_special_tokens=False)["input_ids"]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    rows = [list(row) for batch in seen for row in batch]  # type: ignore[attr-defined]
    (longest,) = rows
    assert len(longest) == 24
    assert longest[: len(query_ids) + 2] == [cls, *query_ids, sep]
    expected = tok(QUERY, long_text, truncation="only_second", max_length=24)["input_ids"]
    assert longest == expected


def test_query_longer_than_max_length_still_scores(model_dir: Path, cache: Path) -> None:
    r = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, max_length=8)
    scores = r.score(QUERY + " " + QUERY, ["wing flow", "shock"])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_empty_list(fp32: OnnxCrossEncoderReranker) -> None:
    assert fp32.score(QUERY, []) == []
    assert fp32.rerank(QUERY, []) == []


def test_threads_setting(model_dir: Path, cache: Path, fp32: OnnxCrossEncoderReranker) -> None:
    one = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, threads=1)
    assert one.threads == 1
    assert one._session.get_session_options().intra_op_num_threads == 1
    assert fp32.threads == default_threads()
    assert fp32._session.get_session_options().intra_op_num_threads == fp32.threads
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= default_threads() <= (available or 1)
    assert one.score(QUERY, ["wing flow"]) == pytest.approx(fp32.score(QUERY, ["wing flow"]))


def test_bad_arguments(model_dir: Path, cache: Path) -> None:
    with pytest.raises(ValueError, match="quantize"):
        OnnxCrossEncoderReranker(str(model_dir), quantize="fp16", cache_dir=cache)
    for kwargs in ({"batch_size": 0}, {"threads": -1}, {"max_length": True}):
        with pytest.raises(ValueError):
            OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, **kwargs)
    with pytest.raises(ValueError, match="exceeds"):
        OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, max_length=100_000)


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RERANK_KIT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "onnx"
    monkeypatch.delenv("RERANK_KIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "rerank-kit" / "onnx"


def test_missing_onnxruntime_names_what_each_step_needs(
    model_dir: Path,
    cache: Path,
    fp32: OnnxCrossEncoderReranker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    # a cached export only runs: onnxruntime and tokenizers
    with pytest.raises(ImportError, match=r"running an ONNX graph.*rerank-kit\[onnx-runtime\]"):
        OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache)
    # a model not exported yet needs the exporter's extra
    with pytest.raises(ImportError, match=r"exporting a cross-encoder.*rerank-kit\[onnx\]"):
        OnnxCrossEncoderReranker(str(model_dir), cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_missing_torch_names_both_ways_to_run_a_cross_encoder(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_kit import CrossEncoderReranker

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"rerank-kit\[cross-encoder\]") as err:
        CrossEncoderReranker(str(model_dir))  # a plain transformers folder: torch by default
    assert "rerank-kit[onnx-runtime]" in str(err.value) and "rerank-kit[onnx]" in str(err.value)


def test_quantization_leaves_root_logger_alone(model_dir: Path, tmp_path: Path) -> None:
    import logging

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    root.handlers[:] = []  # as in a program that never configured logging
    try:
        OnnxCrossEncoderReranker(str(model_dir), quantize="int8", cache_dir=tmp_path)
        assert root.handlers == [] and root.level == saved[1]
    finally:
        root.handlers[:] = saved[0]


def test_cross_encoder_backend_onnx_delegates(
    model_dir: Path, cache: Path, fp32: OnnxCrossEncoderReranker, torch_scores: list[float]
) -> None:
    from rerank_kit import CrossEncoderReranker, load_reranker

    ce = CrossEncoderReranker(str(model_dir), backend="onnx", model_kwargs={"cache_dir": cache})
    assert ce.backend == "onnx" and ce.name.startswith("onnx:")
    ours = ce.score(QUERY, _texts())
    assert max(abs(a - b) for a, b in zip(ours, torch_scores, strict=True)) < 1e-4
    ce8 = CrossEncoderReranker(
        str(model_dir), backend="onnx", quantize="int8", model_kwargs={"cache_dir": cache}
    )
    assert ce8.name.startswith("onnx-int8:")
    assert load_reranker(f"cross-encoder:{model_dir}").backend == "torch"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="backend"):
        CrossEncoderReranker(str(model_dir), backend="tensorrt")
    with pytest.raises(ValueError, match="needs backend='onnx'"):
        CrossEncoderReranker(str(model_dir), quantize="int8")
    with pytest.raises(ValueError, match="CPU"):
        CrossEncoderReranker(str(model_dir), backend="onnx", device="cuda")


def test_truncated_pairs_are_flagged(model_dir: Path, cache: Path) -> None:
    short = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, max_length=24)
    texts = ["wing", " ".join(["flow"] * 60), "wing flow"]
    ranked = short.rerank(QUERY, texts)
    flags = {r.index: r.truncated for r in ranked}
    assert flags == {0: False, 1: True, 2: False}


def test_adapters_pass_backend_through_model_kwargs(
    model_dir: Path, cache: Path, fp32: OnnxCrossEncoderReranker
) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_rerank_kit import CrossEncoderRerank as LCRerank
    from llamaindex_rerank_kit import CrossEncoderRerank as LIRerank

    texts = _texts(12)
    kwargs = {"backend": "onnx", "model_kwargs": {"cache_dir": str(cache)}}
    expected = fp32.rerank(QUERY, texts, top_n=3)
    lc = LCRerank(model=str(model_dir), top_n=3, model_kwargs=kwargs)
    docs = lc.compress_documents([Document(page_content=t) for t in texts], QUERY)
    assert [d.page_content for d in docs] == [texts[r.index] for r in expected]
    assert [d.metadata["relevance_score"] for d in docs] == pytest.approx(
        [r.score for r in expected], abs=1e-6
    )
    li = LIRerank(model=str(model_dir), top_n=3, model_kwargs=kwargs)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts]
    out = li.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert [n.node.get_content() for n in out] == [texts[r.index] for r in expected]
