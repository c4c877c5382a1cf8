"""Dynamic int8 weights for an fp32 graph, and telling a graph that is already quantized."""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
from pathlib import Path

from rerank_kit._runtime.options import QUANTIZE_INT8, require
from rerank_kit._runtime.sessions import OrtRunner, root_logger_untouched

__all__ = ["QUANTIZED_OPS", "graph_is_quantized", "quantize_int8", "quantize_into"]

logger = logging.getLogger(__name__)

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


def _split_matches(fp32: Path, split: Path) -> bool:
    """True if ``split`` computes what ``fp32`` does on a padded batch (max error 1e-4)."""
    import numpy as np

    a, b = OrtRunner(fp32, 1), OrtRunner(split, 1)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(3, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feeds = {k: v for k, v in feeds.items() if k in a.input_names}
    want, got = np.asarray(a(feeds)), np.asarray(b(feeds))
    return bool(np.abs(want - got).max() <= 1e-4 * max(1.0, float(np.abs(want).max())))


def quantize_int8(fp32: Path, out: Path, *, attention: bool = True) -> None:
    """Dynamic int8 weights for the matrix products and attention (needs ``onnx``).

    ``attention=False`` (what exports use since the batch-independence rule) quantizes
    ``MatMul`` nodes only, never into ``QAttention``, whose batch-wide activation scale no
    rewrite can reach: each fused ``Attention`` is first split into its Q/K/V ``MatMul``s and a
    ``MultiHeadAttention`` (``attention_fusion.split_attention``; kept only if it computes the
    same on a padded batch, else the ``Attention`` stays fp32).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rerank_kit._runtime.attention_fusion import split_attention

    source = fp32
    split = out.with_name(out.stem + ".split.onnx")
    if not attention and split_attention(fp32, split):
        if _split_matches(fp32, split):
            source = split
        else:
            logger.warning("splitting the attention of %s changed its output; kept fused", fp32)
    try:
        with root_logger_untouched():
            quantize_dynamic(
                str(source),
                str(out),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Attention"] if attention else ["MatMul"],
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        split.unlink(missing_ok=True)


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
