"""Settings every ONNX model takes, checked once, and what each step needs installed.

Running an exported or pre-exported graph needs ``onnxruntime`` (or ``openvino``), ``tokenizers``
and ``numpy`` only; exporting a model needs ``torch`` and ``transformers`` (plus ``onnx``), and a
sentence encoder's export ``sentence-transformers`` too. ``require`` names the step, what it
needs and the extra that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_kit._runtime.cpu import default_threads
from rerank_kit._runtime.paths import default_cache_dir
from rerank_kit._runtime.precision import resolve_precision

__all__ = [
    "BACKENDS",
    "EXPORT_CROSS_ENCODER",
    "EXPORT_SENTENCE_ENCODER",
    "FETCH",
    "OV_PRECISIONS",
    "QUANTIZE",
    "QUANTIZE_INT8",
    "RUN_ONNX",
    "RUN_OPENVINO",
    "TORCH_BI_ENCODER",
    "TORCH_CROSS_ENCODER",
    "Need",
    "RuntimeOptions",
    "check_positive",
    "require",
]

#: ``quantize=`` values.
QUANTIZE = (None, "int8")
#: ``backend=`` values of the runtime.
BACKENDS = ("onnx", "openvino")
#: ``openvino_precision=`` values.
OV_PRECISIONS = ("auto", "bf16", "f32")


@dataclass(frozen=True)
class Need:
    """A step, the modules it imports (with their PyPI names) and the extra installing each."""

    purpose: str
    modules: tuple[tuple[str, str, str], ...]  # (module, PyPI name, extra)
    hint: str = ""

    def error(self, package: str, extra: str, exc: ImportError) -> ImportError:
        """The ``ImportError`` for a missing ``package``, naming the step and the extra."""
        names = [pypi for _, pypi, _ in self.modules]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        err = ImportError(
            f"{self.purpose} needs {listed}; {package} is not installed. "
            f'Install it with: pip install "rerank-kit[{extra}]"'
            + (f". {self.hint}" if self.hint else "")
        )
        err.__cause__ = exc
        return err


def need(purpose: str, extra: str, *modules: str | tuple[str, str, str], hint: str = "") -> Need:
    """A ``Need`` whose modules install with ``extra`` unless given as ``(module, PyPI, extra)``.

    Example:
        >>> need("running x", "onnx-runtime", "onnxruntime", "huggingface_hub").modules[1]
        ('huggingface_hub', 'huggingface-hub', 'onnx-runtime')
    """
    rows = tuple(m if isinstance(m, tuple) else (m, m.replace("_", "-"), extra) for m in modules)
    return Need(purpose, rows, hint)


#: Running a graph on ONNX Runtime: the ``onnx-runtime`` extra (also in ``bundled``).
RUN_ONNX = need(
    "running an ONNX graph on ONNX Runtime", "onnx-runtime", "onnxruntime", "tokenizers", "numpy"
)
#: Running a graph on OpenVINO: the ``openvino-runtime`` extra (no torch; ``openvino`` adds
#: the export).
RUN_OPENVINO = need(
    "running an ONNX graph on OpenVINO",
    "openvino-runtime",
    "openvino",
    "tokenizers",
    "numpy",
    hint='"rerank-kit[openvino]" also installs what exporting a transformers model needs (torch)',
)
#: Exporting a transformers cross-encoder (once; later runs need ``RUN_ONNX`` only).
EXPORT_CROSS_ENCODER = need(
    "exporting a cross-encoder to ONNX (once; the cached export then runs without them)",
    "onnx",
    "torch",
    "transformers",
    "onnx",
    "onnxruntime",
)
#: Exporting a sentence-transformers bi-encoder (once).
EXPORT_SENTENCE_ENCODER = need(
    "exporting a sentence encoder to ONNX (once; the cached export then runs without them)",
    "onnx",
    "torch",
    ("sentence_transformers", "sentence-transformers", "bi-encoder"),
    "onnx",
    "onnxruntime",
)
#: The torch cross-encoder (sentence-transformers ``CrossEncoder``).
TORCH_CROSS_ENCODER = need(
    "a cross-encoder on torch (backend='torch')",
    "cross-encoder",
    "sentence_transformers",
    hint=(
        "Without torch: the bundled model, or a folder that holds an ONNX graph, runs on ONNX "
        "Runtime (pip install \"rerank-kit[onnx-runtime]\"), and backend='onnx' exports "
        'other models once (pip install "rerank-kit[onnx]")'
    ),
)
#: The torch bi-encoder (sentence-transformers ``SentenceTransformer``).
TORCH_BI_ENCODER = need(
    "a bi-encoder on torch (backend='torch')", "bi-encoder", "sentence_transformers"
)
#: Finding a model in the Hugging Face cache or fetching it from the Hub (not for local folders).
FETCH = need(
    "finding a model by its Hub id (in the Hugging Face cache or on the Hub)",
    "onnx",
    "huggingface_hub",
)
#: Quantizing an fp32 graph to int8 (once; cached).
QUANTIZE_INT8 = need(
    "quantizing an ONNX graph to int8 (once; the cached graph then runs without it)",
    "onnx",
    "onnx",
    "onnxruntime",
)


def require(need: Need, *, load: bool = True) -> None:
    """Import every module ``need`` lists, or raise its ``ImportError`` for the first missing.

    ``load=False`` only looks the modules up (nothing is imported), to fail fast before a slow
    step.

    Example:
        >>> require(Need("the example", (("json", "json", "none"),)))
        >>> require(Need("the example", (("no_such_module_xyz", "xyz", "demo"),)))
        Traceback (most recent call last):
        ...
        ImportError: the example needs xyz; xyz is not installed. Install it with: pip install "rerank-kit[demo]"
    """
    for module, pypi, extra in need.modules:
        try:
            if load:
                importlib.import_module(module)
            elif importlib.util.find_spec(module) is None:
                raise ImportError(f"No module named {module!r}")
        except (ImportError, ValueError) as exc:  # ValueError: sys.modules[module] is None
            cause = exc if isinstance(exc, ImportError) else ImportError(str(exc))
            raise need.error(pypi, extra, cause) from exc


def check_positive(label: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive ``int`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{label} must be a positive int, got {value!r}")


class RuntimeOptions:
    """The settings every ONNX model takes, checked once (``ValueError`` naming the bad one).

    Args:
        quantize: ``None`` (fp32) or ``"int8"`` (dynamic int8 weights, ONNX Runtime only).
        backend: ``"onnx"`` (ONNX Runtime) or ``"openvino"`` (OpenVINO; checked installed here,
            before any export would be wasted).
        threads: Intra-op threads (default: physical cores this process may use).
        cache_dir: Where exports live (default: ``paths.default_cache_dir()``).
        batch_size: At most this many inputs per call into the runner.
        max_batch_tokens: Also cap a call at this many padded tokens; ``None``: no cap.
        openvino_precision: With ``backend="openvino"``: ``"auto"``, ``"bf16"`` or ``"f32"``
            (an alias of ``precision``, which it merges into ``quantize`` and this).
        precision: ``None`` (the backend's default), ``"fp32"``, ``"int8"`` (ONNX Runtime) or
            ``"bf16"`` (OpenVINO); see ``rerank_kit._runtime.precision``. ``quantize`` and
            ``openvino_precision`` are its older names: one that disagrees is a ``ValueError``.

    Example:
        >>> RuntimeOptions(threads=2).threads, RuntimeOptions().cache_dir.name
        (2, 'onnx')
        >>> RuntimeOptions(quantize="fp16")
        Traceback (most recent call last):
        ...
        ValueError: quantize must be None or 'int8', got 'fp16'
    """

    def __init__(
        self,
        *,
        quantize: str | None = None,
        backend: str = "onnx",
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = 2048,
        openvino_precision: str = "auto",
        precision: str | None = None,
    ) -> None:
        if quantize not in QUANTIZE:
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be 'onnx' or 'openvino', got {backend!r}")
        if openvino_precision not in OV_PRECISIONS:
            raise ValueError(
                f"openvino_precision must be one of {', '.join(OV_PRECISIONS)}, "
                f"got {openvino_precision!r}"
            )
        quantize, openvino_precision = resolve_precision(
            precision, backend=backend, quantize=quantize, openvino_precision=openvino_precision
        )
        check_positive("batch_size", batch_size)
        for label, value in (("threads", threads), ("max_batch_tokens", max_batch_tokens)):
            if value is not None:
                check_positive(label, value)
        if backend == "openvino":
            require(RUN_OPENVINO)
        self.quantize = quantize
        self.backend = backend
        self.threads: int = threads if threads is not None else default_threads()
        self.cache_dir: Path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.openvino_precision = openvino_precision

    def __repr__(self) -> str:
        return f"RuntimeOptions({self.__dict__!r})"
