"""``precision=``: the one spelling of what a model computes in, and its older aliases.

``precision`` replaces two older settings, which keep working as aliases: ``quantize=`` (which
graph ONNX Runtime runs: ``None`` or ``"int8"``) and ``openvino_precision=`` (OpenVINO's
inference precision: ``"auto"``, ``"bf16"`` or ``"f32"``). What each value means per backend:

============  =======================================  ==========================================
precision     ``backend="onnx"`` (ONNX Runtime)        ``backend="openvino"``
============  =======================================  ==========================================
``None``      the graph as it is (an export: fp32)     bf16 on CPUs with AVX512_BF16 or AMX,
                                                       else fp32 (``openvino_precision="auto"``)
``"fp32"``    the fp32 graph (``quantize=None``)       fp32 (``openvino_precision="f32"``)
``"int8"``    dynamic int8 weights (``quantize=        refused: ONNX Runtime's int8 graph; an int8
              "int8"``), run per token                 graph runs dequantized at bf16 or fp32
``"bf16"``    refused (no bf16 kernels on CPU)         bf16 (``openvino_precision="bf16"``)
``"fp16"``    refused                                  refused (bf16 is the CPU's half precision)
============  =======================================  ==========================================

The torch backend takes ``None`` or ``"fp32"`` only (a torch dtype goes in ``model_kwargs``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rerank_kit._runtime.cpu import CpuPath, cpu_tier, fastest_path

__all__ = ["PRECISIONS", "CpuPath", "follow_cpu", "resolve_precision", "torch_precision"]

logger = logging.getLogger(__name__)

#: ``precision=`` values (``None``: the backend's default).
PRECISIONS = ("fp32", "int8", "bf16", "fp16")
#: What each backend can run.
_CAN = {"onnx": ("fp32", "int8"), "openvino": ("fp32", "bf16")}
_WHY = {
    ("onnx", "bf16"): "ONNX Runtime has no bf16 kernels on the CPU; use backend='openvino' for "
    "bf16, or precision='int8'",
    ("onnx", "fp16"): "ONNX Runtime has no fp16 kernels on the CPU; use precision='int8' (or "
    "backend='openvino' with precision='bf16')",
    ("openvino", "int8"): "int8 (quantize='int8') is ONNX Runtime's int8 graph, which OpenVINO "
    "cannot read; OpenVINO runs an int8 graph (such as the bundled model) dequantized, at "
    "precision='bf16' or 'fp32': use one of those, or backend='onnx' for int8",
    ("openvino", "fp16"): "OpenVINO runs bf16 or fp32 on the CPU; use precision='bf16'",
}
#: ``openvino_precision=`` (alias) -> ``precision=``.
_FROM_OPENVINO = {"auto": None, "f32": "fp32", "bf16": "bf16"}


def _check(precision: object) -> str | None:
    if precision is None:
        return None
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be None or one of {', '.join(map(repr, PRECISIONS))}, "
            f"got {precision!r}"
        )
    return str(precision)


def resolve_precision(
    precision: str | None,
    *,
    backend: str,
    quantize: str | None = None,
    openvino_precision: str | None = None,
) -> tuple[str | None, str]:
    """``(quantize, openvino_precision)`` for ``precision`` on ``backend``, aliases merged.

    Args:
        precision: ``None`` (the backend's default) or one of ``PRECISIONS``.
        backend: ``"onnx"`` or ``"openvino"``.
        quantize: The older ``quantize=`` (``None`` or ``"int8"``): an alias.
        openvino_precision: The older ``openvino_precision=`` (``"auto"``, ``"bf16"`` or
            ``"f32"``; ``None`` or ``"auto"``: not given): an alias, read on OpenVINO only
            (ONNX Runtime ignores it, as it always did).

    Raises:
        ValueError: An unknown value, a precision ``backend`` cannot run, or an alias that says
            otherwise than ``precision``.

    Example:
        >>> resolve_precision("int8", backend="onnx")
        ('int8', 'auto')
        >>> resolve_precision("bf16", backend="openvino"), resolve_precision(None, backend="onnx")
        ((None, 'bf16'), (None, 'auto'))
        >>> resolve_precision(None, backend="openvino", openvino_precision="f32")
        (None, 'f32')
        >>> resolve_precision("fp32", backend="onnx", quantize="int8")
        Traceback (most recent call last):
        ...
        ValueError: precision='fp32' and quantize='int8' disagree; give precision= alone (quantize= is its older name)
    """
    precision = _check(precision)
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if openvino_precision is not None and openvino_precision not in _FROM_OPENVINO:
        raise ValueError(
            f"openvino_precision must be one of auto, bf16, f32, got {openvino_precision!r}"
        )
    aliases = [("quantize", quantize, quantize)]
    if backend == "openvino":  # as before: ONNX Runtime ignores OpenVINO's setting
        meaning = _FROM_OPENVINO.get(openvino_precision or "")
        aliases.append(("openvino_precision", openvino_precision, meaning))
    for label, given, meaning in aliases:
        if meaning is None:
            continue
        if precision is not None and precision != meaning:
            raise ValueError(
                f"precision={precision!r} and {label}={given!r} disagree; give precision= alone "
                f"({label}= is its older name)"
            )
        precision = meaning
    if precision is not None and precision not in _CAN.get(backend, ()):
        why = _WHY.get((backend, precision), f"backend={backend!r} runs {_CAN.get(backend)}")
        raise ValueError(f"precision={precision!r} cannot run on backend={backend!r}: {why}")
    if backend == "onnx":
        return ("int8" if precision == "int8" else None), "auto"
    return None, {None: "auto", "fp32": "f32", "bf16": "bf16"}[precision]


def torch_precision(precision: str | None, quantize: str | None = None) -> None:
    """Refuse, on the torch backend, a ``precision`` (or ``quantize``) other than fp32.

    Example:
        >>> torch_precision("fp32")
        >>> torch_precision("int8")
        Traceback (most recent call last):
        ...
        ValueError: precision='int8' needs backend='onnx' (torch runs fp32; a torch dtype goes in model_kwargs, e.g. {'torch_dtype': 'bfloat16'})
    """
    _check(precision)
    if quantize is not None:
        raise ValueError(f"quantize={quantize!r} needs backend='onnx'")
    if precision in (None, "fp32"):
        return
    where = {"int8": "needs backend='onnx'", "bf16": "needs backend='openvino'"}
    raise ValueError(
        f"precision={precision!r} {where.get(precision, 'runs on no CPU backend here')} (torch "
        "runs fp32; a torch dtype goes in model_kwargs, e.g. {'torch_dtype': 'bfloat16'})"
    )


def follow_cpu(
    model: str,
    precision: str | None,
    quantize: str | None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> CpuPath | None:
    """The CPU's fastest batch-independent path, for a model whose backend was not given.

    It applies to the bundled model (``rerank_kit.models``) and to int8 (``precision="int8"``
    or ``quantize="int8"``) of a model that runs on ONNX Runtime by default (a folder holding an
    ONNX graph), unless ``precision`` or ``model_kwargs`` choose otherwise (another precision,
    ``openvino_precision``, ``backend``). The choice (``cpu.fastest_path``: the CPU's tier among
    the installed backends) is logged in one INFO line naming the path and why.

    Returns:
        The path to run (``None``: the backend's default applies unchanged).
    """
    from rerank_kit import models

    chosen = {"precision", "quantize", "openvino_precision", "backend"} & set(model_kwargs or {})
    int8 = "int8" in (precision, quantize)
    if chosen or precision not in (None, "int8"):
        return None
    if not int8 and not models.is_bundled_cross_encoder(model):
        return None
    path = fastest_path()
    logger.info(
        "%s runs %s, the default for this CPU (%s): %s. Pass backend= (or an onnx: or "
        "openvino: spec) to choose the backend yourself.",
        model,
        path.name,
        cpu_tier(),
        path.why,
    )
    return path
