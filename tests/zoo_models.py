"""Tiny random-weight rerankers of every architecture users pick, built offline for the model zoo.

Each builder saves a folder shaped like the real model (position count and offset, pooling,
token types or none, special tokens, chat template, sentence-transformers config or none) with
2 layers and hidden size 32-64, so every backend and path can be checked against the model card's
recipe (``zoo_reference``) in seconds. Tokenizers are trained here (Unigram for XLM-R and
DeBERTa-v3, byte-level BPE for ModernBERT, Qwen and Gemma) or use the bundled model's BERT
``vocab.txt`` (BERT, ELECTRA, DistilBERT).

``build_zoo(root)`` builds every model once; with a persistent cache folder (default
``~/.cache/rerank-kit-tests``; ``RERANK_KIT_TEST_CACHE=0`` turns it off) the folders are kept
under a key made of this file's text and the library versions, so later sessions reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_kit.demo import CORPUS

__all__ = [
    "GEMMA_CHAT_TEMPLATE",
    "QWEN3_RERANKER_PAIR_TEMPLATE",
    "QWEN_CHAT_TEMPLATE",
    "ZOO",
    "ZOO_TEXTS",
    "ZooModel",
    "build_zoo",
]

#: Shared shape of every tiny model: 2 layers, hidden 32, 2 heads.
HIDDEN, HEADS, FFN, LAYERS = 32, 2, 64, 2
#: Random weights wide enough that scores spread out (a trained model's do).
INIT_RANGE = 0.25

ZOO_TEXTS: list[str] = [text for _, text in CORPUS] + [
    "the quick brown fox jumps over the lazy dog",
    "paris is the capital of france and berlin is the capital of germany",
    "rerankers score a query and a passage together with a cross encoder",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
    "what is the capital of france? Paris. Yes or no: relevant, 1 or 0.",
    "深度学习是机器学习的一个分支。 北京是中国的首都。",
    "Die Hauptstadt von Deutschland ist Berlin; la capitale de la France est Paris.",
]

# -- chat templates -----------------------------------------------------------------------------

#: A Qwen3-Reranker pair template (the model card's prompt) rendering sentence-transformers'
#: ``query`` / ``document`` roles; an optional ``system`` message replaces the instruction.
QWEN3_RERANKER_PAIR_TEMPLATE = (
    '{%- set q = messages | selectattr("role", "eq", "query") | map(attribute="content") | first -%}'
    '{%- set d = messages | selectattr("role", "eq", "document") | map(attribute="content") '
    "| first -%}"
    '{%- set i = messages | selectattr("role", "eq", "system") | map(attribute="content") | first '
    '| default("Given a web search query, retrieve relevant passages that answer the query") -%}'
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n<Instruct>: {{ i }}\n<Query>: {{ q }}\n<Document>: {{ d }}<|im_end|>\n"
    '<|im_start|>assistant\n<think>\n\n</think>{{ "\\n\\n" }}'
)

#: A Qwen2.5 / Qwen3 style ChatML template, as base Qwen folders carry: system, user and assistant
#: turns; like the real Qwen3 template it raises when there is no user turn.
QWEN_CHAT_TEMPLATE = (
    "{%- set ns = namespace(user=false) -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' -%}{%- set ns.user = true -%}{%- endif -%}"
    "{%- if m.role in ['system', 'user', 'assistant'] -%}"
    "{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if not ns.user -%}{{ raise_exception('No user query found in messages.') }}{%- endif -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

#: Gemma's turn template: user / model turns that must alternate (it raises otherwise).
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for m in messages -%}"
    "{%- if (m.role == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if m.role == 'assistant' else m.role -%}"
    "{{ '<start_of_turn>' + role + '\\n' + m.content | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

#: The Qwen2 pre-tokenizer split (its tokenizer.json), before the byte-level mapping.
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class ZooModel:
    """One architecture of the zoo.

    Attributes:
        key: Short id (the matrix's row).
        folder: Folder name, the real model's repository name (recipes may match on it).
        real: The real model(s) this stands for.
        family: The reference recipe (``zoo_reference.RECIPES``).
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


# -- tokenizers -----------------------------------------------------------------------------------


def _bert_tokenizer(input_names: list[str], max_length: int) -> Any:
    from transformers import BertTokenizerFast

    from rerank_kit.models import bundled_cross_encoder

    vocab = Path(bundled_cross_encoder()) / "vocab.txt"
    return BertTokenizerFast(
        vocab=str(vocab),
        do_lower_case=True,
        model_max_length=max_length,
        model_input_names=input_names,
    )


def _unigram_pieces(vocab_size: int, specials: list[str]) -> list[tuple[str, float]]:
    """A Unigram (SentencePiece-style, ``▁`` word starts) vocabulary trained on ``ZOO_TEXTS``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token=specials[0], show_progress=False
    )
    tok.train_from_iterator(ZOO_TEXTS * 4, trainer)
    data = json.loads(tok.to_str())["model"]["vocab"]
    return [(str(p), float(s)) for p, s in data if p not in specials]


def _byte_bpe(specials: list[str], extra: list[str], vocab_size: int = 800) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` (Qwen2's split) trained on ``ZOO_TEXTS``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    corpus = [*ZOO_TEXTS, *extra] * 3 + [" ".join(extra)] * 20
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    return tok


def _save(model: Any, tokenizer: Any, out: Path) -> None:
    """Save both, after checking the tokenizer reads the training texts (few unknown tokens)."""
    ids = tokenizer(ZOO_TEXTS[0], add_special_tokens=False)["input_ids"]
    unknown = sum(i == tokenizer.unk_token_id for i in ids) if tokenizer.unk_token_id else 0
    assert len(tokenizer) > 200 and unknown <= len(ids) // 10, (len(tokenizer), unknown)
    assert model.config.vocab_size >= len(tokenizer), (model.config.vocab_size, len(tokenizer))
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)


def _special_map(out: Path, **tokens: str) -> None:
    """FlashRank reads ``special_tokens_map.json``, which transformers 5 no longer writes."""
    (out / "special_tokens_map.json").write_text(json.dumps(tokens, indent=2))


def _drop_model_max_length(out: Path) -> None:
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.pop("model_max_length", None)
    path.write_text(json.dumps(config, indent=2))


# -- encoders -------------------------------------------------------------------------------------


def _bert(out: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = _bert_tokenizer(["input_ids", "token_type_ids", "attention_mask"], 512)
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=512,
        num_labels=1,
        initializer_range=INIT_RANGE,
    )
    _save(BertForSequenceClassification(config), tok, out)
    _special_map(
        out, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _electra(out: Path) -> None:
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification

    tok = _bert_tokenizer(["input_ids", "token_type_ids", "attention_mask"], 512)
    torch.manual_seed(2)
    config = ElectraConfig(
        vocab_size=tok.vocab_size,
        embedding_size=HIDDEN,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=512,
        num_labels=1,
        initializer_range=INIT_RANGE,
    )
    _save(ElectraForSequenceClassification(config), tok, out)
    _special_map(
        out, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _distilbert(out: Path) -> None:
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tok = _bert_tokenizer(["input_ids", "attention_mask"], 512)
    torch.manual_seed(3)
    config = DistilBertConfig(
        vocab_size=tok.vocab_size,
        dim=HIDDEN,
        n_layers=LAYERS,
        n_heads=HEADS,
        hidden_dim=FFN,
        max_position_embeddings=512,
        num_labels=1,
        initializer_range=INIT_RANGE,
    )
    _save(DistilBertForSequenceClassification(config), tok, out)
    _special_map(
        out, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _xlmr(positions: int, model_max_length: int | None, seed: int) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification
        from transformers import XLMRobertaTokenizer

        pieces = _unigram_pieces(600, ["<unk>"])
        vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces]
        vocab.append(("<mask>", 0.0))
        tok = XLMRobertaTokenizer(
            vocab=vocab, model_max_length=model_max_length or positions - 2
        )
        torch.manual_seed(seed)
        config = XLMRobertaConfig(
            vocab_size=len(vocab),
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=FFN,
            max_position_embeddings=positions,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            num_labels=1,
            initializer_range=INIT_RANGE,
        )
        _save(XLMRobertaForSequenceClassification(config), tok, out)
        if model_max_length is None:
            _drop_model_max_length(out)
        _special_map(
            out, bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>",
            pad_token="<pad>", cls_token="<s>", mask_token="<mask>",
        )

    return build


def _modernbert(out: Path) -> None:
    import torch
    from tokenizers import processors
    from transformers import (
        ModernBertConfig,
        ModernBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = _byte_bpe(specials, [])
    ids = {s: bpe.token_to_id(s) for s in specials}
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=8192,
        model_input_names=["input_ids", "attention_mask"],
    )
    torch.manual_seed(4)
    config = ModernBertConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=8192,
        local_attention=16,
        global_attn_every_n_layers=2,
        classifier_pooling="mean",
        pad_token_id=ids["[PAD]"],
        cls_token_id=ids["[CLS]"],
        sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"],
        eos_token_id=ids["[SEP]"],
        num_labels=1,
        initializer_range=INIT_RANGE,
    )
    _save(ModernBertForSequenceClassification(config), tok, out)
    _special_map(
        out, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _deberta_v3(out: Path) -> None:
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification
    from transformers import DebertaV2Tokenizer

    pieces = _unigram_pieces(600, ["[UNK]"])
    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), *pieces]
    vocab.append(("[MASK]", 0.0))
    tok = DebertaV2Tokenizer(vocab=vocab, model_max_length=512)
    torch.manual_seed(5)
    config = DebertaV2Config(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,
        position_buckets=256,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        pad_token_id=0,
        num_labels=1,
        initializer_range=INIT_RANGE,
    )
    _save(DebertaV2ForSequenceClassification(config), tok, out)
    _special_map(
        out, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]", sep_token="[SEP]",
        pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )


# -- decoders -------------------------------------------------------------------------------------

_QWEN_WORDS = [
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".',
    "<Instruct>: Given a web search query, retrieve relevant passages that answer the query",
    "<Query>: <Document>: <think>\n\n</think>\n\n system user assistant",
    "yes no yes no 1 0 1 0 Yes No",
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant. instruction: query: "
    "document:",
]


def _qwen_tokenizer(template: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    bpe = _byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], _QWEN_WORDS)
    for word in ("yes", "no", "0", "1"):
        assert bpe.token_to_id(word) is not None, word
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=template,
    )


def _qwen3_config(tok: Any, **extra: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=40960,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        initializer_range=INIT_RANGE,
        **extra,
    )


def _qwen3_causal(template: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch
        from transformers import Qwen3ForCausalLM

        tok = _qwen_tokenizer(template)
        torch.manual_seed(6)
        _save(Qwen3ForCausalLM(_qwen3_config(tok)), tok, out)

    return build


def _qwen3_st(out: Path) -> None:
    """The causal LM with the pair template, saved by sentence-transformers (its config)."""
    from sentence_transformers import CrossEncoder

    with tempfile.TemporaryDirectory() as tmp:
        _qwen3_causal(QWEN3_RERANKER_PAIR_TEMPLATE)(Path(tmp))
        CrossEncoder(tmp, device="cpu").save_pretrained(str(out))


def _qwen3_seq_cls(out: Path) -> None:
    """Qwen3ForSequenceClassification whose score row is lm_head[yes] - lm_head[no]."""
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3ForSequenceClassification

    tok = _qwen_tokenizer(QWEN3_RERANKER_PAIR_TEMPLATE)
    torch.manual_seed(6)
    causal = Qwen3ForCausalLM(_qwen3_config(tok)).eval()
    config = _qwen3_config(tok, num_labels=1, architectures=["Qwen3ForSequenceClassification"])
    seq = Qwen3ForSequenceClassification(config).eval()
    seq.model.load_state_dict(causal.model.state_dict())
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    with torch.no_grad():
        head = causal.lm_head.weight
        seq.score.weight.copy_((head[yes] - head[no]).unsqueeze(0))
    _save(seq, tok, out)


def _mxbai_v2(out: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _qwen_tokenizer(QWEN_CHAT_TEMPLATE)
    torch.manual_seed(7)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=1,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        initializer_range=INIT_RANGE,
    )
    _save(Qwen2ForCausalLM(config), tok, out)


def _bge_gemma(out: Path) -> None:
    import torch
    from tokenizers import processors
    from transformers import GemmaConfig, GemmaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    words = [
        "A: B: Given a query A and a passage B, determine whether the passage contains an answer "
        "to the query by providing a prediction of either 'Yes' or 'No'.",
        "Yes No Yes No",
    ]
    bpe = _byte_bpe(specials, words)
    bpe.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bpe.token_to_id("<bos>"))]
    )
    assert bpe.token_to_id("Yes") is not None
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=8192,
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=GEMMA_CHAT_TEMPLATE,
    )
    torch.manual_seed(8)
    config = GemmaConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=8192,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        initializer_range=INIT_RANGE,
    )
    _save(GemmaForCausalLM(config), tok, out)


ZOO: dict[str, ZooModel] = {
    m.key: m
    for m in (
        ZooModel(
            "bert", "ms-marco-MiniLM-L-6-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2",
            "encoder", "encoder", False, _bert, "BERT/MiniLM: token types, 512 positions",
        ),
        ZooModel(
            "xlmr-m3", "bge-reranker-v2-m3", "BAAI/bge-reranker-v2-m3",
            "encoder", "encoder", False, _xlmr(8194, 8192, 11),
            "XLM-R: 8194 positions (offset 2), no token types",
        ),
        ZooModel(
            "xlmr-base", "bge-reranker-base", "BAAI/bge-reranker-base, -large",
            "encoder", "encoder", False, _xlmr(514, 512, 12),
            "XLM-R: 514 positions (offset 2)",
        ),
        ZooModel(
            "xlmr-nomax", "bge-reranker-base-nomax", "an XLM-R folder without model_max_length",
            "encoder", "encoder", False, _xlmr(514, None, 13),
            "XLM-R: 514 positions, tokenizer without model_max_length",
        ),
        ZooModel(
            "modernbert", "gte-reranker-modernbert-base",
            "Alibaba-NLP/gte-reranker-modernbert-base, Ettin rerankers",
            "encoder", "encoder", False, _modernbert,
            "ModernBERT: byte-level BPE, local attention 16, mean pooling",
        ),
        ZooModel(
            "deberta-v3", "mxbai-rerank-xsmall-v1", "mixedbread-ai/mxbai-rerank-xsmall-v1, -base-v1",
            "encoder", "encoder", False, _deberta_v3,
            "DeBERTa-v3: relative positions, type_vocab_size 0",
        ),
        ZooModel(
            "electra", "ms-marco-electra-base", "cross-encoder/ms-marco-electra-base",
            "encoder", "encoder", False, _electra, "ELECTRA: token types",
        ),
        ZooModel(
            "distilbert", "distilbert-reranker", "DistilBERT cross-encoders",
            "encoder", "encoder", False, _distilbert, "DistilBERT: no token types",
        ),
        ZooModel(
            "qwen3-st", "Qwen3-Reranker-0.6B-st", "Qwen/Qwen3-Reranker-0.6B (sentence-transformers)",
            "qwen3", "causal", True, _qwen3_st,
            "Qwen3 causal LM, pair chat template, sentence-transformers config (LogitScore)",
        ),
        ZooModel(
            "qwen3", "Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-0.6B, -4B, -8B",
            "qwen3", "causal", False, _qwen3_causal(QWEN_CHAT_TEMPLATE),
            "Qwen3 causal LM, Qwen ChatML template, no sentence-transformers config",
        ),
        ZooModel(
            "qwen3-seq-cls", "Qwen3-Reranker-0.6B-seq-cls", "tomaarsen/Qwen3-Reranker-0.6B-seq-cls",
            "qwen3", "seq-cls-decoder", False, _qwen3_seq_cls,
            "Qwen3ForSequenceClassification, score = lm_head[yes] - lm_head[no], pair template",
        ),
        ZooModel(
            "mxbai-v2", "mxbai-rerank-base-v2", "mixedbread-ai/mxbai-rerank-base-v2, -large-v2",
            "mxbai-v2", "causal", False, _mxbai_v2,
            "Qwen2 causal LM, ChatML template, no sentence-transformers config",
        ),
        ZooModel(
            "bge-gemma", "bge-reranker-v2-gemma", "BAAI/bge-reranker-v2-gemma",
            "bge-gemma", "causal", False, _bge_gemma,
            "Gemma causal LM, Gemma turn template, no sentence-transformers config",
        ),
    )
}


def _zoo_key() -> str:
    import tokenizers
    import torch
    import transformers

    digest = hashlib.sha256(Path(__file__).read_bytes())
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
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_zoo(session_root: Path, keys: list[str] | None = None) -> dict[str, Path]:
    """Every zoo model's folder (``keys`` only, if given), built once and cached.

    Args:
        session_root: Used when the persistent cache is off or not writable.
        keys: Which models; all by default.
    """
    root = persistent_root()
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            root = None
    base = root or session_root
    return {key: build_model(ZOO[key], base) for key in (keys or list(ZOO))}
