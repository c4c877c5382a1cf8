"""``load_reranker``: build any reranker from one string."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rerank_kit._base import Reranker

__all__ = ["KINDS", "build_cascade", "build_reranker", "load_reranker"]

#: Spec prefixes understood by ``load_reranker``.
KINDS = ("cross-encoder", "flashrank", "bi-encoder", "onnx", "onnx-int8", "openvino")
_KEEP = re.compile(r"^(?P<spec>.+?)@(?P<keep>\d+)$")


def _builders() -> dict[str, Callable[..., Reranker]]:
    from rerank_kit._bi_encoder import BiEncoderReranker
    from rerank_kit._cross_encoder import CrossEncoderReranker
    from rerank_kit._flashrank import FlashRankReranker
    from rerank_kit._onnx import OnnxCrossEncoderReranker

    def onnx_int8(model: str, **kwargs: Any) -> Reranker:
        return OnnxCrossEncoderReranker(model, quantize="int8", **kwargs)

    def openvino(model: str, **kwargs: Any) -> Reranker:
        return OnnxCrossEncoderReranker(model, backend="openvino", **kwargs)

    return {
        "cross-encoder": CrossEncoderReranker,
        "flashrank": FlashRankReranker,
        "bi-encoder": BiEncoderReranker,
        "onnx": OnnxCrossEncoderReranker,
        "onnx-int8": onnx_int8,
        "openvino": openvino,
    }


def build_reranker(kind: str, model: str, **kwargs: Any) -> Reranker:
    """Build one reranker of ``kind`` (one of ``KINDS``) for ``model``, passing ``kwargs`` on.

    Example:
        >>> build_reranker("flashrank", "ms-marco-TinyBERT-L-2-v2", cache_dir="/models")  # doctest: +SKIP
    """
    if kind not in KINDS:
        raise ValueError(f"unknown reranker kind {kind!r}; expected one of {', '.join(KINDS)}")
    return _builders()[kind](model, **kwargs)


def build_cascade(stages: str | Sequence[tuple[str, int | None]]) -> Reranker:
    """Build a cascade from a ``>>`` spec or from ``(spec, keep)`` pairs.

    Example:
        >>> build_cascade([("flashrank:ms-marco-TinyBERT-L-2-v2", 20), ("bi-encoder:all-MiniLM-L6-v2", None)])  # doctest: +SKIP
    """
    from rerank_kit._cascade import CascadeReranker, Stage

    if isinstance(stages, str):
        reranker = load_reranker(stages)
        if not isinstance(reranker, CascadeReranker):
            reranker = CascadeReranker([reranker])
        return reranker
    built: list[Stage] = []
    for item in stages:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"each cascade stage must be a (spec, keep) pair, got {item!r}")
        built.append(Stage(_load_single(item[0], {}), item[1]))
    return CascadeReranker(built)


def _load_single(spec: str, kwargs: dict[str, Any]) -> Reranker:
    kind, sep, model = spec.partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    if not sep or kind not in KINDS:
        raise ValueError(
            f"unknown reranker spec {spec!r}: expected 'KIND:MODEL' with KIND one of "
            f"{', '.join(KINDS)} (e.g. 'flashrank:ms-marco-TinyBERT-L-2-v2'), or stages "
            "joined by '>>' for a cascade"
        )
    if not model:
        if kind == "flashrank":
            model = "ms-marco-TinyBERT-L-2-v2"
        else:
            raise ValueError(f"reranker spec {spec!r} names no model after '{kind}:'")
    return build_reranker(kind, model, **kwargs)


def load_reranker(spec: str, **kwargs: Any) -> Reranker:
    """Build a reranker from a one-line spec, so swapping models is a one-line change.

    Spellings:
        - ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"`` (Hub id or local path)
        - ``"flashrank:ms-marco-TinyBERT-L-2-v2"`` (FlashRank name or local folder)
        - ``"bi-encoder:sentence-transformers/all-MiniLM-L6-v2"`` (Hub id or local path)
        - ``"onnx:ID_OR_PATH"``, ``"onnx-int8:ID_OR_PATH"`` (cross-encoder on ONNX Runtime) and
          ``"openvino:ID_OR_PATH"`` (cross-encoder on OpenVINO)
        - cascade: stages joined by ``>>``, each ending in ``@KEEP`` (how many it passes on;
          optional on the last stage), e.g.
          ``"flashrank:ms-marco-TinyBERT-L-2-v2@20 >> cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``

    Args:
        spec: The spec string.
        **kwargs: Passed to the reranker's constructor (single-model specs only), e.g.
            ``cache_dir=`` for FlashRank or ``batch_size=``.

    Returns:
        A ``Reranker``.

    Example:
        >>> from rerank_kit import load_reranker  # doctest: +SKIP
        >>> reranker = load_reranker("bi-encoder:all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> reranker.rerank("query", ["a", "b"], top_n=1)  # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("reranker spec must be a non-empty string like 'flashrank:NAME'")
    parts = [p.strip() for p in spec.split(">>")]
    if len(parts) == 1:
        return _load_single(parts[0], kwargs)
    if kwargs:
        raise ValueError("keyword arguments apply to single-model specs, not cascades")
    from rerank_kit._cascade import CascadeReranker, Stage

    stages: list[Stage] = []
    for i, part in enumerate(parts):
        match = _KEEP.match(part)
        keep = int(match["keep"]) if match else None
        sub = match["spec"].strip() if match else part
        if keep is None and i < len(parts) - 1:
            raise ValueError(
                f"cascade stage {i + 1} ({part!r}) needs '@KEEP', how many candidates it passes on"
            )
        stages.append(Stage(_load_single(sub, {}), keep))
    return CascadeReranker(stages)
