"""Runners: one ONNX graph on ONNX Runtime's or OpenVINO's CPU plugin, ``runner(feeds) -> output``.

Both expose ``input_names``, ``output_name``, ``output_shape``, ``inference_precision`` and
``backend``, so tokenization and batching never depend on which one runs the graph.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from rerank_kit._core.errors import ModelNotAvailableError, RerankError
from rerank_kit._runtime.cpu import cpu_has_bf16
from rerank_kit._runtime.options import OV_PRECISIONS, RUN_OPENVINO, require

__all__ = [
    "OpenVinoRunner",
    "OrtRunner",
    "Runner",
    "check_graph_file",
    "graph_error",
    "load_tokenizer",
    "make_runner",
    "root_logger_untouched",
]

#: Op types OpenVINO's ONNX reader has no conversion rule for (ONNX Runtime's int8 attention).
_OPENVINO_UNREADABLE = (b"QAttention",)
#: Exception type names that mean "this file is not a readable ONNX graph" (protobuf's and
#: ONNX Runtime's parse failures, an empty or vanished file).
_UNREADABLE_GRAPH = ("DecodeError", "InvalidProtobuf", "NoSuchFile", "ParseError")


def check_graph_file(graph: Path) -> None:
    """Raise ``ModelNotAvailableError`` naming ``graph`` if it is missing or empty.

    The cheap check made before anything maps or parses the file; a truncated or garbage graph
    is caught where it is parsed (``graph_error``).

    Example:
        >>> check_graph_file(Path("/no/such/model.onnx"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rerank_kit._core.errors.ModelNotAvailableError: ONNX graph '/no/such/model.onnx' ...
    """
    try:
        size = graph.stat().st_size
    except OSError as exc:
        raise ModelNotAvailableError(
            f"ONNX graph {str(graph)!r} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if size == 0:
        raise ModelNotAvailableError(
            f"ONNX graph {str(graph)!r} is an empty file (an interrupted download or copy?); "
            "replace it with the model's complete model.onnx"
        )


def graph_error(
    graph: Path, backend: str, exc: BaseException, doing: str = "loading"
) -> RerankError:
    """The error to raise when a runtime fails on ``graph``: it names the file and the backend.

    A parse failure (truncated, garbage or empty file) is a ``ModelNotAvailableError``; any
    other failure of ONNX Runtime, OpenVINO or onnx a ``RerankError``.
    """
    what = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
    if type(exc).__name__ in _UNREADABLE_GRAPH or "mmap an empty file" in str(exc):
        return ModelNotAvailableError(
            f"ONNX graph {str(graph)!r} is not a readable ONNX model (truncated or corrupt?) "
            f"while {doing} it for backend={backend!r} ({what}); replace it with the model's "
            "complete file"
        )
    return RerankError(f"backend={backend!r} failed {doing} ONNX graph {str(graph)!r} ({what})")


def load_tokenizer(path: Path) -> Any:
    """``tokenizers.Tokenizer.from_file(path)``, or ``ModelNotAvailableError`` naming the file."""
    from tokenizers import Tokenizer

    try:
        if path.stat().st_size == 0:
            raise ValueError("the file is empty")
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
        raise ModelNotAvailableError(
            f"tokenizer file {str(path)!r} cannot be loaded (truncated or corrupt?): "
            f"{type(exc).__name__}: {str(exc).strip()[:300]}; replace it with the model's "
            "tokenizer.json"
        ) from exc


class Runner(Protocol):
    """What the models need of a runner."""

    backend: str
    input_names: list[str]
    output_name: str
    output_shape: list[Any]
    inference_precision: str

    def __call__(self, feeds: dict[str, Any]) -> Any: ...


class OrtRunner:
    """Runs an ONNX graph on ONNX Runtime's CPU provider: ``runner(feeds) -> first output``."""

    backend = "onnx"

    def __init__(self, graph: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle threads sleep instead of spinning, so they do not steal CPU from other work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        check_graph_file(graph)
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime's own exception types derive from Exception
            raise graph_error(graph, self.backend, exc) from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        out = self.session.get_outputs()[0]
        self.output_name: str = out.name
        self.output_shape: list[Any] = list(out.shape or [])
        self.inference_precision = "fp32"

    def __call__(self, feeds: dict[str, Any]) -> Any:
        return self.session.run(None, feeds)[0]


class OpenVinoRunner:
    """Runs an ONNX graph on OpenVINO's CPU plugin: ``runner(feeds) -> first output``.

    ``precision``: ``"bf16"``, ``"f32"``, or ``"auto"`` (bf16 on CPUs with AVX512_BF16 or AMX).
    """

    backend = "openvino"

    def __init__(self, graph: Path, threads: int, precision: str = "auto") -> None:
        require(RUN_OPENVINO)
        import openvino as ov

        if precision not in OV_PRECISIONS:
            raise ValueError(
                f"openvino_precision must be one of {', '.join(OV_PRECISIONS)}, got {precision!r}"
            )
        check_graph_file(graph)
        with graph.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            unreadable = [op.decode() for op in _OPENVINO_UNREADABLE if data.find(op) != -1]
        if unreadable:
            raise RerankError(
                f"OpenVINO cannot read {str(graph)!r}: it uses ONNX Runtime's int8 operator "
                f"com.microsoft.{unreadable[0]}, which OpenVINO has no conversion for. Use "
                "backend='onnx' for this graph, or an fp32 graph (quantize=None) with "
                "backend='openvino'"
            )
        if precision == "auto":
            precision = "bf16" if cpu_has_bf16() else "f32"
        core = ov.Core()
        try:
            model = core.read_model(str(graph))
        except RuntimeError as exc:
            raise RerankError(f"OpenVINO cannot read {str(graph)!r}: {exc}") from exc
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in model.inputs]
        out = model.outputs[0]
        self.output_name = out.get_any_name()
        shape = out.get_partial_shape()
        self.output_shape = [d.get_length() if d.is_static else None for d in shape]
        self.inference_precision = precision

    def __call__(self, feeds: dict[str, Any]) -> Any:
        import numpy as np

        self._request.infer(feeds)
        return np.array(self._request.get_output_tensor(0).data, copy=True)


def make_runner(graph: Path, threads: int, backend: str, precision: str = "auto") -> Runner:
    """An ``OrtRunner`` (``backend="onnx"``) or ``OpenVinoRunner`` for ``graph``."""
    if backend == "openvino":
        return OpenVinoRunner(graph, threads, precision)
    return OrtRunner(graph, threads)


class _DropOnnxruntimeRootRecords(logging.Filter):
    """Drops records that onnxruntime's quantizer logs straight to the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and "onnxruntime" in record.pathname)


@contextmanager
def root_logger_untouched() -> Iterator[None]:
    """Leave the root logger as it was while third-party code that configures it runs.

    onnxruntime's quantizer logs with module-level ``logging.info(...)``, which installs a
    default stderr handler on a root logger that has none; FlashRank's ``Ranker`` configures
    logging when built. Inside this block a ``NullHandler`` keeps ``basicConfig`` from acting,
    a filter drops onnxruntime's root records, and on exit the root logger gets back exactly
    its handlers and level.

    Example:
        >>> import logging
        >>> before = list(logging.getLogger().handlers)
        >>> with root_logger_untouched():
        ...     logging.getLogger().addHandler(logging.StreamHandler())
        >>> logging.getLogger().handlers == before
        True
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    drop = _DropOnnxruntimeRootRecords()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.handlers[:] = handlers
        root.setLevel(level)
