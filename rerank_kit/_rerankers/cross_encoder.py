"""``CrossEncoderReranker``: a cross-encoder on torch (sentence-transformers) or ONNX Runtime.

The default backend follows the model: ONNX Runtime for the bundled model and for a folder that
already holds an ONNX graph (no torch needed), torch otherwise (see ``default_backend``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit import models
from rerank_kit._core import telemetry
from rerank_kit._core.assembly.budget import tokenizer_counts
from rerank_kit._core.checks import pair_overflow
from rerank_kit._core.errors import RerankError
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import WindowPlan, hf_offsets
from rerank_kit._rerankers.onnx_cross_encoder import onnx_reranker_name
from rerank_kit._runtime.decoder import DecoderScorer, hub_decoder_folder, torch_recipe
from rerank_kit._runtime.folders import onnx_graphs
from rerank_kit._runtime.hub import resolve_hf_model
from rerank_kit._runtime.options import TORCH_CROSS_ENCODER, require
from rerank_kit._runtime.precision import CpuPath, follow_cpu, torch_precision
from rerank_kit._runtime.templated import recipe_chat_template, warn_if_template_differs
from rerank_kit._runtime.torch_limits import cap_to_positions
from rerank_kit._runtime.vocab import UnknownTokens, check_hf_texts, hf_unk_id
from rerank_kit.recipes import (
    Recipe,
    effective_instruction,
    relevant_label,
    render_parts,
)

__all__ = ["BACKENDS", "CrossEncoderReranker", "default_backend"]

logger = logging.getLogger(__name__)

#: ``backend=`` values (``None`` is ``"auto"``).
BACKENDS = ("auto", "torch", "onnx", "openvino")


def default_backend(model: str, *, device: str = "cpu", trust_remote_code: bool = False) -> str:
    """The backend ``backend="auto"`` picks for ``model``: ``"onnx"`` or ``"torch"``.

    ONNX Runtime for the bundled model (``rerank_kit.models.is_bundled_cross_encoder``) and for
    a local folder that already holds an ONNX graph, so they run with ``onnxruntime`` and
    ``tokenizers`` alone; torch for everything else, and whenever ``device`` is not the CPU or
    ``trust_remote_code`` is set (both are torch-only).

    Example:
        >>> default_backend("cross-encoder/ms-marco-MiniLM-L-12-v2")
        'onnx'
        >>> default_backend("cross-encoder/ms-marco-MiniLM-L-6-v2")
        'torch'
    """
    if device != "cpu" or trust_remote_code:
        return "torch"
    if models.is_bundled_cross_encoder(model):
        return "onnx"
    local = Path(model).expanduser() if isinstance(model, str) and model.strip() else None
    if local is not None and local.is_dir() and onnx_graphs(local):
        return "onnx"
    return "torch"


class CrossEncoderReranker(Reranker):
    """Reranks with a cross-encoder (query and passage read together) on torch or ONNX Runtime.

    Scores are exactly ``CrossEncoder.predict`` (a sigmoid for one-label models), so the quality
    published for a model carries over. A two-label head ([not relevant, relevant]) scores the
    probability of its relevant label (softmax over the two logits; the label ``id2label`` names
    ``relevant``, ``LABEL_1``, ``yes``, ``positive`` or ``true``, else the last), on every
    backend. Each model is matched to its recipe (``rerank_kit.recipes``, docs "Model recipes"):
    a decoder sequence-classification conversion (e.g. Qwen3-Reranker "seq-cls") reads its
    prompt template on every backend, and a decoder no recipe matches is refused with a
    ``RerankError`` saying how to supply one (``rerank_kit.register_recipe``).

    The default backend follows the model: the bundled ``cross-encoder/ms-marco-MiniLM-L-12-v2``
    (``rerank_kit.models``) and a local folder that already holds an ONNX graph run on ONNX
    Runtime, with ``onnxruntime`` and ``tokenizers`` only; every other model runs on torch.

    Generative rerankers (causal LMs scored from their next-token logits) run on torch exactly
    as their model card's code scores them, driven by their recipe (``rerank_kit.recipes``):
    Qwen3-Reranker (``softmax([no, yes])[yes]`` on its chat prompt), mxbai-rerank-base/large-v2
    (``logit("1") - logit("0")``, raw) and bge-reranker-v2-gemma (``logit("Yes")``, raw), with
    or without a sentence-transformers config (see ``rerank_kit._runtime.decoder``). Their
    ``instruction`` (``None``: the recipe's default) is rendered into the prompt. A causal LM
    that no recipe matches is refused at construction, unless its folder carries a
    sentence-transformers ``LogitScore`` config (its authors declared the head and the chat
    template renders the prompt): that one runs through ``CrossEncoder`` as it declares. Register
    a recipe for a new family with ``rerank_kit.register_recipe``. ``generative`` tells which
    kind is loaded; truncation flags count the whole prompt, and long-document windows leave
    room for it. Models with code on the Hub need ``trust_remote_code=True``, passed
    explicitly; the ONNX backend refuses generative models.

    With no ``backend``, the bundled model (and ``precision="int8"`` of a folder holding an ONNX
    graph) runs the fastest batch-independent path for this CPU among the installed backends
    (``rerank_kit._runtime.cpu.fastest_path``: OpenVINO bf16 on AMX CPUs when ``openvino`` is
    installed, ONNX Runtime's per-token int8 elsewhere), named in one INFO log line.

    ``backend="onnx"`` runs the same model on ONNX Runtime instead of torch (exported once and
    cached; see :class:`~rerank_kit.OnnxCrossEncoderReranker`): the same scores to ~1e-6 in
    55-70 % of the time on CPU, and ``quantize="int8"`` about 3x faster than torch at a small cost
    in fidelity (docs/speed.md has the measured figures). ``backend="openvino"`` runs the same
    exported graph on OpenVINO, in bf16 on CPUs with AVX512_BF16 or AMX (fp32 elsewhere; pick with
    ``model_kwargs={"openvino_precision": "f32"}``).

    Setup:
        ``pip install "rerank-kit[cross-encoder]"`` for torch (sentence-transformers);
        ``"rerank-kit[onnx-runtime]"`` (onnxruntime and tokenizers) runs the bundled model
        (``"rerank-kit[bundled]"`` installs it) or any pre-exported ONNX graph;
        ``"rerank-kit[onnx]"`` adds torch and transformers to export other models once for
        ``backend="onnx"``; ``"rerank-kit[openvino]"`` for ``backend="openvino"``.

    Args:
        model: Hub id (e.g. ``"cross-encoder/ms-marco-MiniLM-L-6-v2"``) or local folder.
        device: Torch device, ``"cpu"`` by default.
        batch_size: Pairs per forward pass.
        max_length: Truncate pairs to this many tokens (default: the model's own limit).
        model_kwargs: Extra keyword arguments for ``CrossEncoder(...)``, or for the ONNX model
            with ``backend="onnx"`` or ``"openvino"`` (e.g. ``max_batch_tokens``,
            ``openvino_precision``).
        backend: ``None`` or ``"auto"`` (default: see ``default_backend``), ``"torch"``
            (sentence-transformers), ``"onnx"`` (ONNX Runtime, CPU) or ``"openvino"``
            (OpenVINO, CPU; the same exported graph).
        quantize: With ``backend="onnx"``: ``None`` for fp32 or ``"int8"`` (an alias of
            ``precision``).
        precision: What to compute in, one spelling for every backend (``quantize`` and
            ``model_kwargs``' ``openvino_precision`` are its older names; one that disagrees is
            a ``ValueError``): ``None`` (the backend's default), ``"fp32"``, ``"int8"`` (ONNX
            Runtime) or ``"bf16"`` (OpenVINO); torch takes ``None``/``"fp32"`` only.
        file_name: With ``backend="onnx"`` or ``"openvino"``: which ONNX graph of a
            pre-exported folder to load (e.g. ``"onnx/model_qint8_avx512.onnx"``), as in
            sentence-transformers.
        threads: With ``backend="onnx"`` or ``"openvino"``: intra-op threads (default: the
            physical cores this process may use).
        cache_dir: With ``backend="onnx"`` or ``"openvino"``: where exports are cached
            (default ``~/.cache/rerank-kit/onnx``).
        score_cache: Opt-in score cache: ``0`` (off, the default), the number of (query,
            passage) pairs to keep, a file name (a persistent cache, see ``ScoreCache``) or a
            ``ScoreCache`` shared with other rerankers. A pair seen
            before is not scored again; ``cache_info()`` gives the hit counts.
        trust_remote_code: Let ``CrossEncoder`` run modelling code shipped with the model (only
            for repositories you trust; ``backend="torch"`` only).
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).
        instruction: For instruction-aware rerankers (Qwen3-Reranker, mxbai-rerank v2,
            bge-reranker-v2-gemma and their sequence-classification conversions): the task
            instruction rendered into the model's prompt. ``None`` uses the model recipe's
            default (``rerank_kit.recipes``); giving one to a model whose recipe takes none (a
            plain cross-encoder) raises ``ValueError``.

    Attributes:
        cpu_path: The ``CpuPath`` chosen for this CPU when the backend followed it, else
            ``None``.
        instruction: The instruction in use (the recipe's default when none was given), or
            ``None`` for a model that takes none.
        recipe: The model's ``rerank_kit.Recipe`` (``None``: a plain cross-encoder no recipe
            names; it reads the tokenizer's own pair encoding).

    Example:
        >>> from rerank_kit import CrossEncoderReranker  # doctest: +SKIP
        >>> ce = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
        >>> ce.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={})]
        >>> bundled = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-12-v2")  # doctest: +SKIP
        >>> bundled.backend  # doctest: +SKIP
        'onnx'
        >>> fast = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="onnx", quantize="int8")  # doctest: +SKIP
        >>> qwen = CrossEncoderReranker("/models/Qwen3-Reranker-0.6B")  # doctest: +SKIP
        >>> qwen.generative  # doctest: +SKIP
        True
        >>> ov = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="openvino")  # doctest: +SKIP
    """

    keeps_score_cache = True

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        backend: str | None = None,
        quantize: str | None = None,
        file_name: str | None = None,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        score_cache: int | str | os.PathLike[str] | ScoreCache | None = 0,
        trust_remote_code: bool = False,
        long_documents: str = "truncate",
        instruction: str | None = None,
    ) -> None:
        super().__init__(score_cache=score_cache)
        self._onnx: Any = None
        self.recipe: Recipe | None = None
        self.instruction: str | None = None
        self._label: int | None = None  # a two-label head's relevant label (torch)
        self._template_mode = ""  # torch, seq-cls conversions: "chat" or "pairs"
        self._generative = False
        self._prompt_overhead: int | None = None
        self._decoder: DecoderScorer | None = None
        if backend is not None and backend not in BACKENDS:
            raise ValueError(
                f"backend must be 'auto', 'torch', 'onnx' or 'openvino', got {backend!r}"
            )
        if not isinstance(trust_remote_code, bool):
            raise TypeError(f"trust_remote_code must be True or False, got {trust_remote_code!r}")
        self.cpu_path: CpuPath | None = None
        if backend in (None, "auto"):
            backend = default_backend(model, device=device, trust_remote_code=trust_remote_code)
            if backend == "onnx":
                self.cpu_path = follow_cpu(model, precision, quantize, model_kwargs)
            if self.cpu_path is not None and self.cpu_path.backend != "onnx":
                # ONNX Runtime runs as it always did (the same names and score identities);
                # OpenVINO runs an int8 graph dequantized, at the path's precision
                backend, precision, quantize = self.cpu_path.backend, self.cpu_path.precision, None
        self.model_name = model
        self.batch_size = batch_size
        self.model: Any = None
        if backend in ("onnx", "openvino"):
            if device != "cpu":
                raise ValueError(f"backend={backend!r} runs on the CPU; got device={device!r}")
            if trust_remote_code:
                raise ValueError("trust_remote_code=True needs backend='torch'")
            options: dict[str, Any] = {
                "quantize": quantize,
                "precision": precision,
                "max_length": max_length,
                "file_name": file_name,
            }
            given = {"threads": threads, "cache_dir": cache_dir}
            options.update({k: v for k, v in given.items() if v is not None})
            options["instruction"] = instruction
            self._load_onnx(model, {**options, "backend": backend, **(model_kwargs or {})})
        else:
            torch_precision(precision, quantize)
            for label, value in (
                ("file_name", file_name),
                ("threads", threads),
                ("cache_dir", cache_dir),
            ):
                if value is not None:
                    raise ValueError(f"{label}={value!r} needs backend='onnx' or 'openvino'")
            self._load_torch(
                model, device, trust_remote_code, max_length, model_kwargs, instruction
            )
        self.set_long_documents(long_documents)

    def _load_onnx(self, model: str, options: dict[str, Any]) -> None:
        from rerank_kit._runtime.cross_encoder import OnnxCrossEncoder

        self._onnx = OnnxCrossEncoder(model, batch_size=self.batch_size, **options)
        self.recipe, self.instruction = self._onnx.recipe, self._onnx.instruction
        self.name = onnx_reranker_name(model, self._onnx.backend, self._onnx.quantize)
        self._score_rule = self._onnx.rule
        self.batch_independent = True  # the ONNX runtime's batch rule (serve batches requests)

    def _load_torch(
        self,
        model: str,
        device: str,
        trust_remote_code: bool,
        max_length: int | None,
        model_kwargs: dict[str, Any] | None,
        instruction: str | None = None,
    ) -> None:
        # resolve first: a model that is not there is a ModelNotAvailableError naming it (even
        # without sentence-transformers installed), in seconds, before torch is even imported
        path = resolve_hf_model(model, kind="cross-encoder", prefix="cross-encoder")
        if not Path(path).is_dir():  # a Hub id to download: a causal LM's recipe needs its files
            path = hub_decoder_folder(path) or path
        self.name = f"cross-encoder:{model}"
        kwargs = dict(model_kwargs or {})
        if kwargs.get("trust_remote_code", trust_remote_code) != trust_remote_code:
            raise ValueError(
                "trust_remote_code is given twice (argument and model_kwargs) differently"
            )
        kwargs["trust_remote_code"] = trust_remote_code
        # an unknown decoder is refused here, before anything loads (never scored with a guess)
        self.recipe = recipe = torch_recipe(path, model)
        self.instruction = effective_instruction(recipe, instruction, model)
        require(TORCH_CROSS_ENCODER)
        if recipe is not None and recipe.causal_lm:
            if "max_length" in kwargs:  # CrossEncoder(max_length=...) spelling
                max_length = kwargs.pop("max_length") if max_length is None else max_length
            self._decoder = DecoderScorer(
                path,
                recipe,
                model=model,
                instruction=self.instruction,
                device=device,
                batch_size=self.batch_size,
                max_length=max_length,
                model_kwargs=kwargs,
            )
            self.model = self._decoder
            self._generative = True
            if recipe.name == "mxbai-rerank-v2":  # older versions scored it with a guessed head
                self._score_rule = "recipe-mxbai-rerank-v2/1"  # so their cache entries never match
            logger.debug("loaded generative reranker %s (recipe %s)", model, recipe.name)
            return
        from sentence_transformers import CrossEncoder

        if max_length is not None:
            kwargs["max_length"] = max_length
        self.model = CrossEncoder(path, device=device, **kwargs)
        self._generative = any(type(m).__name__ == "LogitScore" for m in self.model)
        architectures = getattr(getattr(self.model, "config", None), "architectures", None) or []
        if not self._generative and any(str(a).endswith("ForCausalLM") for a in architectures):
            # sentence-transformers before 5.4 puts a new, random classification head on it
            raise RerankError(
                f"{model!r} is a generative (causal-LM) reranker, which this sentence-transformers "
                "cannot score; upgrade it (pip install -U sentence-transformers)"
            )
        cap_to_positions(self.model, model, max_length)
        self._unknown = UnknownTokens(model, hf_unk_id(getattr(self.model, "tokenizer", None)))
        num_labels = getattr(self.model, "num_labels", 1)
        if num_labels not in (1, 2):
            raise ValueError(
                f"{model!r} has {num_labels} output labels; a reranker needs a one-label "
                "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) or a two-label "
                "[not relevant, relevant] head"
            )
        if num_labels == 2:  # the probability of the relevant label: softmax over the two
            config = getattr(self.model, "config", None)
            config_dict = config.to_dict() if config is not None else {}
            self._label = relevant_label({**config_dict, "num_labels": 2}, self.recipe)
        if self.recipe is not None and self.recipe.kind == "seq-cls-template":
            self._template_mode = self._torch_template_mode(model)
        logger.debug("loaded cross-encoder %s from %s", model, path)

    def _torch_template_mode(self, model: str) -> str:
        """How torch feeds a seq-cls conversion its prompt: ``"chat"`` or ``"pairs"``.

        ``"chat"``: sentence-transformers renders each pair through a chat template, which is set
        to the recipe's (``recipe_chat_template``: the instruction is a system message), so torch
        reads what ONNX and OpenVINO read whatever template the folder ships (the published
        Qwen3-Reranker conversions keep Qwen3's plain chat template, which cannot carry a
        pair). ``"pairs"``: no chat template at all, so the recipe renders (prefix + query part,
        document part + suffix) as a text pair.
        """
        module = self.model[0]
        if "message" not in getattr(module, "modality_config", {}) or self.recipe is None:
            return "pairs"
        found = [getattr(module, "processor", None), getattr(self.model, "tokenizer", None)]
        holders: list[Any] = [h for h in found if h is not None and hasattr(h, "chat_template")]
        if not holders:
            return "pairs"
        warn_if_template_differs(model, holders[0].chat_template, self.recipe)
        for holder in holders:
            holder.chat_template = recipe_chat_template(self.recipe)
        return "chat"

    def _torch_predict(self, query: str, texts: list[str]) -> list[float]:
        """``CrossEncoder.predict`` of the pairs, with the recipe's prompt and label applied."""
        kwargs: dict[str, Any] = {"batch_size": self.batch_size, "show_progress_bar": False}
        pairs: list[tuple[str, str]] = [(query, text) for text in texts]
        if self._template_mode == "chat" and self.instruction is not None:
            kwargs["prompt"] = self.instruction
        elif self._template_mode == "pairs" and self.recipe is not None:
            parts = [render_parts(self.recipe, query, t, self.instruction) for t in texts]
            pairs = [(p.prefix + p.query + p.separator, p.document + p.suffix) for p in parts]
        if self._label is None:
            return [float(s) for s in self.model.predict(pairs, **kwargs)]
        import torch

        probs = self.model.predict(
            pairs, activation_fn=torch.nn.Identity(), apply_softmax=True, **kwargs
        )
        return [float(row[self._label]) for row in probs]

    @property
    def generative(self) -> bool:
        """True for a causal-LM reranker scored from its next-token logits.

        Scored by its recipe (``recipe``), or by the ``LogitScore`` head a folder declares.
        """
        return self._generative

    @property
    def backend(self) -> str:
        """``"torch"``, ``"onnx"`` or ``"openvino"``: what runs the model."""
        return "torch" if self._onnx is None else str(self._onnx.backend)

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        if self._onnx is not None:
            result: PairScores = self._onnx.score(query, texts)
            return result
        if self._decoder is not None:
            return self._decoder.score(query, texts)
        if not self._unknown.warned:
            check_hf_texts(self._unknown, self.model.tokenizer, query, texts)
        scores = self._torch_predict(query, texts)
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer = getattr(self.model, "tokenizer", None)
        if self._generative or self._template_mode == "chat":
            truncated = self._prompt_overflow(query, texts, limit)
        elif self._template_mode == "pairs" and self.recipe is not None:
            parts = [render_parts(self.recipe, query, t, self.instruction) for t in texts]
            head = parts[0].prefix + parts[0].query + parts[0].separator if parts else ""
            tails = [p.document + p.suffix for p in parts]
            truncated = pair_overflow(tokenizer, head, tails, limit)
            _count_tokens(tokenizer, head, tails, limit)
        else:
            truncated = pair_overflow(tokenizer, query, texts, limit)
            _count_tokens(tokenizer, query, texts, limit)
        return PairScores([float(s) for s in scores], truncated=truncated)

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens (see ``Reranker.token_counts``)."""
        holder = self._onnx if self._onnx is not None else self.model
        return tokenizer_counts(self, getattr(holder, "tokenizer", None), texts)

    def _score_groups(self, groups: list[tuple[str, list[str]]]) -> list[Any]:
        if self._onnx is not None:  # every pair in the same buckets (serve)
            return list(self._onnx.score_groups(groups))
        return list(super()._score_groups(groups))

    def _window_plan(self, query: str) -> WindowPlan | None:
        if self._onnx is not None:
            plan: WindowPlan = self._onnx.window_plan(query)
            return plan
        if self._decoder is not None:
            # the prompt's own tokens (prefix, instruction, query, separators, suffix) count
            budget = self._decoder.document_budget(query)
            return WindowPlan(budget, hf_offsets(self._decoder.tokenizer)) if budget > 0 else None
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer: Any = getattr(self.model, "tokenizer", None)
        if not limit or not getattr(tokenizer, "is_fast", False):
            return None
        if self._template_mode == "chat":  # the prompt's own tokens count too
            budget = limit - self._prompt_lengths([(query, "")])[0] - 2
        elif self._template_mode == "pairs" and self.recipe is not None:
            empty = render_parts(self.recipe, query, "", self.instruction)
            budget = limit - len(tokenizer("".join(empty), verbose=False)["input_ids"]) - 2
        else:
            query_tokens = len(
                tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"]
            )
            budget = limit - query_tokens - tokenizer.num_special_tokens_to_add(True)
        return WindowPlan(budget, hf_offsets(tokenizer))

    def _prompt_lengths(self, pairs: list[tuple[str, str]]) -> list[int]:
        """Token length of each pair as the model reads it (chat template applied), uncut."""
        out: list[int] = []
        module = self.model[0]
        for start in range(0, len(pairs), self.batch_size):
            features = module.preprocess(
                pairs[start : start + self.batch_size],
                processing_kwargs={"text": {"truncation": False, "verbose": False}},
            )
            mask = features.get("attention_mask")
            if mask is not None:
                out += [int(n) for n in mask.sum(dim=-1).tolist()]
            else:  # unpadded (flattened) batches: one id list per pair
                out += [len(ids) for ids in features["input_ids"]]
        return out

    def _prompt_overflow(self, query: str, texts: list[str], limit: int | None) -> list[bool]:
        """Which pairs exceed ``limit`` tokens once rendered into the model's prompt.

        Only pairs whose UTF-8 size plus the prompt's own tokens could pass the limit are
        tokenized (a token covers at least one byte; 8 tokens of slack for merges at the seams).
        """
        flags = [False] * len(texts)
        if not limit:
            return flags
        if self._prompt_overhead is None:
            self._prompt_overhead = self._prompt_lengths([("", "")])[0]
        qbytes = len(query.encode("utf-8"))
        budget = limit - self._prompt_overhead - 8
        suspects = [i for i, t in enumerate(texts) if qbytes + len(t.encode("utf-8")) > budget]
        if suspects:
            lengths = self._prompt_lengths([(query, texts[i]) for i in suspects])
            for i, n in zip(suspects, lengths, strict=True):
                flags[i] = n > limit
        return flags


def _count_tokens(tokenizer: Any, query: str, texts: list[str], limit: int | None) -> None:
    """Tokens the torch model read for the pairs (cut at ``limit``), for ``Usage.tokens``."""
    if not telemetry.counting() or not getattr(tokenizer, "is_fast", False):
        return
    ids = tokenizer(
        [query] * len(texts), texts, truncation=bool(limit), max_length=limit, verbose=False
    )["input_ids"]
    telemetry.record(tokens=sum(len(row) for row in ids))
