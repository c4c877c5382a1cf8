"""Builders of the tiny encoder cross-encoders (BERT, ELECTRA, DistilBERT, XLM-R, ModernBERT, DeBERTa-v3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo_build import (
    FFN,
    HEADS,
    HIDDEN,
    INIT_RANGE,
    LAYERS,
    bert_tokenizer,
    byte_bpe,
    drop_model_max_length,
    save,
    special_map,
    unigram_pieces,
)


def _kw(**kwargs: Any) -> dict[str, Any]:
    """Config keyword arguments (transformers 5 configs take more than their typed fields)."""
    return kwargs


__all__ = ["bert", "bert_two_label", "deberta_v3", "distilbert", "electra", "modernbert", "xlmr"]

# -- encoders -------------------------------------------------------------------------------------


def bert(out: Path) -> None:
    """One relevance logit (cross-encoder/ms-marco-MiniLM-L-6-v2)."""
    _bert(out, num_labels=1, seed=1)


def bert_two_label(out: Path) -> None:
    """[not relevant, relevant] logits (amberoad/bert-multilingual-passage-reranking-msmarco)."""
    _bert(out, num_labels=2, seed=9)


def _bert(out: Path, *, num_labels: int, seed: int) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = bert_tokenizer(["input_ids", "token_type_ids", "attention_mask"], 512)
    torch.manual_seed(seed)
    config = BertConfig(
        **_kw(
            vocab_size=tok.vocab_size,
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=FFN,
            max_position_embeddings=512,
            num_labels=num_labels,
            initializer_range=INIT_RANGE,
        )
    )
    save(BertForSequenceClassification(config), tok, out)
    special_map(
        out,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def electra(out: Path) -> None:
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification

    tok = bert_tokenizer(["input_ids", "token_type_ids", "attention_mask"], 512)
    torch.manual_seed(2)
    config = ElectraConfig(
        **_kw(
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
    )
    save(ElectraForSequenceClassification(config), tok, out)
    special_map(
        out,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def distilbert(out: Path) -> None:
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tok = bert_tokenizer(["input_ids", "attention_mask"], 512)
    torch.manual_seed(3)
    config = DistilBertConfig(
        **_kw(
            vocab_size=tok.vocab_size,
            dim=HIDDEN,
            n_layers=LAYERS,
            n_heads=HEADS,
            hidden_dim=FFN,
            max_position_embeddings=512,
            num_labels=1,
            initializer_range=INIT_RANGE,
        )
    )
    save(DistilBertForSequenceClassification(config), tok, out)
    special_map(
        out,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def xlmr(positions: int, model_max_length: int | None, seed: int) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch
        from transformers import (
            XLMRobertaConfig,
            XLMRobertaForSequenceClassification,
            XLMRobertaTokenizer,
        )

        pieces = unigram_pieces(600, ["<unk>"])
        vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces]
        vocab.append(("<mask>", 0.0))
        tok = XLMRobertaTokenizer(vocab=vocab, model_max_length=model_max_length or positions - 2)
        torch.manual_seed(seed)
        config = XLMRobertaConfig(
            **_kw(
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
        )
        save(XLMRobertaForSequenceClassification(config), tok, out)
        if model_max_length is None:
            drop_model_max_length(out)
        special_map(
            out,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            sep_token="</s>",
            pad_token="<pad>",
            cls_token="<s>",
            mask_token="<mask>",
        )

    return build


def modernbert(out: Path) -> None:
    import torch
    from tokenizers import processors
    from transformers import (
        ModernBertConfig,
        ModernBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = byte_bpe(specials, [])
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
        **_kw(
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
    )
    save(ModernBertForSequenceClassification(config), tok, out)
    special_map(
        out,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def deberta_v3(out: Path) -> None:
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2Tokenizer

    pieces = unigram_pieces(600, ["[UNK]"])
    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), *pieces]
    vocab.append(("[MASK]", 0.0))
    tok = DebertaV2Tokenizer(vocab=vocab, model_max_length=512)
    torch.manual_seed(5)
    config = DebertaV2Config(
        **_kw(
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
    )
    save(DebertaV2ForSequenceClassification(config), tok, out)
    special_map(
        out,
        bos_token="[CLS]",
        eos_token="[SEP]",
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )
