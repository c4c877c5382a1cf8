"""Shared pieces of the zoo's builders: the training texts, the tiny shape, tokenizer training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rerank_kit.demo import CORPUS

__all__ = [
    "FFN",
    "HEADS",
    "HIDDEN",
    "INIT_RANGE",
    "LAYERS",
    "ZOO_TEXTS",
    "bert_tokenizer",
    "byte_bpe",
    "drop_model_max_length",
    "save",
    "special_map",
    "unigram_pieces",
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

_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


# -- tokenizers -----------------------------------------------------------------------------------


def bert_tokenizer(input_names: list[str], max_length: int) -> Any:
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    from rerank_kit.models import bundled_cross_encoder

    vocab = Path(bundled_cross_encoder()) / "vocab.txt"
    return BertTokenizerFast(
        vocab=str(vocab),
        do_lower_case=True,
        model_max_length=max_length,
        model_input_names=input_names,
    )


def unigram_pieces(vocab_size: int, specials: list[str]) -> list[tuple[str, float]]:
    """A Unigram (SentencePiece-style, ``▁`` word starts) vocabulary from ``ZOO_TEXTS``.

    The pieces are those a BPE trainer learns (deterministic, unlike the Unigram trainer, whose
    last pieces and scores vary from run to run); each scores ``-1 - rank / n`` in learning
    order, so Viterbi prefers the longer, earlier-learned pieces, as a trained model would.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False
    )
    tok.train_from_iterator(ZOO_TEXTS * 4, trainer)
    vocab = tok.get_vocab()
    pieces = sorted((p for p in vocab if p not in specials), key=lambda p: vocab[p])
    return [(p, -1.0 - rank / len(pieces)) for rank, p in enumerate(pieces)]


def byte_bpe(specials: list[str], extra: list[str], vocab_size: int = 800) -> Any:
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


def save(model: Any, tokenizer: Any, out: Path) -> None:
    """Save both, after checking the tokenizer reads the training texts (few unknown tokens)."""
    ids = tokenizer(ZOO_TEXTS[0], add_special_tokens=False)["input_ids"]
    unknown = sum(i == tokenizer.unk_token_id for i in ids) if tokenizer.unk_token_id else 0
    assert len(tokenizer) > 200 and unknown <= len(ids) // 10, (len(tokenizer), unknown)
    assert model.config.vocab_size >= len(tokenizer), (model.config.vocab_size, len(tokenizer))
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)


def special_map(out: Path, **tokens: str) -> None:
    """FlashRank reads ``special_tokens_map.json``, which transformers 5 no longer writes."""
    (out / "special_tokens_map.json").write_text(json.dumps(tokens, indent=2))


def drop_model_max_length(out: Path) -> None:
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.pop("model_max_length", None)
    path.write_text(json.dumps(config, indent=2))
