"""PipelineConfig spells the fusion weight ``fusion`` and still reads the old ``fusion_weight``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerank_kit import Fusion, Pipeline, PipelineConfig


def test_new_files_say_fusion_and_old_files_still_load(tmp_path: Path) -> None:
    config = PipelineConfig("bi-encoder:x", "hybrid", 50, 0.4, "rrf", 5)
    data = config.to_dict()
    assert data["format"] == "rerank-kit-pipeline/2"
    assert data["fusion"] == 0.4 and "fusion_weight" not in data
    old = tmp_path / "old.json"
    old.write_text(
        json.dumps(
            {
                "format": "rerank-kit-pipeline/1",
                "reranker": "bi-encoder:x",
                "first_stage": "hybrid",
                "depth": 50,
                "fusion_weight": 0.4,
                "fusion_method": "rrf",
                "top_n": 5,
                "score_threshold": None,
            }
        )
    )
    assert PipelineConfig.load(old) == config
    assert config.to_fusion() == Fusion(0.4, "rrf")
    assert PipelineConfig("x:y").to_fusion() is None


def test_the_old_spelling_warns() -> None:
    with pytest.deprecated_call():
        config = PipelineConfig("x:y", fusion_weight=0.3)
    assert config.fusion == 0.3
    with pytest.deprecated_call():
        assert config.fusion_weight == 0.3  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not both"), pytest.deprecated_call():
        PipelineConfig("x:y", fusion=0.2, fusion_weight=0.3)


def test_a_bad_weight_in_a_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"reranker": "x:y", "fusion": 2}))
    with pytest.raises(ValueError, match="fusion weight"):
        PipelineConfig.load(bad)


def test_the_pipeline_fuses_as_configured(tmp_path: Path) -> None:
    from rerank_kit.testing import FakeReranker

    config = PipelineConfig("fake:x", fusion=0.5, fusion_method="rrf", top_n=2)
    p = Pipeline(config, FakeReranker())
    texts = ["b", "a b", "c", "a"]
    want = FakeReranker().rerank("a b", texts, top_n=2, fusion=0.5, fusion_method="rrf")
    assert p.rerank("a b", texts) == want
