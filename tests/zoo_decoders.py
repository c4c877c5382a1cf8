"""Builders of the tiny decoder rerankers (Qwen3-Reranker and its seq-cls conversion, mxbai v2, bge-gemma)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo_build import FFN, HEADS, HIDDEN, INIT_RANGE, LAYERS, byte_bpe, save

__all__ = [
    "GEMMA_CHAT_TEMPLATE",
    "QWEN3_RERANKER_PAIR_TEMPLATE",
    "QWEN_CHAT_TEMPLATE",
    "bge_gemma",
    "mxbai_v2",
    "qwen3_causal",
    "qwen3_seq_cls",
    "qwen3_st",
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


def qwen_tokenizer(template: str | None) -> Any:
    from transformers import PreTrainedTokenizerFast

    bpe = byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], _QWEN_WORDS)
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


def qwen3_config(tok: Any, **extra: Any) -> Any:
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


def qwen3_causal(template: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch
        from transformers import Qwen3ForCausalLM

        tok = qwen_tokenizer(template)
        torch.manual_seed(6)
        save(Qwen3ForCausalLM(qwen3_config(tok)), tok, out)

    return build


def qwen3_st(out: Path) -> None:
    """The causal LM with the pair template, saved by sentence-transformers (its config)."""
    from sentence_transformers import CrossEncoder

    with tempfile.TemporaryDirectory() as tmp:
        qwen3_causal(QWEN3_RERANKER_PAIR_TEMPLATE)(Path(tmp))
        CrossEncoder(tmp, device="cpu").save_pretrained(str(out))


def qwen3_seq_cls(template: str | None) -> Callable[[Path], None]:
    """Qwen3ForSequenceClassification whose score row is lm_head[yes] - lm_head[no].

    ``template``: the pair template the conversion carries, or ``None`` (conversions without one
    exist; the recipe's prompt must then come from the folder's name).
    """

    def build(out: Path) -> None:
        _qwen3_seq_cls(out, template)

    return build


def _qwen3_seq_cls(out: Path, template: str | None) -> None:
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3ForSequenceClassification

    tok = qwen_tokenizer(template)
    torch.manual_seed(6)
    causal = Qwen3ForCausalLM(qwen3_config(tok)).eval()
    config = qwen3_config(tok, num_labels=1, architectures=["Qwen3ForSequenceClassification"])
    seq = Qwen3ForSequenceClassification(config).eval()
    seq.model.load_state_dict(causal.model.state_dict())
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    with torch.no_grad():
        head = causal.lm_head.weight
        seq.score.weight.copy_((head[yes] - head[no]).unsqueeze(0))
    save(seq, tok, out)


def mxbai_v2(out: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = qwen_tokenizer(QWEN_CHAT_TEMPLATE)
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
    save(Qwen2ForCausalLM(config), tok, out)


def bge_gemma(out: Path) -> None:
    import torch
    from tokenizers import processors
    from transformers import GemmaConfig, GemmaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    words = [
        "A: B: Given a query A and a passage B, determine whether the passage contains an answer "
        "to the query by providing a prediction of either 'Yes' or 'No'.",
        "Yes No Yes No",
    ]
    bpe = byte_bpe(specials, words)
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
    save(GemmaForCausalLM(config), tok, out)
