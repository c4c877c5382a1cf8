"""What rerank-kit's spans say, and the OpenTelemetry API objects that carry them.

The settings (:class:`TraceSettings`, :func:`configure_tracing`, the OpenInference
``OPENINFERENCE_HIDE_*`` variables), the API looked up once and lazily (:func:`api`: ``None``
when tracing is off or ``opentelemetry-api`` is not installed), and the attributes describing a
reranker and a request. ``rerank_kit._core.telemetry`` opens the spans.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "REDACTED",
    "TraceSettings",
    "api",
    "configure_tracing",
    "describe",
    "hide_inputs",
    "hide_outputs",
    "request_attributes",
    "trace_settings",
]

logger = logging.getLogger(__name__)

#: What a hidden value is replaced with (OpenInference's placeholder).
REDACTED = "__REDACTED__"


@dataclass(frozen=True)
class TraceSettings:
    """How rerank-kit traces (see :func:`configure_tracing`).

    Attributes:
        enabled: False: no span and no metric at all (usage is still counted).
        hide_inputs: Hide the query and the input passages' text (``None``: the OpenInference
            variables decide).
        hide_outputs: Hide the returned passages' text (``None``: the variables decide).
        max_documents: Record at most this many input and output documents per span.
        tracer_provider: A ``TracerProvider`` to use instead of the global one.
        meter_provider: A ``MeterProvider`` to use instead of the global one.
    """

    enabled: bool = True
    hide_inputs: bool | None = None
    hide_outputs: bool | None = None
    max_documents: int = 1000
    tracer_provider: Any = None
    meter_provider: Any = None


_settings = TraceSettings()
_api_lock = threading.Lock()
_api: Any = None  # None: not looked up yet; False: opentelemetry-api is not installed


def trace_settings() -> TraceSettings:
    """The settings in force."""
    return _settings


def configure_tracing(**changes: Any) -> TraceSettings:
    """Change how rerank-kit traces; returns the previous settings (to restore them).

    Takes the fields of :class:`TraceSettings` as keywords: ``enabled``, ``hide_inputs``,
    ``hide_outputs`` (``None``: follow ``OPENINFERENCE_HIDE_*``), ``max_documents``,
    ``tracer_provider``, ``meter_provider``.

    Example:
        >>> previous = configure_tracing(hide_inputs=True)
        >>> trace_settings().hide_inputs
        True
        >>> _ = configure_tracing(**vars(previous))
    """
    global _settings, _api
    unknown = set(changes) - set(TraceSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown tracing setting(s): {', '.join(sorted(unknown))}")
    md = changes.get("max_documents", 1)
    if isinstance(md, bool) or not isinstance(md, int) or md < 0:
        raise ValueError(f"max_documents must be an int >= 0, got {md!r}")
    with _api_lock:
        previous = _settings
        _settings = replace(_settings, **changes)
        if "tracer_provider" in changes or "meter_provider" in changes:
            _api = None  # tracer and instruments come from the new providers
    return previous


def _flag(*names: str) -> bool:
    return any(os.environ.get(n, "").strip().lower() in ("1", "true", "yes", "on") for n in names)


def hide_inputs() -> bool:
    """Whether the query and the input passages' text are hidden (setting, else the variables)."""
    if _settings.hide_inputs is not None:
        return _settings.hide_inputs
    return _flag("OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_INPUT_TEXT")


def hide_outputs() -> bool:
    """Whether the returned passages' text is hidden (setting, else the variables)."""
    if _settings.hide_outputs is not None:
        return _settings.hide_outputs
    return _flag("OPENINFERENCE_HIDE_OUTPUTS", "OPENINFERENCE_HIDE_OUTPUT_TEXT")


class _Api:
    """The OpenTelemetry API objects rerank-kit uses, made once."""

    def __init__(self, settings: TraceSettings) -> None:
        from opentelemetry import context, metrics, propagate, trace

        self.trace, self.context, self.propagate = trace, context, propagate
        self.tracer = trace.get_tracer("rerank_kit", tracer_provider=settings.tracer_provider)
        meter = metrics.get_meter("rerank_kit", meter_provider=settings.meter_provider)
        self.duration = meter.create_histogram(
            "rerank_kit.rerank.duration", unit="s", description="Rerank latency per reranker/stage"
        )
        self.pairs = meter.create_counter("rerank_kit.pairs", description="Pairs scored")
        self.tokens = meter.create_counter("rerank_kit.tokens", description="Tokens scored")
        self.cache_hits = meter.create_counter(
            "rerank_kit.cache.hits", description="Pairs answered by the score cache"
        )
        self.cache_lookups = meter.create_counter(
            "rerank_kit.cache.lookups", description="Pairs looked up in the score cache"
        )
        self.cache_ratio = meter.create_histogram(
            "rerank_kit.cache.hit_ratio", description="Score-cache hit ratio per call"
        )
        self.retries = meter.create_counter(
            "rerank_kit.remote.retries", description="Remote requests sent again"
        )
        self.failures = meter.create_counter(
            "rerank_kit.remote.failures", description="Remote requests given up"
        )


def api() -> _Api | None:
    """The API objects, or ``None`` (tracing off, or ``opentelemetry-api`` not installed)."""
    global _api
    if not _settings.enabled:
        return None
    api = _api
    if api is None:
        with _api_lock:
            if _api is None:
                try:
                    _api = _Api(_settings)
                except ImportError:
                    logger.debug("opentelemetry-api is not installed: no spans, no metrics")
                    _api = False
            api = _api
    return api or None


def describe(reranker: Any) -> dict[str, Any]:
    """Backend, precision and batch rule of a reranker, as far as it says."""
    out: dict[str, Any] = {"rerank_kit.reranker.class": type(reranker).__name__}
    for holder in (reranker, reranker.__dict__.get("_onnx")):
        if holder is None:
            continue
        for attr, key in (("backend", "backend"), ("precision", "precision")):
            value = getattr(holder, attr, None)
            if isinstance(value, str) and value and f"rerank_kit.{key}" not in out:
                out[f"rerank_kit.{key}"] = value
    rule = reranker.__dict__.get("_score_rule")
    if rule:
        out["rerank_kit.batch_rule"] = str(rule)
    provider = getattr(reranker, "provider", None)
    if isinstance(provider, str):
        out["rerank_kit.provider"] = provider
    out["rerank_kit.long_documents"] = str(getattr(reranker, "long_documents", "truncate"))
    calibration = getattr(reranker, "calibration", None)
    if calibration is not None:
        out["rerank_kit.calibration"] = str(
            getattr(calibration, "name", type(calibration).__name__)
        )
    return out


def request_attributes(request: Any, ranked: list[Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if request.threshold is not None:
        attrs["rerank_kit.score_threshold"] = float(request.threshold)
    fusion = request.fusion
    if fusion is not None:
        attrs["rerank_kit.fusion.method"] = str(fusion.method)
        attrs["rerank_kit.fusion.weight"] = float(fusion.weight)
    assembly = request.assembly
    if assembly is not None:
        steps = []
        if assembly.boosts:
            steps.append("boosts")
        if assembly.dedupe is not None:
            steps.append("dedupe")
        if assembly.diversity:
            steps.append("diversity")
        if assembly.token_budget is not None:
            steps.append("token_budget")
        if assembly.order != "score":
            steps.append(f"order:{assembly.order}")
        attrs["rerank_kit.assembly.steps"] = steps
        attrs["rerank_kit.assembly.duplicates_removed"] = sum(len(r.duplicates) for r in ranked)
    attrs["rerank_kit.removed"] = len(request.texts) - len(ranked)
    return attrs
