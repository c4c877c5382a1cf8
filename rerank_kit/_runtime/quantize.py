"""Dynamic int8 weights for an fp32 graph, and telling a graph that is already quantized."""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

from rerank_kit._runtime.options import QUANTIZE_INT8, require
from rerank_kit._runtime.sessions import root_logger_untouched

__all__ = ["QUANTIZED_OPS", "graph_is_quantized", "quantize_int8", "quantize_into"]

#: Op types that only a quantized graph contains (ONNX Runtime dynamic/static int8, int4).
QUANTIZED_OPS = (
    b"MatMulInteger",
    b"DynamicQuantizeLinear",
    b"QAttention",
    b"QLinearMatMul",
    b"MatMulNBits",
    b"DynamicQuantizeMatMul",
)


def graph_is_quantized(graph: Path) -> bool:
    """True if the graph uses quantized operators (op types are plain strings in the file)."""
    with graph.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(op) != -1 for op in QUANTIZED_OPS)


def quantize_int8(fp32: Path, out: Path, *, attention: bool = True) -> None:
    """Dynamic int8 weights for the matrix products and attention (needs ``onnx``).

    ``attention=False`` quantizes the ``MatMul`` nodes only: a fused ``Attention`` stays fp32
    instead of becoming ``QAttention``, whose batch-wide activation scale no rewrite can reach.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with root_logger_untouched():
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"] if attention else ["MatMul"],
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def quantize_into(fp32: Path, target: Path, *, attention: bool = True) -> None:
    """Write the int8 graph of ``fp32`` to ``target`` atomically (readers never see half a file)."""
    require(QUANTIZE_INT8)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        quantize_int8(fp32, Path(tmp), attention=attention)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
