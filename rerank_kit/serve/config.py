"""What ``rerank-kit serve`` serves and how: models, limits, batching, access.

Models come from the command line (``--model NAME=SPEC``, repeated; ``SPEC`` alone serves it
under its own name) or from a JSON config file::

    {"models": {"fast": "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2",
                "tuned": "pipeline.json"},
     "default_model": "fast",
     "limits": {"max_documents": 1000, "max_body_bytes": 4194304},
     "batching": {"window_ms": 2, "max_pairs": 512, "max_queue": 256}}

A ``SPEC`` that names an existing ``.json`` file is a saved ``PipelineConfig`` (what
``rerank-kit tune`` writes): its reranker is served with its tuned settings (fusion, threshold,
``top_n``, context assembly). Anything else is a ``load_reranker`` spec.

Example:
    >>> parse_model("fast=onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
    ModelEntry(name='fast', spec='onnx:cross-encoder/ms-marco-MiniLM-L-12-v2')
    >>> Limits(max_documents=0)
    Traceback (most recent call last):
    ...
    ValueError: max_documents must be a positive int or None, got 0
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "Batching",
    "Limits",
    "ModelEntry",
    "ServeConfig",
    "parse_model",
    "read_config_file",
]

_MAX_CONFIG_BYTES = 1_000_000


def _positive(name: str, value: Any, *, optional: bool = True, number: bool = False) -> None:
    if value is None and optional:
        return
    kinds = (int, float) if number else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        kind = "number" if number else "int"
        raise ValueError(
            f"{name} must be a positive {kind}{' or None' if optional else ''}, got {value!r}"
        )


@dataclass(frozen=True)
class ModelEntry:
    """One served model: the name clients pass, and the spec (or pipeline file) behind it."""

    name: str
    spec: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a served model needs a non-empty name, got {self.name!r}")
        if not isinstance(self.spec, str) or not self.spec.strip():
            raise ValueError(f"model {self.name!r}: the spec must be a non-empty string")

    @property
    def pipeline_file(self) -> Path | None:
        """The saved ``PipelineConfig`` this entry names, or ``None`` (a reranker spec)."""
        path = Path(self.spec).expanduser()
        return path if path.suffix == ".json" and path.is_file() else None


def parse_model(text: str) -> ModelEntry:
    """``NAME=SPEC`` (or ``SPEC``, served under its own name) from ``--model``."""
    name, sep, spec = text.partition("=")
    # a spec may hold "=" only after ":" (e.g. a URL query): "NAME=" must come first
    if sep and ":" not in name and name.strip():
        return ModelEntry(name.strip(), spec.strip())
    return ModelEntry(text.strip(), text.strip())


@dataclass(frozen=True)
class Limits:
    """What one request may carry; a request over a limit gets a 4xx naming it.

    Attributes:
        max_documents: Most documents per request.
        max_body_bytes: Most bytes of request body (413 beyond).
        max_tokens: Most tokens per request, query and documents counted with the model's
            tokenizer (words for models without one); ``None``: no limit.
        max_query_chars: Most characters of the query.
    """

    max_documents: int | None = 1000
    max_body_bytes: int | None = 4 * 1024 * 1024
    max_tokens: int | None = None
    max_query_chars: int | None = 20_000

    def __post_init__(self) -> None:
        for f in fields(self):
            _positive(f.name, getattr(self, f.name))


@dataclass(frozen=True)
class Batching:
    """Cross-request batching and backpressure, per model.

    Attributes:
        window_ms: How long the first request of a batch waits for others (0: no wait; a
            batch still takes every request that queued while the model was busy).
        max_pairs: Most (query, document) pairs one model call scores; a request larger than
            this is scored alone.
        max_queue: Most requests waiting per model; beyond it requests get 429 with
            ``Retry-After``.
        deadline_s: A request not answered within this many seconds gets 504.
        retry_after_s: The ``Retry-After`` a refused request is given.
    """

    window_ms: float = 2.0
    max_pairs: int = 512
    max_queue: int = 256
    deadline_s: float = 30.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if (
            isinstance(self.window_ms, bool)
            or not isinstance(self.window_ms, (int, float))
            or not 0 <= self.window_ms <= 1000
        ):
            raise ValueError(f"window_ms must be a number in [0, 1000], got {self.window_ms!r}")
        _positive("max_pairs", self.max_pairs, optional=False)
        _positive("max_queue", self.max_queue, optional=False)
        _positive("deadline_s", self.deadline_s, optional=False, number=True)
        _positive("retry_after_s", self.retry_after_s, optional=False)


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``rerank-kit serve`` needs besides the API keys (never stored here).

    Attributes:
        models: The served models, in order; the first is the default unless
            ``default_model`` names another.
        default_model: The model of requests that name none (TEI's ``/rerank`` names none).
        limits: Per-request limits.
        batching: Cross-request batching and backpressure.
        cors_origins: Origins allowed by CORS (empty: CORS off).
    """

    models: tuple[ModelEntry, ...]
    default_model: str | None = None
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("serve at least one model (--model NAME=SPEC or a config file)")
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; given twice: {', '.join(dupes)}")
        if self.default_model is not None and self.default_model not in names:
            raise ValueError(
                f"default_model {self.default_model!r} is not served (served: {', '.join(names)})"
            )

    @property
    def default(self) -> str:
        """The name of the default model."""
        return self.default_model or self.models[0].name


def _section(data: Mapping[str, Any], key: str, cls: type[Any]) -> Any:
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        raise ValueError(f"{key!r} must be an object")
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown {key} keys: {', '.join(sorted(unknown))}")
    return cls(**raw)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The keyword arguments of ``ServeConfig`` a JSON config file gives (checked).

    Raises:
        ValueError: Naming the file and what is wrong (unknown key, wrong type, bad limit).
    """
    p = Path(path).expanduser()
    try:
        with p.open("rb") as fh:
            raw = fh.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the serve config {p}: {exc.strerror}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ValueError(f"{p}: over {_MAX_CONFIG_BYTES} bytes; not a serve config")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a JSON object")
    unknown = set(data) - {"models", "default_model", "limits", "batching", "cors_origins"}
    if unknown:
        raise ValueError(f"{p}: unknown keys: {', '.join(sorted(unknown))}")
    try:
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            raise ValueError('"models" must be a non-empty object {"NAME": "SPEC", ...}')
        base = p.parent
        entries = []
        for name, spec in models.items():
            if not isinstance(spec, str):
                raise ValueError(f"model {name!r}: the spec must be a string")
            local = base / spec
            if spec.endswith(".json") and not Path(spec).is_absolute() and local.is_file():
                spec = str(local)  # a pipeline file next to the config
            entries.append(ModelEntry(name, spec))
        origins = data.get("cors_origins", [])
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ValueError('"cors_origins" must be a list of strings')
        default = data.get("default_model")
        if default is not None and not isinstance(default, str):
            raise ValueError('"default_model" must be a string')
        return {
            "models": tuple(entries),
            "default_model": default,
            "limits": _section(data, "limits", Limits),
            "batching": _section(data, "batching", Batching),
            "cors_origins": tuple(origins),
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: {exc}") from None
