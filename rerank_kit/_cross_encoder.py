"""Cross-encoder reranker over sentence-transformers ``CrossEncoder``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rerank_kit._base import Reranker, pair_overflow
from rerank_kit._errors import missing_extra, require
from rerank_kit._hub import resolve_hf_model
from rerank_kit._windows import WindowPlan, hf_offsets

__all__ = ["CrossEncoderReranker"]

logger = logging.getLogger(__name__)


class CrossEncoderReranker(Reranker):
    """Reranks with a sentence-transformers ``CrossEncoder`` (query and passage read together).

    Scores are exactly ``CrossEncoder.predict`` (a sigmoid for one-label models), so the quality
    published for a model carries over.

    ``backend="onnx"`` runs the same model on ONNX Runtime instead of torch (exported once and
    cached; see :class:`~rerank_kit.OnnxCrossEncoderReranker`): the same scores to ~1e-6 in
    55-70 % of the time on CPU, and ``quantize="int8"`` about 3x faster than torch at a small cost
    in fidelity (docs/speed.md has the measured figures).

    Setup:
        ``pip install "rerank-kit[cross-encoder]"`` (torch), or ``"rerank-kit[onnx]"`` for
        ``backend="onnx"``.

    Args:
        model: Hub id (e.g. ``"cross-encoder/ms-marco-MiniLM-L-6-v2"``) or local folder.
        device: Torch device, ``"cpu"`` by default.
        batch_size: Pairs per forward pass.
        max_length: Truncate pairs to this many tokens (default: the model's own limit).
        model_kwargs: Extra keyword arguments for ``CrossEncoder(...)``, or for
            ``OnnxCrossEncoderReranker(...)`` with ``backend="onnx"`` (e.g. ``threads``,
            ``cache_dir``).
        backend: ``"torch"`` (sentence-transformers) or ``"onnx"`` (ONNX Runtime, CPU).
        quantize: With ``backend="onnx"``: ``None`` for fp32 or ``"int8"``.
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).

    Example:
        >>> from rerank_kit import CrossEncoderReranker  # doctest: +SKIP
        >>> ce = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
        >>> ce.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={})]
        >>> fast = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="onnx", quantize="int8")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        long_documents: str = "truncate",
    ) -> None:
        super().__init__()
        self._onnx: Any = None
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        if backend == "onnx":
            if device != "cpu":
                raise ValueError(f"backend='onnx' runs on the CPU; got device={device!r}")
            from rerank_kit._onnx import OnnxCrossEncoderReranker

            self._onnx = OnnxCrossEncoderReranker(
                model,
                quantize=quantize,
                max_length=max_length,
                batch_size=batch_size,
                **(model_kwargs or {}),
            )
            self.model_name = model
            self.name = self._onnx.name
            self.batch_size = batch_size
            self.model: Any = None
            self.set_long_documents(long_documents)
            return
        if quantize is not None:
            raise ValueError(f"quantize={quantize!r} needs backend='onnx'")
        require("sentence_transformers", extra="cross-encoder", package="sentence-transformers")
        # resolve first: an unavailable model fails in seconds, before torch is even imported
        path = resolve_hf_model(model, kind="cross-encoder", prefix="cross-encoder")
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise missing_extra("cross-encoder", "sentence-transformers", exc) from exc
        self.model_name = model
        self.name = f"cross-encoder:{model}"
        self.batch_size = batch_size
        kwargs = dict(model_kwargs or {})
        if max_length is not None:
            kwargs["max_length"] = max_length
        self.model = CrossEncoder(path, device=device, **kwargs)
        num_labels = getattr(self.model, "num_labels", 1)
        if num_labels != 1:
            raise ValueError(
                f"{model!r} has {num_labels} output labels; a reranker needs a one-label "
                "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2)"
            )
        self.set_long_documents(long_documents)
        logger.debug("loaded cross-encoder %s from %s", model, path)

    @property
    def backend(self) -> str:
        """``"torch"`` or ``"onnx"``."""
        return "torch" if self._onnx is None else "onnx"

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        if self._onnx is not None:
            return self._onnx._score(query, texts)
        pairs = [(query, text) for text in texts]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]

    def _window_plan(self, query: str) -> WindowPlan | None:
        if self._onnx is not None:
            return self._onnx._window_plan(query)
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer: Any = getattr(self.model, "tokenizer", None)
        if not limit or not getattr(tokenizer, "is_fast", False):
            return None
        query_tokens = len(tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
        budget = limit - query_tokens - tokenizer.num_special_tokens_to_add(True)
        return WindowPlan(budget, hf_offsets(tokenizer))

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        if self._onnx is not None:
            return self._onnx._truncated(query, texts)
        limit = getattr(self.model, "max_seq_length", None)
        return pair_overflow(getattr(self.model, "tokenizer", None), query, texts, limit)
