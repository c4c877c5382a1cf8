"""Cross-encoder reranker over sentence-transformers ``CrossEncoder``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rerank_kit._base import Reranker, ScoreCache, make_score_cache, pair_overflow
from rerank_kit._errors import missing_extra, require
from rerank_kit._hub import resolve_hf_model

__all__ = ["CrossEncoderReranker"]

logger = logging.getLogger(__name__)


class CrossEncoderReranker(Reranker):
    """Reranks with a sentence-transformers ``CrossEncoder`` (query and passage read together).

    Scores are exactly ``CrossEncoder.predict`` (a sigmoid for one-label models), so the quality
    published for a model carries over.

    ``backend="onnx"`` runs the same model on ONNX Runtime instead of torch (exported once and
    cached; see :class:`~rerank_kit.OnnxCrossEncoderReranker`): the same scores to ~1e-6 in
    55-70 % of the time on CPU, and ``quantize="int8"`` about 3x faster than torch at a small cost
    in fidelity (docs/speed.md has the measured figures). ``backend="openvino"`` runs the same
    exported graph on OpenVINO, in bf16 on CPUs with AVX512_BF16 or AMX (fp32 elsewhere; pick with
    ``model_kwargs={"openvino_precision": "f32"}``).

    Setup:
        ``pip install "rerank-kit[cross-encoder]"`` (torch), ``"rerank-kit[onnx]"`` for
        ``backend="onnx"``, or ``"rerank-kit[openvino]"`` for ``backend="openvino"``.

    Args:
        model: Hub id (e.g. ``"cross-encoder/ms-marco-MiniLM-L-6-v2"``) or local folder.
        device: Torch device, ``"cpu"`` by default.
        batch_size: Pairs per forward pass.
        max_length: Truncate pairs to this many tokens (default: the model's own limit).
        model_kwargs: Extra keyword arguments for ``CrossEncoder(...)``, or for
            ``OnnxCrossEncoderReranker(...)`` with ``backend="onnx"`` or ``"openvino"`` (e.g.
            ``threads``, ``cache_dir``, ``openvino_precision``).
        backend: ``"torch"`` (sentence-transformers), ``"onnx"`` (ONNX Runtime, CPU) or
            ``"openvino"`` (OpenVINO, CPU; the same exported graph).
        quantize: With ``backend="onnx"``: ``None`` for fp32 or ``"int8"``.
        file_name: With ``backend="onnx"`` or ``"openvino"``: which ONNX graph of a pre-exported folder to load
            (e.g. ``"onnx/model_qint8_avx512.onnx"``), as in sentence-transformers.
        score_cache: Opt-in score cache: ``0`` (off, the default), the number of (query,
            passage) pairs to keep, or a ``ScoreCache`` shared with other rerankers. A pair seen
            before is not scored again; ``cache_info()`` gives the hit counts.

    Example:
        >>> from rerank_kit import CrossEncoderReranker  # doctest: +SKIP
        >>> ce = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
        >>> ce.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={})]
        >>> fast = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="onnx", quantize="int8")  # doctest: +SKIP
        >>> trained = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-12-v2", backend="onnx")  # doctest: +SKIP
        >>> ov = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", backend="openvino")  # doctest: +SKIP
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
        file_name: str | None = None,
        score_cache: int | ScoreCache | None = 0,
    ) -> None:
        super().__init__()
        self._score_cache = make_score_cache(score_cache)
        self._onnx: Any = None
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}")
        if backend in ("onnx", "openvino"):
            if device != "cpu":
                raise ValueError(f"backend={backend!r} runs on the CPU; got device={device!r}")
            from rerank_kit._onnx import OnnxCrossEncoderReranker

            self._onnx = OnnxCrossEncoderReranker(
                model,
                quantize=quantize,
                max_length=max_length,
                batch_size=batch_size,
                file_name=file_name,
                **{"backend": backend, **(model_kwargs or {})},
            )
            self.model_name = model
            self.name = self._onnx.name
            self.batch_size = batch_size
            self.model: Any = None
            return
        if quantize is not None:
            raise ValueError(f"quantize={quantize!r} needs backend='onnx'")
        if file_name is not None:
            raise ValueError(f"file_name={file_name!r} needs backend='onnx' or 'openvino'")
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
        logger.debug("loaded cross-encoder %s from %s", model, path)

    @property
    def backend(self) -> str:
        """``"torch"``, ``"onnx"`` or ``"openvino"``."""
        return "torch" if self._onnx is None else str(self._onnx.backend)

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        if self._onnx is not None:
            return self._onnx._score(query, texts)
        pairs = [(query, text) for text in texts]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        if self._onnx is not None:
            return self._onnx._truncated(query, texts)
        limit = getattr(self.model, "max_seq_length", None)
        return pair_overflow(getattr(self.model, "tokenizer", None), query, texts, limit)
