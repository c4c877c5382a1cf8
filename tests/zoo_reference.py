"""Independent references: each family's model-card recipe, in plain transformers and torch.

Nothing here imports rerank-kit. Every pair is run alone (batch of one, no padding), so the
reference cannot depend on its neighbours. The recipes, as their sources give them:

- ``encoder`` (sentence-transformers ``CrossEncoder.predict``, the cross-encoders' cards): the
  tokenizer's pair encoding, ``truncation=True`` (longest first) at the model's limit, which is
  the tokenizer's ``model_max_length`` capped by the position count less RoBERTa's offset of 2
  (``max_position_embeddings - pad_token_id - 1`` for XLM-R); score = sigmoid(the one logit).
  A two-label head ([not relevant, relevant], e.g.
  amberoad/bert-multilingual-passage-reranking-msmarco, trained as dl4marco-bert, which ranks by
  the relevant label's probability; its card gives no formula) scores softmax(logits)[1], the
  rule issue 29 sets (the label named relevant in ``id2label``, else the last).
- ``qwen3`` (Qwen/Qwen3-Reranker-0.6B model card, "Transformers Usage"): prefix tokens + the body
  ``"<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}"`` tokenized as one string
  (``truncation="longest_first"`` at 8192 - prefix - suffix) + suffix tokens; score =
  softmax over the last position's [no, yes] logits, yes. The sequence-classification conversion
  reads the same prompt; its one logit is lm_head[yes] - lm_head[no], so score = sigmoid(logit).
- ``mxbai-v2`` (mixedbread-ai/mxbai-rerank ``mxbai_rerank_v2.py``, ``MxbaiRerankV2``): chat
  prefix + tokens("[instruction: {i}\\n]query: {q}") (cut at 3/4 of max_length) + tokens("\\n") +
  tokens("document: {d}") (cut to fit) + tokens("\\n") + tokens(task prompt) + chat suffix;
  score = logit("1") - logit("0") at the last position (raw, as ``predict`` returns).
- ``bge-gemma`` (FlagEmbedding ``BaseLLMReranker``, bge-reranker-v2-gemma card): [bos] +
  tokens("A: " + query) (cut at 384) + tokens("\\n") + tokens("B: " + passage) (cut at 512) +
  tokens("\\n") + tokens(prompt); score = logit("Yes") at the last position (raw,
  ``normalize=False`` is the default).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["QWEN3_INSTRUCTION", "Reference"]

QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n<|im_start|>user\n"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)
GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)

#: Big enough never to cut (``untruncated`` references).
NO_LIMIT = 10**9


class Reference:
    """The model card's score of (query, passage) pairs for one zoo folder.

    Args:
        folder: The model folder.
        family: ``"encoder"``, ``"qwen3"``, ``"mxbai-v2"`` or ``"bge-gemma"``.
        kind: ``"encoder"``, ``"causal"`` or ``"seq-cls-decoder"``.
    """

    def __init__(self, folder: Path, family: str, kind: str) -> None:
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSequenceClassification,
            AutoTokenizer,
        )

        self.family, self.kind = family, kind
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.config = AutoConfig.from_pretrained(folder)
        if kind == "causal":
            self.model = AutoModelForCausalLM.from_pretrained(folder).eval()
        else:
            self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()

    # -- limits -----------------------------------------------------------------------------------

    def encoder_limit(self) -> int:
        """The pair limit ``CrossEncoder`` should use: model_max_length within the positions."""
        positions = int(self.config.max_position_embeddings)
        if self.config.model_type in ("xlm-roberta", "roberta"):
            positions -= int(self.config.pad_token_id) + 1
        given = int(getattr(self.tokenizer, "model_max_length", 0) or 0)
        return positions if given <= 0 or given > 10**8 else min(given, positions)

    # -- prompts ----------------------------------------------------------------------------------

    def _ids(self, text: str, limit: int | None = None) -> list[int]:
        if limit is None:
            out: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return out
        cut: list[int] = self.tokenizer(
            text, add_special_tokens=False, truncation=True, max_length=limit
        )["input_ids"]
        return cut

    def input_ids(
        self,
        query: str,
        text: str,
        *,
        instruction: str | None = None,
        max_length: int | None = None,
    ) -> dict[str, list[int]]:
        """The token ids (and token types for encoders) the recipe feeds the model."""
        if self.family == "encoder":
            limit = max_length or self.encoder_limit()
            enc = self.tokenizer(query, text, truncation=True, max_length=limit)
            return {k: list(v) for k, v in enc.items() if k in ("input_ids", "token_type_ids")}
        if self.family == "qwen3":
            prefix, suffix = self._ids(QWEN3_PREFIX), self._ids(QWEN3_SUFFIX)
            body = (
                f"<Instruct>: {instruction or QWEN3_INSTRUCTION}\n<Query>: {query}\n"
                f"<Document>: {text}"
            )
            limit = (max_length or 8192) - len(prefix) - len(suffix)
            return {"input_ids": prefix + self._ids(body, limit) + suffix}
        if self.family == "mxbai-v2":
            return {"input_ids": self._mxbai(query, text, instruction, max_length or 8192)}
        if self.family == "bge-gemma":
            return {"input_ids": self._gemma(query, text, instruction, max_length or 512)}
        raise ValueError(f"no recipe for family {self.family!r}")

    def _mxbai(self, query: str, text: str, instruction: str | None, max_length: int) -> list[int]:
        sep, task = self._ids("\n"), self._ids(MXBAI_TASK)
        prefix, suffix = self._ids(MXBAI_PREFIX), self._ids(MXBAI_SUFFIX)
        predefined = len(prefix) + len(task) + len(suffix) + len(sep)
        model_max = int(self.tokenizer.model_max_length)
        if max_length + predefined > model_max:
            max_length = model_max - predefined
        query_prompt = f"query: {query}"
        if instruction:
            query_prompt = f"instruction: {instruction}\n{query_prompt}"
        q = self._ids(query_prompt, max_length * 3 // 4)
        doc_max = min(model_max - len(q) - predefined, max_length)
        d = self._ids(f"document: {text}", doc_max)
        body = (q + sep + d)[: max(max_length, len(q))]  # prepare_for_model, only_second
        return prefix + body + sep + task + suffix

    def _gemma(self, query: str, text: str, instruction: str | None, max_length: int) -> list[int]:
        sep = self._ids("\n")
        prompt = self._ids(instruction or GEMMA_PROMPT)
        q = self._ids(f"A: {query}", max_length * 3 // 4)
        p = self._ids(f"B: {text}", max_length)
        bos, pad = self.tokenizer.bos_token_id, self.tokenizer.pad_token_id
        if bos is not None and bos != pad:
            q = [bos, *q]
        encode_max = max_length + len(sep) + len(prompt)
        body = (q + sep + p)[: max(encode_max, len(q))]  # prepare_for_model, only_second
        return body + sep + prompt

    # -- scores -----------------------------------------------------------------------------------

    def score(
        self,
        query: str,
        text: str,
        *,
        instruction: str | None = None,
        max_length: int | None = None,
    ) -> float:
        """The recipe's score of one pair (run alone)."""
        torch = self.torch
        feeds = self.input_ids(query, text, instruction=instruction, max_length=max_length)
        tensors = {k: torch.tensor([v]) for k, v in feeds.items()}
        tensors["attention_mask"] = torch.ones_like(tensors["input_ids"])
        with torch.no_grad():
            logits = self.model(**tensors).logits.double()
        if self.kind != "causal" and logits.shape[-1] == 2:  # [not relevant, relevant]: softmax
            return float(torch.softmax(logits[0], dim=0)[1])
        if self.kind != "causal":  # one logit: sigmoid (CrossEncoder; the seq-cls conversion)
            return 1.0 / (1.0 + math.exp(-float(logits[0, 0])))
        last = logits[0, -1]
        token = self.tokenizer.convert_tokens_to_ids
        if self.family == "qwen3":
            pair = torch.stack([last[token("no")], last[token("yes")]])
            return float(torch.softmax(pair, dim=0)[1])
        if self.family == "mxbai-v2":
            one, zero = self._ids("1")[0], self._ids("0")[0]
            return float(last[one] - last[zero])
        if self.family == "bge-gemma":
            return float(last[self._ids("Yes")[0]])
        raise ValueError(f"no recipe for family {self.family!r}")

    def scores(self, query: str, texts: list[str], **options: Any) -> list[float]:
        """``score`` of each text."""
        return [self.score(query, t, **options) for t in texts]

    def cut(self, query: str, text: str, **options: Any) -> bool:
        """Whether the recipe cuts this pair (its ids differ from the uncut ones)."""
        kept = self.input_ids(query, text, **options)["input_ids"]
        whole = self.input_ids(query, text, **{**options, "max_length": NO_LIMIT})["input_ids"]
        return bool(kept != whole)

    def length(self, query: str, text: str, **options: Any) -> int:
        """Tokens the recipe feeds for this pair (after its own truncation)."""
        return len(self.input_ids(query, text, **options)["input_ids"])
