"""``OnnxSentenceEncoder``: bi-encoder embeddings on ONNX Runtime or OpenVINO, without torch.

The first construction for a sentence-transformers model exports its transformer together with
its pooling (mean, CLS or max, as the model's Pooling module says) and an L2 normalization into
one ONNX graph (``export.export_sentence_encoder``), optionally quantizes the weights to int8,
and caches everything next to the cross-encoder exports. Later constructions need only
``onnxruntime`` (or ``openvino``) and ``tokenizers``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core import telemetry
from rerank_kit._core.windows import WindowPlan, tokenizers_offsets
from rerank_kit._runtime import paths
from rerank_kit._runtime.batching import run_bucketed
from rerank_kit._runtime.export import export_once, export_sentence_encoder
from rerank_kit._runtime.options import EXPORT_SENTENCE_ENCODER, RUN_ONNX, RuntimeOptions, require
from rerank_kit._runtime.quantize import quantize_into
from rerank_kit._runtime.sessions import make_runner

__all__ = ["OnnxSentenceEncoder"]

logger = logging.getLogger(__name__)


class OnnxSentenceEncoder:
    """Unit-length sentence embeddings of a sentence-transformers model, without torch at run time.

    Used by ``BiEncoderReranker(backend="onnx" | "openvino")``; exported once per model (needs
    torch, sentence-transformers and onnx then) and cached. Texts are tokenized once, sorted by
    length and run in token-budgeted batches of neighbours, like the cross-encoder backend.

    Args:
        model_dir: Local sentence-transformers folder.
        **options: ``RuntimeOptions``: ``quantize``, ``backend``, ``threads``, ``cache_dir``,
            ``batch_size``, ``max_batch_tokens``, ``openvino_precision``.

    Attributes:
        options: The ``RuntimeOptions`` in use.
        exported: True if this construction exported or quantized (False on a cache hit).
        max_seq_length: Tokens of a text the model reads (longer texts are cut).
        precision: What the graph computes with.

    Example:
        >>> enc = OnnxSentenceEncoder(Path("/models/all-MiniLM-L6-v2"))  # doctest: +SKIP
        >>> enc.encode(["a quick automobile"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_dir: Path, **options: Any) -> None:
        self.options = opts = RuntimeOptions(**options)
        self.model_dir = Path(model_dir)
        self.quantize, self.backend = opts.quantize, opts.backend
        self.exported = False
        folder = self._prepare()
        if opts.backend == "onnx":
            require(RUN_ONNX)
        from tokenizers import Tokenizer

        self.onnx_path = folder / (paths.INT8 if opts.quantize == "int8" else paths.FP32)
        self._meta: dict[str, Any] = json.loads((folder / paths.META).read_text())
        self.max_seq_length = int(self._meta["max_length"])
        self._tokenizer = Tokenizer.from_file(str(folder / paths.TOKENIZER))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_seq_length)
        self._counter = Tokenizer.from_file(str(folder / paths.TOKENIZER))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._runner = make_runner(
            self.onnx_path, opts.threads, opts.backend, opts.openvino_precision
        )
        openvino = opts.backend == "openvino"
        self.precision = self._runner.inference_precision if openvino else opts.quantize or "fp32"

    def _prepare(self) -> Path:
        src = self.model_dir
        key = f"{paths.cache_key(src)}{paths.side_files_key(src)}"
        folder = self.options.cache_dir / f"bi-{paths.slug(src.name) or 'model'}-{key}"
        if not paths.is_complete(folder):
            require(EXPORT_SENTENCE_ENCODER)
            export_once(export_sentence_encoder, src, folder)
            self.exported = True
        if self.quantize == "int8" and not (folder / paths.INT8).is_file():
            logger.info("quantizing %s to int8 (once; cached in %s)", src, folder)
            quantize_into(folder / paths.FP32, folder / paths.INT8)
            self.exported = True
        return folder

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts`` (float64 array, one row per text, input order)."""
        import numpy as np

        if not texts:
            return np.zeros((0, int(self._meta["dimension"])), dtype=np.float64)
        encodings = self._tokenizer.encode_batch(list(texts))
        telemetry.record(tokens=sum(len(e.ids) for e in encodings))
        return run_bucketed(
            self._runner,
            encodings,
            self._meta["inputs"],
            int(self._meta["pad_token_id"]),
            self.options.batch_size,
            self.options.max_batch_tokens,
        )

    def window_plan(self) -> WindowPlan:
        """How long texts split into windows the model reads whole (a text is embedded alone)."""
        budget = self.max_seq_length - self._counter.num_special_tokens_to_add(False)
        return WindowPlan(budget, tokenizers_offsets(self._counter))

    @property
    def tokenizer(self) -> Any:
        """The model's ``tokenizers.Tokenizer`` (no padding; as loaded from the folder)."""
        return self._tokenizer

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text with special tokens, before truncation."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]
