"""``OnnxCrossEncoder``: a cross-encoder graph that scores (query, passage) pairs without torch.

The one runtime object under ``OnnxCrossEncoderReranker``, ``CrossEncoderReranker(backend="onnx"
| "openvino")`` and ``FlashRankReranker``'s batched path. It finds or makes the graph (a
pre-exported folder as it is, else a cached export), applies the batch-independence rule
(``batch_rule.plan_graph``: a dynamic int8 graph is rewritten per token, or run per pair), loads
the tokenizer and a runner, and turns a call's pairs into scores together with the call's
truncation flags.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

from rerank_kit import models
from rerank_kit._core import telemetry
from rerank_kit._core.errors import RerankError
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import WindowPlan, tokenizers_offsets
from rerank_kit._runtime.batch_rule import plan_graph, quantized_copy
from rerank_kit._runtime.batching import run_bucketed, run_fixed_shapes
from rerank_kit._runtime.cpu import cpu_has_bf16
from rerank_kit._runtime.export import export_cross_encoder, export_once
from rerank_kit._runtime.folders import (
    onnx_graphs,
    pick_graph,
    pre_exported_meta,
    refuse_generative,
    tokenizer_file,
)
from rerank_kit._runtime.hub import local_model_folder
from rerank_kit._runtime.options import (
    EXPORT_CROSS_ENCODER,
    RUN_ONNX,
    RuntimeOptions,
    check_positive,
    require,
)
from rerank_kit._runtime.paths import (
    FP32,
    INT8_MATMUL,
    META,
    TOKENIZER,
    cache_key,
    graph_key,
    is_complete,
    slug,
)
from rerank_kit._runtime.quantize import graph_is_quantized, quantize_into
from rerank_kit._runtime.sessions import check_graph_file, load_tokenizer, make_runner
from rerank_kit._runtime.templated import TemplateEncoder, warn_if_template_differs
from rerank_kit._runtime.vocab import UnknownTokens, tokenizers_unk_id
from rerank_kit.recipes import Recipe, effective_instruction, folder_facts, resolve_recipe

__all__ = ["PAIR_TRUNCATIONS", "OnnxCrossEncoder", "cross_encoder_folder"]

logger = logging.getLogger(__name__)

#: ``pair_truncation=`` values: ``None`` cuts a pair as ``CrossEncoder.predict`` does.
PAIR_TRUNCATIONS = (None, "longest_first", "only_second")


def cross_encoder_folder(model: str) -> Path:
    """The local folder to load for ``model``.

    A folder holding an ONNX graph as it is (no ``config.json`` or weights needed); the bundled
    model's name through ``rerank_kit.models.offline_cross_encoder``; else the Hub id or folder
    through the usual fail-fast resolution (downloading a Hub id that is not cached).
    """
    local = Path(model).expanduser() if isinstance(model, str) and model.strip() else None
    if local is not None and local.is_dir() and onnx_graphs(local):
        return local.resolve()
    bundled = models.offline_cross_encoder(model)
    if bundled is not None:
        return bundled
    return local_model_folder(model, kind="cross-encoder", prefix="cross-encoder")


class OnnxCrossEncoder:
    """A cross-encoder graph on ONNX Runtime or OpenVINO, ready to score pairs.

    One-label heads score the activation of their logit; two-label heads ([not relevant,
    relevant]) the probability of the relevant label (``id2label``, else the last). A decoder
    sequence-classification conversion reads each pair rendered through its recipe's prompt
    template (``rerank_kit.recipes``), with the instruction in use; only the document is cut.

    Args:
        model: Hub id or local folder (a transformers cross-encoder, or a pre-exported folder).
        max_length: Truncate pairs to this many tokens (default: the model's own limit).
        file_name: Which graph of a folder with several to load.
        pair_truncation: ``None`` (as ``CrossEncoder.predict``: ``"longest_first"``, which cuts
            the query only when it is longer than what is left of the passage),
            ``"longest_first"`` or ``"only_second"``: the tokenizers strategy for every pair.
        instruction: For a templated recipe that takes one: the instruction (``None``: the
            recipe's default); ``ValueError`` for a model that takes none.
        **options: ``RuntimeOptions``: ``quantize``, ``backend``, ``threads``, ``cache_dir``,
            ``batch_size``, ``max_batch_tokens``, ``openvino_precision``.

    Attributes:
        options: The ``RuntimeOptions`` (``batch_size`` and ``max_batch_tokens`` may be changed).
        model_path: The local source folder.
        onnx_path: The model's graph (its source file; ``plan.graph`` is the file loaded).
        exported: True if this construction exported or quantized (False on a cache hit).
        pre_exported: True if the folder's own graph is used.
        precision: What the graph computes with (``"fp32"``, ``"int8"``, ``"bf16"``, ``"f32"``).
        tokenizer: The ``tokenizers.Tokenizer`` (no padding; truncation set per call).
        meta: ``meta.json`` of the export, or the same keys read from a pre-exported folder.
        max_length: The token limit of a pair (settable, up to the model's own limit).
        plan: How the graph runs so that a pair's score depends on the pair alone
            (``batch_rule.GraphPlan``: the file loaded, which may be a cached rewrite of
            ``onnx_path``, and any per-pair run or bucket caps).
        rule: The tag recorded with the scores (``"int8-per-token/1"``, ``"per-pair/1"``,
            ``"int8-dequantized-fp32/1"``, ``"bf16-fixed-shape/1"``), or ``None`` when the graph
            runs as it is.
    """

    def __init__(
        self,
        model: str,
        *,
        max_length: int | None = None,
        file_name: str | None = None,
        pair_truncation: str | None = None,
        instruction: str | None = None,
        **options: Any,
    ) -> None:
        if max_length is not None:
            check_positive("max_length", max_length)
        if file_name is not None and (not isinstance(file_name, str) or not file_name.strip()):
            raise ValueError(f"file_name must be a non-empty string or None, got {file_name!r}")
        if pair_truncation not in PAIR_TRUNCATIONS:
            raise ValueError(f"pair_truncation must be one of {PAIR_TRUNCATIONS}")
        self.options = RuntimeOptions(**options)
        self.backend, self.quantize = self.options.backend, self.options.quantize
        self.pair_truncation = pair_truncation
        self.model_path = cross_encoder_folder(model)
        refuse_generative(self.model_path, model)
        #: The model's recipe (``None``: a plain cross-encoder; an unknown decoder is refused).
        self.recipe: Recipe | None = resolve_recipe(self.model_path, model)
        #: The instruction rendered into a templated recipe's prompt (``None``: takes none).
        self.instruction = effective_instruction(self.recipe, instruction, model)
        self.exported = False
        graph = pick_graph(self.model_path, file_name)
        self.pre_exported = graph is not None
        if graph is None:
            folder = self._export(self.model_path)
            self.onnx_path = folder / (INT8_MATMUL if self.quantize == "int8" else FP32)
            tokenizer_path = folder / TOKENIZER
            self.precision = self.quantize or "fp32"
        else:
            tokenizer_path = tokenizer_file(graph, self.model_path)
            self.onnx_path = self._pre_exported_graph(graph)
        if self.backend == "onnx":
            require(RUN_ONNX)
        self.tokenizer = load_tokenizer(tokenizer_path)
        self._unknown = UnknownTokens(str(model), tokenizers_unk_id(self.tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._pair_specials = self.tokenizer.num_special_tokens_to_add(True)
        self._template: TemplateEncoder | None = None
        if self.recipe is not None and self.recipe.templated:
            self._template = TemplateEncoder(self.tokenizer, self.recipe, self.instruction)
            template = folder_facts(self.model_path, model).chat_template
            warn_if_template_differs(model, template, self.recipe)
        opts = self.options
        precision = opts.openvino_precision
        if precision == "auto":
            precision = "bf16" if cpu_has_bf16() else "f32"
        #: How the graph runs so that a pair's score depends on the pair alone (``batch_rule``).
        self.plan = plan_graph(
            self.onnx_path,
            self.tokenizer,
            opts.cache_dir,
            backend=self.backend,
            precision=precision,
        )
        if self.plan.note:
            logger.info("%s", self.plan.note)
        self.rule = self.plan.rule
        self.runner = make_runner(self.plan.graph, opts.threads, opts.backend, precision)
        dequantized = self.plan.graph != self.onnx_path  # OpenVINO: a dynamic int8 graph's fp32
        if self.backend == "openvino" and (self.precision != "int8" or dequantized):
            self.precision = self.runner.inference_precision  # the dequantized graph's too
        if graph is None:
            self.meta: dict[str, Any] = json.loads((folder / META).read_text())
        else:
            self.meta = pre_exported_meta(
                graph, self.model_path, self.tokenizer, self.runner, self.recipe
            )
        limit = int(self.meta["max_length"])
        if self._template is not None and self.recipe is not None and self.recipe.max_length:
            limit = min(limit, self.recipe.max_length)  # the family's own limit (its card's)
        if max_length is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the model's limit of {limit} tokens")
        self.max_length = max_length or limit
        self.inputs: list[str] = list(self.meta["inputs"])
        self.pad_id = int(self.meta["pad_token_id"])
        self.num_labels = int(self.meta.get("num_labels", 1))
        #: Column of the relevant label in the graph's output (0 for a one-label head).
        self.label = int(self.meta.get("label", 0))
        logger.debug(
            "loaded %s (%s, %d threads, max_length %d)",
            self.onnx_path,
            self.precision,
            self.options.threads,
            self.max_length,
        )

    def _export(self, model_dir: Path) -> Path:
        """Cache folder holding the exported files for ``model_dir``: found, or made now."""
        folder = (
            self.options.cache_dir / f"{slug(model_dir.name) or 'model'}-{cache_key(model_dir)}"
        )
        if is_complete(folder):
            logger.debug("ONNX cache hit: %s", folder)
        else:
            require(EXPORT_CROSS_ENCODER)
            export_once(export_cross_encoder, model_dir, folder)
            self.exported = True
        if self.quantize == "int8" and not (folder / INT8_MATMUL).is_file():
            # MatMul only (no QAttention): a graph the batch-independence rule can rewrite.
            # An older cache's model.int8.onnx (QAttention) is left for older versions.
            logger.info("quantizing %s to int8 (once; cached in %s)", model_dir, folder)
            quantize_into(folder / FP32, folder / INT8_MATMUL, attention=False)
            self.exported = True
        return folder

    def _pre_exported_graph(self, graph: Path) -> Path:
        """The graph to run for a pre-exported ``graph``: itself, or its cached int8 copy."""
        check_graph_file(graph)
        if graph_is_quantized(graph):
            self.precision = "int8"
            if self.quantize == "int8":
                logger.info("%s is already quantized; quantize='int8' changes nothing", graph.name)
            return graph
        if self.quantize != "int8":
            self.precision = "fp32"
            return graph
        self.precision = "int8"
        name = slug(f"{self.model_path.name}-{graph.stem}")
        folder = self.options.cache_dir / f"{name}-{graph_key(graph)}"
        target = folder / INT8_MATMUL
        if not target.is_file():
            logger.info("quantizing %s to int8 (once; cached in %s)", graph, folder)
            quantized_copy(graph, target, self.backend)
            self.exported = True
        return target

    def bucket_limits(self) -> tuple[int, int | None]:
        """``(batch_size, max_batch_tokens)`` of a call: the options within the rule's caps."""
        opts, plan = self.options, self.plan
        if plan.per_pair:
            return 1, None
        size, tokens = opts.batch_size, opts.max_batch_tokens
        if plan.batch_size is not None:
            size = min(size, plan.batch_size)
        if plan.max_batch_tokens is not None:
            tokens = plan.max_batch_tokens if tokens is None else min(tokens, plan.max_batch_tokens)
        return size, tokens

    def _query_tokens(self, query: str) -> int:
        return _count_tokens(self.tokenizer, query)

    def window_plan(self, query: str) -> WindowPlan:
        """How long passages split into windows that fit beside the whole ``query``.

        For a templated recipe the prompt's own tokens (template, instruction, query) count
        against the limit too.
        """
        if self._template is not None:
            budget = self._template.window_budget(query, self.max_length)
        else:
            budget = self.max_length - self._query_tokens(query) - self._pair_specials
        return WindowPlan(budget, tokenizers_offsets(self.tokenizer))

    def _encode(self, query: str, texts: list[str]) -> tuple[list[Any], list[bool]]:
        """Each pair's tokens (cut to ``max_length``) and whether it was cut."""
        if self._template is not None:
            return self._template.encode(query, texts, self.max_length)
        # None: as CrossEncoder.predict (truncation=True), so every backend cuts a pair alike;
        # the query is cut only when it is longer than what is left of the passage
        strategy = self.pair_truncation or "longest_first"
        encodings = _encode_pairs(self.tokenizer, query, texts, self.max_length, strategy)
        self._unknown.check_encodings(encodings)
        return encodings, [bool(e.overflowing) for e in encodings]  # a cut pair keeps its tail

    def score(self, query: str, texts: list[str]) -> PairScores:
        """Each pair's score (the model's activation of its logit) and whether it was cut.

        A templated recipe (a decoder sequence-classification conversion) reads each pair
        rendered through its prompt template. A two-label head scores the probability of its
        relevant label (softmax; ``label``).

        Not thread-safe (the tokenizer is shared; its truncation is set for the call, then
        switched off again): callers hold a lock.
        """
        return self.score_groups([(query, texts)])[0]

    def score_groups(self, groups: list[tuple[str, list[str]]]) -> list[PairScores]:
        """``score`` for several ``(query, texts)`` groups, every pair run in the same buckets.

        A pair's score depends on the pair alone (``batch_rule``), so each group gets what
        ``score`` gives it alone; ``rerank-kit serve`` batches concurrent requests this way.
        Not thread-safe (as ``score``).
        """
        encodings: list[Any] = []
        truncated: list[bool] = []
        bounds = [0]
        for query, texts in groups:
            enc, cut = self._encode(query, texts)
            encodings.extend(enc)
            truncated.extend(cut)
            bounds.append(len(encodings))
        scores = self._run(encodings) if encodings else []
        return [
            PairScores(scores[a:b], truncated=truncated[a:b]) for a, b in itertools.pairwise(bounds)
        ]

    def _run(self, encodings: list[Any]) -> list[float]:
        """The activated scores of encoded pairs, in their order."""
        import numpy as np

        telemetry.record(tokens=sum(len(getattr(e, "ids", ())) for e in encodings))
        limits = self.bucket_limits()
        if self.plan.pad_step is not None:
            out = run_fixed_shapes(
                self.runner,
                encodings,
                self.inputs,
                self.pad_id,
                *limits,
                self.plan.pad_step,
                fixed_rows=self.plan.fixed_rows,
            )
        else:
            out = run_bucketed(self.runner, encodings, self.inputs, self.pad_id, *limits)
        activation = self.meta["activation"]
        if activation == "softmax":
            shifted = out - out.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            result: list[float] = (exp[:, self.label] / exp.sum(axis=1)).tolist()
            return result
        logits = out[:, self.label]
        if activation == "sigmoid":  # written with tanh: no overflow for large |logit|
            scores = 0.5 * (1.0 + np.tanh(0.5 * logits))
        elif activation == "tanh":
            scores = np.tanh(logits)
        else:
            scores = logits
        listed: list[float] = scores.tolist()
        return listed


def _encode_pairs(
    tokenizer: Any, query: str, texts: list[str], max_length: int, strategy: str
) -> list[Any]:
    """``(query, text)`` encodings cut by ``strategy``; the tokenizer is left without truncation.

    Nothing carries over to the next call (a query counted alone after a call that truncated
    pairs ``only_second`` would fail), and a tokenizers failure is a ``RerankError``.
    """
    try:
        tokenizer.enable_truncation(max_length, strategy=strategy)
        return list(tokenizer.encode_batch([(query, text) for text in texts]))
    except Exception as exc:  # tokenizers raises a bare Exception
        raise RerankError(
            f"tokenizing {len(texts)} pair(s) at max_length={max_length} with truncation "
            f"{strategy!r} failed: {exc}"
        ) from exc
    finally:
        tokenizer.no_truncation()


def _count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` alone, whole (truncation off: never the previous call's setting)."""
    tokenizer.no_truncation()
    try:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)
    except Exception as exc:  # tokenizers raises a bare Exception
        raise RerankError(f"tokenizing the query failed: {exc}") from exc
