"""Test helpers: a deterministic fake reranker and tiny local cross-encoders.

Nothing here downloads anything. ``make_cross_encoder`` trains a WordPiece tokenizer on the
texts you give and saves a randomly initialised BERT cross-encoder of any shape (use the real
MiniLM-L6 or TinyBERT-L2 shapes to time things: compute depends on shape, not weights);
``export_flashrank`` turns such a folder into one FlashRank can load; ``make_causal_lm_reranker``
saves a tiny random-weight generative reranker laid out like Qwen3-Reranker (a Qwen3 causal LM
whose chat template renders the model card's yes/no prompt); ``make_qwen2_reranker`` one laid out
like mxbai-rerank-base-v2 (a Qwen2 causal LM, no sentence-transformers config) and
``make_gemma_reranker`` one like bge-reranker-v2-gemma (a Gemma causal LM with a BOS token).

Example:
    >>> from rerank_kit.testing import FakeReranker
    >>> FakeReranker().score("red apple", ["an apple", "a red apple", "a pear"])
    [0.5, 1.0, 0.0]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core.protocol import Reranker
from rerank_kit._testing_export import export_flashrank

__all__ = [
    "MINILM_L6",
    "QWEN3_RERANKER_TEMPLATE",
    "TINYBERT_L2",
    "FakeReranker",
    "export_flashrank",
    "make_causal_lm_reranker",
    "make_cross_encoder",
    "make_gemma_reranker",
    "make_qwen2_reranker",
]

#: BertConfig shape of MiniLM-L6 cross-encoders (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2).
MINILM_L6 = {
    "num_hidden_layers": 6,
    "hidden_size": 384,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
}
#: BertConfig shape of TinyBERT-L2 (FlashRank's default ms-marco-TinyBERT-L-2-v2).
TINYBERT_L2 = {
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "num_attention_heads": 2,
    "intermediate_size": 512,
}

_WORD = re.compile(r"\w+")


class FakeReranker(Reranker):
    """Deterministic reranker: the share of query words found in the text (0.0 to 1.0).

    Example:
        >>> FakeReranker().rerank("a b", ["b", "a b", "c"], top_n=2)[0].index
        1
    """

    def __init__(self, name: str = "fake") -> None:
        super().__init__()
        self.name = name
        self.calls = 0

    #: A pair's score is the pair's alone: ``rerank-kit serve`` may score requests together.
    batch_independent = True

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        self.calls += 1
        return _overlap(query, texts)

    def _score_groups(self, groups: list[tuple[str, list[str]]]) -> list[Sequence[float]]:  # type: ignore[override]
        """Every group in one call (``calls`` counts it once), as a batching model would."""
        self.calls += 1
        return [_overlap(query, texts) for query, texts in groups]


def _overlap(query: str, texts: list[str]) -> list[float]:
    q = set(_WORD.findall(query.lower()))
    if not q:
        return [0.0] * len(texts)
    return [len(q & set(_WORD.findall(t.lower()))) / len(q) for t in texts]


def make_cross_encoder(
    folder: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 2000,
    max_position_embeddings: int = 512,
    seed: int = 0,
    initializer_range: float = 0.02,
    **shape: int,
) -> Path:
    """Save a randomly initialised one-label BERT cross-encoder that ``CrossEncoder`` loads.

    Args:
        folder: Where to save it (created).
        texts: Texts to train the WordPiece tokenizer on.
        vocab_size: Tokenizer vocabulary size.
        max_position_embeddings: Longest input, in tokens.
        seed: Torch seed for the weights.
        initializer_range: Std of the random weights (larger spreads the scores out).
        **shape: BertConfig sizes; defaults to a tiny 2-layer, hidden-32 model. Pass
            ``**MINILM_L6`` or ``**TINYBERT_L2`` for real shapes.

    Returns:
        The folder.

    Example:
        >>> path = make_cross_encoder("/tmp/tiny-ce", ["some text", "more text"])  # doctest: +SKIP
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_position_embeddings,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    config_args: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    config_args.update(shape)
    config_args.update(
        vocab_size=tok.get_vocab_size(),
        max_position_embeddings=max_position_embeddings,
        num_labels=1,
        pad_token_id=tok.token_to_id("[PAD]"),
        initializer_range=initializer_range,
    )
    config = BertConfig(**config_args)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    special_map = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    return out


#: Chat template rendering a (query, document) pair as Qwen3-Reranker's model card prompt does.
#: sentence-transformers maps a pair to messages with roles ``query`` and ``document``; an optional
#: ``system`` message replaces the default instruction.
QWEN3_RERANKER_TEMPLATE = (
    '{%- set query = messages | selectattr("role", "eq", "query") | map(attribute="content") | first -%}\n'
    '{%- set document = messages | selectattr("role", "eq", "document") | map(attribute="content") | first -%}\n'
    '{%- set instruction = messages | selectattr("role", "eq", "system") | map(attribute="content") '
    '| first | default("Given a web search query, retrieve relevant passages that answer the query") -%}\n'
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n<Instruct>: {{ instruction }}\n<Query>: {{ query }}\n"
    "<Document>: {{ document }}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>"
    '{{ "\\n\\n" }}'  # an expression: Jinja drops a template's final newline
)


def make_causal_lm_reranker(
    folder: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 1000,
    max_position_embeddings: int = 512,
    seed: int = 0,
    initializer_range: float = 0.2,
    **shape: int,
) -> Path:
    """Save a tiny random-weight generative reranker shaped like Qwen3-Reranker.

    The folder holds a ``Qwen3ForCausalLM`` (tiny config, tied embeddings), a byte-level BPE
    tokenizer trained on ``texts`` in which ``yes`` and ``no`` are single tokens, and
    :data:`QWEN3_RERANKER_TEMPLATE` as its chat template, like the model card's prompt.
    sentence-transformers' ``CrossEncoder`` loads it as a causal-LM reranker (a ``LogitScore``
    head on the ``yes``/``no`` logits), so the plumbing can be tested without downloads.

    Args:
        folder: Where to save it (created).
        texts: Texts to train the tokenizer on (the prompt's own words are added).
        vocab_size: Tokenizer vocabulary size.
        max_position_embeddings: Longest input, in tokens (also the tokenizer's limit).
        seed: Torch seed for the weights.
        initializer_range: Std of the random weights (larger spreads the scores out).
        **shape: Qwen3Config sizes; defaults to 2 layers, hidden size 32.

    Returns:
        The folder.

    Example:
        >>> path = make_causal_lm_reranker("/tmp/tiny-qwen3-reranker", ["some text"])  # doctest: +SKIP
        >>> CrossEncoderReranker(str(path)).score("q", ["a passage"])  # doctest: +SKIP
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    prompt_words = QWEN3_RERANKER_TEMPLATE.replace("{", " ").replace("}", " ")
    corpus = [*texts, prompt_words, *(["yes", "no", "yes no"] * 20)]
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    missing = [w for w in ("yes", "no") if tok.token_to_id(w) is None]
    if missing:  # pragma: no cover - the corpus above makes both words merges
        tok.add_tokens(missing)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=max_position_embeddings,
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=QWEN3_RERANKER_TEMPLATE,
    )
    config_args: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
    }
    config_args.update(shape)
    config_args.update(
        vocab_size=tok.get_vocab_size(),
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        eos_token_id=tok.token_to_id("<|im_end|>"),
        bos_token_id=None,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(Qwen3Config(**config_args)).eval()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


#: A generic ChatML template (Qwen2.5 style), as a Qwen2-based reranker's tokenizer carries.
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _prompt_words(recipe_name: str) -> list[str]:
    """The words of a built-in recipe's prompt (so the tokenizer learns them as real ones do)."""
    from rerank_kit.recipes import list_recipes, render

    recipe = next(r for r in list_recipes() if r.name == recipe_name)
    return re.findall(r"\w+", render(recipe, "", ""))


def _byte_bpe(texts: Iterable[str], special: list[str], words: list[str], vocab_size: int) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts``; each of ``words`` is one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [*texts, *([" ".join(words)] * 30)],
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    missing = [w for w in words if tok.token_to_id(w) is None]
    if missing:  # pragma: no cover - the corpus above makes every word a merge
        tok.add_tokens(missing)
    return tok


def make_qwen2_reranker(
    folder: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 1000,
    max_position_embeddings: int = 512,
    seed: int = 0,
    initializer_range: float = 0.2,
    **shape: int,
) -> Path:
    """Save a tiny random-weight reranker laid out like mxbai-rerank-base/large-v2.

    A ``Qwen2ForCausalLM``, a byte-level BPE tokenizer (ChatML tokens and template, left
    padding) and no sentence-transformers config, like the Hub folders. Name the folder after
    the family (e.g. ``"tiny-mxbai-rerank-base-v2"``) so its recipe matches it.

    Arguments as :func:`make_causal_lm_reranker` (``**shape``: Qwen2Config sizes); returns the
    folder.
    """
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    words = ["0", "1", *_prompt_words("mxbai-rerank-v2")]
    tok = _byte_bpe(texts, special, words, vocab_size)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=max_position_embeddings,
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=_CHATML,
    )
    config_args: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    config_args.update(shape)
    config_args.update(
        vocab_size=tok.get_vocab_size(),
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        eos_token_id=tok.token_to_id("<|im_end|>"),
        bos_token_id=None,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    Qwen2ForCausalLM(Qwen2Config(**config_args)).eval().save_pretrained(out)
    fast.save_pretrained(out)
    return out


def make_gemma_reranker(
    folder: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 1000,
    max_position_embeddings: int = 1024,
    seed: int = 0,
    initializer_range: float = 0.2,
    **shape: int,
) -> Path:
    """Save a tiny random-weight reranker laid out like bge-reranker-v2-gemma.

    A ``GemmaForCausalLM``, a byte-level BPE tokenizer (``"Yes"`` one token; ``<bos>`` added in
    front of every encoding, as Gemma's is) and no chat template. Name the folder after the
    family (e.g. ``"tiny-bge-reranker-v2-gemma"``) so its recipe matches it.

    Arguments as :func:`make_causal_lm_reranker` (``**shape``: GemmaConfig sizes); returns the
    folder.
    """
    import torch
    from tokenizers import processors
    from transformers import GemmaConfig, GemmaForCausalLM, PreTrainedTokenizerFast

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    special = ["<pad>", "<eos>", "<bos>", "<unk>"]
    words = ["Yes", "No", *_prompt_words("bge-reranker-v2-gemma")]
    tok = _byte_bpe(texts, special, words, vocab_size)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_position_embeddings,
        model_input_names=["input_ids", "attention_mask"],
    )
    config_args: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
    }
    config_args.update(shape)
    config_args.update(
        vocab_size=tok.get_vocab_size(),
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tok.token_to_id("<pad>"),
        eos_token_id=tok.token_to_id("<eos>"),
        bos_token_id=bos,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    GemmaForCausalLM(GemmaConfig(**config_args)).eval().save_pretrained(out)
    fast.save_pretrained(out)
    return out
