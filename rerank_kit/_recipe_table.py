"""The built-in reranker recipes (``rerank_kit.recipes``): one row per family, each with its source.

Rows are matched in order after the user's own (``register_recipe``); identified rows (by name or
chat template) win over the plain encoder families, which need no identifier. For plain
``"cross-encoder"`` rows the activation is a default: a folder's own sentence-transformers
activation (``config.json``) wins, as in ``CrossEncoder.predict``.
"""

from __future__ import annotations

from rerank_kit._recipe import Recipe

__all__ = ["BUILTIN_RECIPES", "QWEN3_RERANKER_PREFIX", "QWEN3_RERANKER_SUFFIX"]

_ST_CROSS_ENCODER = (
    "sentence-transformers CrossEncoder.predict (sigmoid of the one logit); "
    "https://huggingface.co/cross-encoder/ms-marco-MiniLM-L6-v2"
)

# Qwen3-Reranker model card, "Transformers Usage" (https://huggingface.co/Qwen/Qwen3-Reranker-0.6B):
# prefix + format_instruction(instruction, query, doc) + suffix, with
# format_instruction = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}", the body
# tokenized as one string (truncation cuts its end: the document), padding_side="left",
# max_length=8192, score = softmax over the last position's [no, yes] logits, yes.
QWEN3_RERANKER_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_RERANKER_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
_QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
_QWEN3_TEMPLATE = {
    "prefix": QWEN3_RERANKER_PREFIX,
    "query_format": "<Instruct>: {instruction}\n<Query>: {query}\n",
    "document_format": "<Document>: {document}",
    "suffix": QWEN3_RERANKER_SUFFIX,
    "default_instruction": _QWEN3_INSTRUCTION,
    "max_length": 8192,
}

# mixedbread-ai/mxbai-rerank, mxbai_rerank/mxbai_rerank_v2.py (MxbaiRerankV2): chat prefix +
# [instruction_prompt + sep +] query_prompt + sep + doc_prompt + sep + task_prompt + chat suffix,
# each piece tokenized apart; instruction optional ("instruction: {instruction}"), sep = "\n";
# score = logits[:, -1, id("1")] - logits[:, -1, id("0")] (raw); left padding; max_length 8192.
_MXBAI_V2_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n<|im_start|>user\n"
)
_MXBAI_V2_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)

# FlagOpen/FlagEmbedding, FlagEmbedding/inference/reranker/decoder_only/base.py (BaseLLMReranker,
# the bge-reranker-v2-gemma card's get_inputs): [bos] + tokens("A: " + query) + tokens("\n") +
# tokens("B: " + passage) + tokens("\n") + tokens(prompt), default prompt below; score =
# logits[:, -1, id("Yes")] (raw; sigmoid only with normalize=True); max_length 512 for the passage.
_BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)

BUILTIN_RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="qwen3-reranker",
        kind="yes-no",
        architectures=("Qwen3ForCausalLM",),
        model_types=("qwen3",),
        name_patterns=("*qwen3-reranker*",),
        template_markers=("<Instruct>", "<Query>", "<Document>"),
        yes_token="yes",
        no_token="no",
        activation="softmax-yes-no",
        padding_side="left",
        source="https://huggingface.co/Qwen/Qwen3-Reranker-0.6B (model card, Transformers Usage)",
        **_QWEN3_TEMPLATE,  # type: ignore[arg-type]
    ),
    Recipe(
        # the sequence-classification conversion (e.g. tomaarsen/Qwen3-Reranker-0.6B-seq-cls):
        # score head = lm_head[yes] - lm_head[no] on the last non-pad token, so
        # sigmoid(score) = the card's softmax([no, yes])[yes]; the card's template is part of it
        name="qwen3-reranker-seq-cls",
        kind="seq-cls-template",
        architectures=("Qwen3ForSequenceClassification",),
        model_types=("qwen3",),
        name_patterns=("*qwen3-reranker*",),
        template_markers=("<Instruct>", "<Query>", "<Document>"),
        label=0,
        activation="sigmoid",
        source="https://huggingface.co/Qwen/Qwen3-Reranker-0.6B (model card), converted head",
        **_QWEN3_TEMPLATE,  # type: ignore[arg-type]
    ),
    Recipe(
        name="mxbai-rerank-v2",
        kind="yes-no",
        architectures=("Qwen2ForCausalLM",),
        model_types=("qwen2",),
        name_patterns=("*mxbai-rerank-*-v2*", "*mxbai-rerank-v2*"),
        template_markers=("You are a search relevance expert",),
        prefix=_MXBAI_V2_PREFIX,
        query_format="{instruction}query: {query}",
        separator="\n",
        document_format="document: {document}",
        suffix="\n" + _MXBAI_V2_TASK + "<|im_end|>\n<|im_start|>assistant\n",
        instruction_format="instruction: {instruction}\n",
        default_instruction="",
        split_tokenization=True,
        yes_token="1",
        no_token="0",
        activation="yes-minus-no",
        max_length=8192,
        padding_side="left",
        source="https://github.com/mixedbread-ai/mxbai-rerank mxbai_rerank/mxbai_rerank_v2.py",
    ),
    Recipe(
        name="bge-reranker-v2-gemma",
        kind="yes-no",
        architectures=("GemmaForCausalLM",),
        model_types=("gemma",),
        name_patterns=("*bge-reranker-v2-gemma*",),
        template_markers=("A: ", "B: ", "'Yes' or 'No'"),
        query_format="A: {query}",
        separator="\n",
        document_format="B: {document}",
        suffix="\n{instruction}",
        default_instruction=_BGE_GEMMA_PROMPT,
        split_tokenization=True,
        add_bos=True,
        yes_token="Yes",
        activation="yes-logit",
        max_length=512,
        extra={"truncation": "flagembedding"},  # rerank_kit._runtime.decoder: its length rule
        padding_side="left",
        source=(
            "https://github.com/FlagOpen/FlagEmbedding "
            "FlagEmbedding/inference/reranker/decoder_only/base.py (BaseLLMReranker)"
        ),
    ),
    Recipe(
        # cross-encoder/ms-marco-MiniLM-L*-v2, ms-marco-TinyBERT-L2-v2, BAAI-style BERT rerankers
        name="bert-cross-encoder",
        model_types=("bert",),
        source=_ST_CROSS_ENCODER,
    ),
    Recipe(
        name="electra-cross-encoder",  # cross-encoder/ms-marco-electra-base
        model_types=("electra",),
        source=_ST_CROSS_ENCODER,
    ),
    Recipe(
        name="distilbert-cross-encoder",  # DistilBERT ms-marco cross-encoders (no token types)
        model_types=("distilbert",),
        source=_ST_CROSS_ENCODER,
    ),
    Recipe(
        # BAAI/bge-reranker-base / -large (514 positions), bge-reranker-v2-m3 (8194): positions
        # start after the padding index, so the usable length is positions - 2; no token types
        name="xlm-roberta-cross-encoder",
        model_types=("xlm-roberta", "roberta", "camembert"),
        position_offset=2,
        source=(
            "https://huggingface.co/BAAI/bge-reranker-v2-m3 (FlagReranker / CrossEncoder, "
            "sigmoid with normalize=True)"
        ),
    ),
    Recipe(
        # Alibaba-NLP/gte-reranker-modernbert-base, the Ettin rerankers: no token types
        name="modernbert-cross-encoder",
        model_types=("modernbert",),
        source="https://huggingface.co/Alibaba-NLP/gte-reranker-modernbert-base (CrossEncoder)",
    ),
    Recipe(
        # mixedbread-ai/mxbai-rerank-xsmall-v1 / base-v1 (DeBERTa-v3): no token types
        name="deberta-v2-cross-encoder",
        model_types=("deberta-v2", "deberta"),
        source="https://huggingface.co/mixedbread-ai/mxbai-rerank-xsmall-v1 (CrossEncoder)",
    ),
)
