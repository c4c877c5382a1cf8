r"""Causal-LM (generative) rerankers on torch, scored exactly as each family's own code does.

A generative reranker is a causal language model that reads a prompt built from the query and
the passage and answers with a token: the score comes from the next-token logits at the last
position. How the prompt is built, cut and read is the model family's, described by its
:class:`~rerank_kit.recipes.Recipe` (``kind="yes-no"``); nothing here guesses. The families
built in and the sources followed line by line:

- Qwen3-Reranker (https://huggingface.co/Qwen/Qwen3-Reranker-0.6B, "Transformers Usage"):
  ``prefix_tokens + tokenizer(body, max_length=max_length - len(prefix) - len(suffix),
  truncation=...) + suffix_tokens`` where ``body = "<Instruct>: {instruction}\n<Query>:
  {query}\n<Document>: {doc}"`` is tokenized as one string and cut at its end; left padding;
  score ``softmax([logit(no), logit(yes)])[yes]`` at the last position.
- mxbai-rerank-base/large-v2 (github.com/mixedbread-ai/mxbai-rerank, ``mxbai_rerank_v2.py``,
  ``MxbaiRerankV2.prepare_inputs`` / ``forward``): the query part (``"instruction: ...\n"``
  + ``"query: {query}"``) cut to ``max_length * 3 // 4`` tokens, the document part
  (``"document: {document}"``) cut so that query + sep + document fit ``max_length``, then
  ``prefix + ... + sep + task prompt + chat suffix``, every piece tokenized apart; score
  ``logit("1") - logit("0")`` (raw).
- bge-reranker-v2-gemma (github.com/FlagOpen/FlagEmbedding,
  ``FlagEmbedding/inference/reranker/decoder_only/base.py``, ``BaseLLMReranker
  .compute_score_single_gpu``): ``"A: " + query`` cut to ``max_length * 3 // 4`` tokens,
  ``"B: " + passage`` cut to ``max_length``, ``prepare_for_model([bos] + query, sep +
  passage, truncation="only_second", max_length=max_length + len(sep) + len(prompt))`` then
  ``+ sep + prompt``; score ``logit("Yes")`` at the last position (raw, ``normalize=False``).
  A recipe selects this rule with ``extra={"truncation": "flagembedding"}``.

``max_length`` here is what rerank-kit means everywhere: the most tokens the model reads for one
pair, the whole prompt included. Each family's own ``max_length`` argument (which leaves out
the template tokens for mxbai and FlagEmbedding) is derived from it, so a pair is cut exactly
as the family's code cuts it when given that derived value; with no ``max_length`` the
recipe's ``max_length`` is the family's own default (8192 for Qwen3-Reranker, counted on the
whole prompt; 8192 for mxbai-v2 and 512 for FlagEmbedding, counted without the template),
never more than the model's positions.

Batches are left-padded with position ids counted from each pair's first real token, so a
pair's score does not depend on what else is in its batch (measured on the tiny test models,
alone against in a batch of 8: 6e-8 on Qwen3 probabilities, 8.3e-7 on mxbai and bge raw
logits; the tests hold it to 1e-5); only the last position's logits are computed
(``logits_to_keep=1``), in fp32 by default.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerank_kit._core import telemetry
from rerank_kit._core.errors import RerankError
from rerank_kit._core.types import PairScores
from rerank_kit.recipes import (
    Recipe,
    folder_facts,
    match_recipe,
    render_parts,
    resolve_recipe,
    unknown_decoder_message,
)

__all__ = ["DecoderScorer", "hub_decoder_folder", "model_limit", "torch_recipe"]

logger = logging.getLogger(__name__)

#: Keys of ``model_kwargs`` the generative path understands (as ``CrossEncoder`` names them).
_KWARGS = frozenset({"trust_remote_code", "model_kwargs", "tokenizer_kwargs", "revision"})

#: A tokenizer's ``model_max_length`` above this is transformers' "no limit" placeholder.
_NO_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class _Encoded:
    """One pair's token ids as the model reads them, and whether anything was cut."""

    ids: list[int]
    truncated: bool


def model_limit(config: Any, tokenizer: Any) -> int | None:
    """The most tokens the model itself takes: its positions or its tokenizer's limit, if less."""
    found = [
        int(value)
        for value in (
            getattr(config, "max_position_embeddings", None),
            getattr(tokenizer, "model_max_length", None),
        )
        if isinstance(value, int) and 0 < value < _NO_LIMIT
    ]
    return min(found) if found else None


def torch_recipe(path: str, model: str) -> Recipe | None:
    """The recipe the torch backend scores the folder at ``path`` with, or ``None``.

    A model that is not a causal LM (``config.json`` architectures) is resolved by
    ``rerank_kit.recipes.resolve_recipe``. A causal LM gets its ``"yes-no"`` recipe; without
    one, a folder carrying a sentence-transformers ``LogitScore`` config gets ``None``: its
    authors declared the answer tokens and its chat template renders the prompt, so
    sentence-transformers reads it as declared. A causal LM with neither is refused with a
    ``RerankError`` naming the model, what is missing and how to supply it; it is never
    scored with a guessed head.

    Example:
        >>> torch_recipe("/no/such/folder", "x") is None
        True
    """
    facts = folder_facts(path, model)
    if facts.head != "causal-lm":
        return resolve_recipe(path, model)
    recipe = match_recipe(path, model)
    if recipe is not None and recipe.causal_lm:
        return recipe
    if "LogitScore" in facts.st_modules:
        logger.info(
            "%s: no reranker recipe matches; its sentence-transformers LogitScore config is used",
            model,
        )
        return None
    raise RerankError(unknown_decoder_message(facts, model))


#: Files a causal-LM reranker needs from the Hub (weights, configs, tokenizer, templates).
_HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"]


def hub_decoder_folder(repo_id: str) -> str | None:
    """A local copy of a causal-LM reranker given as a Hub id that is not cached yet.

    Only ``config.json`` is fetched first; a model that is not a causal LM gives ``None`` (it
    is left to sentence-transformers, which downloads what it needs), a causal LM is fetched so
    that its recipe can be matched from its files. Any Hub error gives ``None`` as well.
    """
    import json
    from pathlib import Path

    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text("utf-8"))
        architectures = config.get("architectures") or [] if isinstance(config, dict) else []
        if not any(str(a).endswith("ForCausalLM") for a in architectures):
            return None
        return str(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except Exception as exc:  # the Hub, the network or the file: sentence-transformers decides
        logger.debug("%s: no causal-LM folder from the Hub (%s)", repo_id, exc)
        return None


def _cut(ids: list[int], size: int, side: str) -> list[int]:
    """``ids`` cut to ``size`` tokens from ``side`` ("right" keeps the start)."""
    size = max(0, size)
    if len(ids) <= size:
        return ids
    return ids[:size] if side == "right" else ids[len(ids) - size :]


class DecoderScorer:
    """A causal LM scored by its recipe (``kind="yes-no"``): prompt, cut, yes/no logits.

    Args:
        path: Local folder (or Hub id) of the model.
        recipe: Its recipe (``rerank_kit.recipes``), ``kind="yes-no"``.
        model: The name the user gave (for messages).
        instruction: The effective instruction (``None`` for a recipe that takes none).
        device: Torch device.
        batch_size: Pairs per forward pass.
        max_length: Most tokens per pair, prompt included (default: the recipe's, capped by
            the model's positions).
        model_kwargs: ``trust_remote_code``, ``model_kwargs`` (for ``from_pretrained``, e.g.
            ``{"dtype": torch.bfloat16}``; fp32 by default), ``tokenizer_kwargs``,
            ``revision``.

    Example:
        >>> from rerank_kit.recipes import recipes  # doctest: +SKIP
        >>> qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker")  # doctest: +SKIP
        >>> scorer = DecoderScorer("/models/Qwen3-Reranker-0.6B", qwen, model="qwen")  # doctest: +SKIP
        >>> scorer.score("capital of France", ["Paris is the capital."]).scores  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str,
        recipe: Recipe,
        *,
        model: str,
        instruction: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not recipe.causal_lm or not recipe.yes_token:
            raise ValueError(f"recipe {recipe.name!r} is not a causal-LM (yes-no) recipe")
        kwargs = dict(model_kwargs or {})
        unknown = sorted(set(kwargs) - _KWARGS)
        if unknown:
            raise ValueError(
                f"model_kwargs {unknown} are not understood for the generative reranker {model!r} "
                f"(recipe {recipe.name!r}); accepted: {sorted(_KWARGS)}"
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.recipe = recipe
        self.instruction = instruction
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.trust_remote_code = bool(kwargs.get("trust_remote_code", False))
        self.num_labels = 1
        common: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if kwargs.get("revision") is not None:
            common["revision"] = kwargs["revision"]
        tok_kwargs = {**common, **dict(kwargs.get("tokenizer_kwargs") or {})}
        self.tokenizer = AutoTokenizer.from_pretrained(path, **tok_kwargs)
        lm_kwargs: dict[str, Any] = {"dtype": torch.float32, **common}
        lm_kwargs.update(dict(kwargs.get("model_kwargs") or {}))
        if "torch_dtype" in lm_kwargs:  # the older spelling, as CrossEncoder users pass it
            lm_kwargs["dtype"] = lm_kwargs.pop("torch_dtype")
        loaded: Any = AutoModelForCausalLM.from_pretrained(path, **lm_kwargs)
        self.model = loaded.to(device).eval()
        self.config = self.model.config
        self._torch = torch
        # only the last position's logits are needed (modelling code shipped with a model may
        # not take the argument: then every position's are computed and the last one read)
        self._keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._yes = self._token_id(recipe.yes_token, "yes_token")
        self._no = self._token_id(recipe.no_token, "no_token") if recipe.no_token else None
        self._flag = recipe.extra.get("truncation") == "flagembedding"
        self._pad = self._pad_id()
        self._fixed()
        self.max_seq_length = self._limit(max_length)
        self._inner = self._inner_length(self.max_seq_length)
        if self._inner < 1:
            raise ValueError(
                f"max_length={self.max_seq_length} leaves no room for the query and passage "
                f"after the {recipe.name!r} prompt's own {self.max_seq_length - self._inner} tokens"
            )

    # -- set-up --------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        out: list[int] = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return out

    def _token_id(self, token: str, label: str) -> int:
        """The id of the recipe's answer token (one token, as the family's code reads it)."""
        ids = self._ids(token)
        if len(ids) == 1:
            return int(ids[0])
        vocab = self.tokenizer.get_vocab()
        if token in vocab:
            return int(vocab[token])
        raise RerankError(
            f"{self.model_name!r}: the {label} {token!r} of recipe {self.recipe.name!r} is not "
            f"one token of this model's tokenizer (it encodes to {ids}); the recipe does not fit "
            "this model: register one with its answer tokens (rerank_kit.register_recipe)"
        )

    def _pad_id(self) -> int:
        for name in ("pad_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if isinstance(value, int):
                return value
        return 0

    def _fixed(self) -> None:
        """Token ids of the prompt pieces that do not depend on the query or the passage."""
        parts = render_parts(self.recipe, "", "", self.instruction)
        self._prefix = self._ids(parts.prefix)
        self._sep = self._ids(parts.separator)
        if (
            self.recipe.split_tokenization
            and parts.separator
            and parts.suffix.startswith(parts.separator)
        ):
            # mxbai-rerank and FlagEmbedding append sep_inputs, then the prompt's own ids
            self._suffix = self._sep + self._ids(parts.suffix[len(parts.separator) :])
        else:
            self._suffix = self._ids(parts.suffix)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        self._bos = [bos] if self.recipe.add_bos and bos is not None and bos != self._pad else []
        self._doc_empty = len(self._ids(parts.document))

    def _overhead(self) -> int:
        """Tokens the family's ``max_length`` leaves out (see the module docstring)."""
        if not self.recipe.split_tokenization:  # Qwen3: the card counts them in
            return len(self._bos) + len(self._prefix) + len(self._suffix)
        if self._flag:
            # FlagEmbedding caps [bos]+query+sep+passage at max_length + len(sep) + len(prompt)
            # (= the suffix), then appends the suffix: at most max_length + 2 * suffix tokens
            return len(self._prefix) + 2 * len(self._suffix)
        return len(self._prefix) + len(self._suffix)  # mxbai: "predefined_length"

    def _limit(self, max_length: int | None) -> int:
        """The most tokens per pair, prompt included."""
        ceiling = model_limit(self.config, self.tokenizer)
        if max_length is not None:
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
                raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
            if ceiling is not None and max_length > ceiling:
                raise ValueError(
                    f"max_length={max_length} is more than {self.model_name!r} takes ({ceiling} "
                    "positions)"
                )
            return max_length
        own = self.recipe.max_length
        if own is None:
            if ceiling is None:
                raise ValueError(f"{self.model_name!r} states no length limit: pass max_length")
            return ceiling
        if self.recipe.split_tokenization:  # the family's max_length leaves the template out
            own += self._overhead()
        return min(own, ceiling) if ceiling is not None else own

    def _inner_length(self, limit: int) -> int:
        """The family's own ``max_length`` argument for a prompt of at most ``limit`` tokens."""
        return limit - self._overhead()

    # -- encoding ------------------------------------------------------------------------

    def _query_ids(self, query_part: str) -> tuple[list[int], bool]:
        """The query part, cut to 3/4 of the family's max_length (split families)."""
        ids = self._ids(query_part)
        cap = self._inner * 3 // 4
        return _cut(ids, cap, "right"), len(ids) > cap

    def _pair_room(self, query_ids: list[int]) -> int:
        """Tokens left for ``sep + document part`` beside ``[bos] + query_ids``."""
        if self._flag:
            return self._inner + len(self._suffix) - len(self._bos) - len(query_ids)
        return self._inner - len(self._bos) - len(query_ids)

    def encode(self, query: str, texts: Sequence[str]) -> list[_Encoded]:
        """Each pair's input ids as the family's code builds them, and whether it was cut."""
        rendered = [render_parts(self.recipe, query, t, self.instruction) for t in texts]
        side = self.recipe.truncation_side
        out: list[_Encoded] = []
        if not self.recipe.split_tokenization:
            bodies = [p.query + p.separator + p.document for p in rendered]
            rows = self.tokenizer(bodies, add_special_tokens=False, verbose=False)["input_ids"]
            for ids in rows:
                body = _cut(list(ids), self._inner, side)
                row = self._bos + self._prefix + body + self._suffix
                out.append(_Encoded(row, len(body) < len(ids)))
            return out
        query_ids, query_cut = self._query_ids(rendered[0].query)
        room = self._pair_room(query_ids)
        docs = self.tokenizer(
            [p.document for p in rendered], add_special_tokens=False, verbose=False
        )["input_ids"]
        for ids in docs:
            doc = list(ids)
            first = _cut(doc, self._inner, side) if self._flag else doc  # FlagEmbedding pre-cut
            second = _cut(self._sep + first, room, "right")
            cut = query_cut or len(second) < len(self._sep) + len(doc)
            ids_out = self._bos + self._prefix + query_ids + second + self._suffix
            out.append(_Encoded(ids_out, cut))
        return out

    def document_budget(self, query: str) -> int:
        """Passage tokens that fit beside ``query`` uncut (for long-document windows).

        The prompt's own tokens (prefix, instruction, query, separators, suffix) are taken out.
        """
        parts = render_parts(self.recipe, query, "", self.instruction)
        if not self.recipe.split_tokenization:
            body = self._ids(parts.query + parts.separator + parts.document)
            return self._inner - len(body)
        query_ids, _ = self._query_ids(parts.query)
        room = self._pair_room(query_ids) - len(self._sep)
        if self._flag:
            room = min(room, self._inner)
        return room - self._doc_empty

    # -- scoring -------------------------------------------------------------------------

    def _forward(self, rows: list[list[int]]) -> Any:
        """Last-position logits of [yes, no] for each row (left-padded, own positions)."""
        torch = self._torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        # positions count from each row's first real token: padding never shifts a pair
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        wanted = [self._yes] + ([self._no] if self._no is not None else [])
        with torch.inference_mode():
            extra = {"logits_to_keep": 1} if self._keep else {}
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=False,
                **extra,
            )
            return out.logits[:, -1, wanted].float().cpu()

    def _activate(self, logits: Any) -> list[float]:
        torch = self._torch
        yes = logits[:, 0]
        activation = self.recipe.activation
        if activation == "yes-logit":
            values = yes
        elif activation == "softmax-yes-no":  # the Qwen3 card: log_softmax([no, yes])[yes].exp()
            pair = torch.stack([logits[:, 1], yes], dim=1)
            values = torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp()
        elif activation == "yes-minus-no":
            values = yes - logits[:, 1]
        elif activation == "sigmoid-yes-minus-no":
            values = torch.sigmoid(yes - logits[:, 1])
        else:
            raise RerankError(
                f"recipe {self.recipe.name!r}: activation {activation!r} does not apply to a "
                "causal LM's yes/no logits"
            )
        return [float(v) for v in values.tolist()]

    def score(self, query: str, texts: Sequence[str]) -> PairScores:
        """Each text's score against ``query`` and whether its pair was cut."""
        encoded = self.encode(query, texts)
        telemetry.record(tokens=sum(len(e.ids) for e in encoded))  # Usage.tokens
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
        scores = [0.0] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            values = self._activate(self._forward([encoded[i].ids for i in chunk]))
            for i, value in zip(chunk, values, strict=True):
                scores[i] = value
        return PairScores(scores, truncated=[e.truncated for e in encoded])
