"""OpenTelemetry spans and metrics for every rerank, and the usage each call is charged.

One ``RERANKER`` span (OpenInference conventions) per ``rerank``/``arerank``, with rerank-kit's
own ``rerank_kit.*`` attributes; child spans per cascade stage (:func:`stage`) and per remote
attempt (:func:`attempt`); metrics through the OpenTelemetry metrics API. Everything goes
through ``opentelemetry-api`` only, imported once, lazily, on the first traced call: without the
``otel`` extra there is no span and no metric (the usage accounting still runs, it needs no
OpenTelemetry), and without an SDK configured the API's non-recording spans cost a few
microseconds and no attribute is built.

A call's bookkeeping lives in a :class:`Scope` held in a ``contextvars`` variable, so it follows
the call into ``asyncio`` tasks, ``asyncio.to_thread`` and (through :func:`in_context`) thread
pools; a stage or an attempt opens a child scope whose counts are added to its parent's when it
closes. Families report what only they know through :func:`record` (tokens, billed units).

Content (the query and the passages' text) is recorded unless hidden: the OpenInference
variables ``OPENINFERENCE_HIDE_INPUTS`` / ``OPENINFERENCE_HIDE_INPUT_TEXT`` (query and input
passages) and ``OPENINFERENCE_HIDE_OUTPUTS`` / ``OPENINFERENCE_HIDE_OUTPUT_TEXT`` (returned
passages), default false, or :func:`configure_tracing` (which wins over the variables).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from rerank_kit._core import otel
from rerank_kit._core.otel import REDACTED, TraceSettings, configure_tracing, trace_settings
from rerank_kit._core.usage import RankedList, Usage, usage_total

__all__ = [
    "REDACTED",
    "Scope",
    "TraceSettings",
    "attempt",
    "carrier",
    "configure_tracing",
    "counting",
    "in_context",
    "note_scored",
    "record",
    "remote_failure",
    "span",
    "spanned",
    "rerank_call",
    "stage",
    "trace_settings",
    "traced_from",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
Attributes = dict[str, Any] | Callable[[Any], dict[str, Any]]
#: Attributes kept for rerank-kit's own counts when a span's attribute limit is tight.
_RESERVE = 40


class Scope:
    """The counts of one traced call, stage or attempt (thread-safe; children fold in)."""

    def __init__(self, owner: Any, span: Any, parent: Scope | None) -> None:
        self.owner = owner
        self.span = span
        self.parent = parent
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.billed: dict[str, float] = {}

    def add(self, billed: Mapping[str, float] | None = None, **counts: int) -> None:
        with self.lock:
            for key, value in counts.items():
                if value:
                    self.counts[key] = self.counts.get(key, 0) + value
            for unit, amount in (billed or {}).items():
                self.billed[unit] = self.billed.get(unit, 0) + amount

    def fold_into(self, other: Scope) -> None:
        with self.lock:
            counts, billed = dict(self.counts), dict(self.billed)
        for key in ("truncated", "blank"):  # flags of this scope's own passages only
            counts.pop(key, None)
        other.add(billed, **counts)

    def usage(self) -> Usage:
        with self.lock:
            c = self.counts
            return Usage(
                c.get("pairs", 0), c.get("tokens", 0), c.get("model_calls", 0), dict(self.billed)
            )

    def recording(self) -> bool:
        return self.span is not None and self.span.is_recording()


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "rerank_kit_scope", default=None
)


def record(billed: Mapping[str, float] | None = None, **counts: int) -> None:
    """Add counts to the running call's scope (``tokens``, ``model_calls``...; none: ignored)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.add(billed, **counts)


def counting() -> bool:
    """Whether a traced call is running here (so counts given to :func:`record` are kept)."""
    return _SCOPE.get() is not None


def in_context(call: Callable[..., T]) -> Callable[..., T]:
    """``call`` bound to the current context (span and scope), for a thread pool's workers."""
    ctx = contextvars.copy_context()
    return lambda *args: ctx.copy().run(call, *args)


def note_scored(reranker: Any, plan: Any, split: Any, result: T) -> T:
    """What one ``Reranker._scored`` did: pairs, cache hits, windows, blanks, truncation."""
    scope = _SCOPE.get()
    if scope is None:
        return result
    composite = getattr(reranker, "_composite", False)
    counts: dict[str, int] = {}
    if plan.cache is not None:
        counts["cache_lookups"] = len(plan.live)
        counts["cache_hits"] = sum(1 for i in plan.live if plan.texts[i] in plan.hits)
    if split is not None and not composite:
        counts["pairs"] = len(split.texts)
        if not getattr(reranker, "_counts_own_calls", False):
            counts["model_calls"] = 1
        if split.owner is not None:
            counts["windowed"] = sum(split.split)
            counts["windows"] = len(split.texts)
    scope.add(None, **counts)
    if scope.owner is reranker:
        scope.add(
            truncated=sum(getattr(result, "truncated", None) or []),
            blank=sum(getattr(result, "empty", None) or []),
        )
    return result


def _finish_metrics(api: Any, scope: Scope, elapsed: float, attrs: dict[str, str]) -> None:
    api.duration.record(elapsed, attrs)
    c = scope.counts
    if c.get("pairs"):
        api.pairs.add(c["pairs"], attrs)
    if c.get("tokens"):
        api.tokens.add(c["tokens"], attrs)
    if c.get("cache_lookups"):
        api.cache_hits.add(c.get("cache_hits", 0), attrs)
        api.cache_lookups.add(c["cache_lookups"], attrs)
        api.cache_ratio.record(c.get("cache_hits", 0) / c["cache_lookups"], attrs)


def _count_attributes(scope: Scope) -> dict[str, Any]:
    c, usage = scope.counts, scope.usage()
    out: dict[str, Any] = {
        "rerank_kit.pairs_scored": usage.pairs,
        "rerank_kit.tokens_scored": usage.tokens,
        "rerank_kit.model_calls": usage.model_calls,
        "rerank_kit.truncated": c.get("truncated", 0),
        "rerank_kit.blank": c.get("blank", 0),
        "rerank_kit.windowed": c.get("windowed", 0),
    }
    if c.get("windows"):
        out["rerank_kit.windows"] = c["windows"]
    if c.get("cache_lookups"):
        out["rerank_kit.cache.lookups"] = c["cache_lookups"]
        out["rerank_kit.cache.hits"] = c.get("cache_hits", 0)
    for key in ("attempts", "retries"):
        if c.get(key):
            out[f"rerank_kit.remote.{key}"] = c[key]
    for unit, amount in usage.billed_units.items():
        out[f"rerank_kit.billed.{unit}"] = amount
    if usage.tokens:
        out["llm.token_count.total"] = usage.tokens
    return out


@contextlib.contextmanager
def _scoped(owner: Any, name: str, attributes: Attributes) -> Iterator[Scope]:
    """A child scope (and span) of the running one; its counts fold into the parent's.

    ``attributes`` (a dict, or a function of the span making one) are built only for a span
    that records: without an SDK nothing is built.
    """
    parent = _SCOPE.get()
    api = otel.api()
    span: Any = None
    if api is not None:
        span = api.tracer.start_span(name)
        if span.is_recording():
            span.set_attributes(attributes(span) if callable(attributes) else attributes)
        ctx_token = api.context.attach(api.trace.set_span_in_context(span))
    scope = Scope(owner, span, parent)
    token = _SCOPE.set(scope)
    try:
        yield scope
    except BaseException as exc:
        if span is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(api.trace.Status(api.trace.StatusCode.ERROR, str(exc)[:500]))  # type: ignore[union-attr]
        raise
    finally:
        _SCOPE.reset(token)
        if parent is not None:
            scope.fold_into(parent)
        if api is not None:
            api.context.detach(ctx_token)
            if span.is_recording():
                span.set_attributes(_count_attributes(scope))
            span.end()


class _Call:
    """One traced ``rerank``/``arerank``: its scope, and the result it hands back."""

    def __init__(self, reranker: Any, scope: Scope, query: str, texts: Sequence[Any]) -> None:
        self.reranker, self.scope, self.query, self.texts = reranker, scope, query, texts

    def finish(self, request: Any, ranked: list[Any]) -> RankedList:
        """The result as a ``RankedList`` with this call's usage; the span's outputs."""
        usage = self.scope.usage()
        if self.scope.recording():
            self._outputs(request, ranked)
        return RankedList(ranked, usage)

    def _outputs(self, request: Any, ranked: list[Any]) -> None:
        span, texts = self.scope.span, self.texts
        attrs: dict[str, Any] = {"rerank_kit.returned": len(ranked)}
        if request is not None:
            attrs.update(otel.request_attributes(request, ranked))
        hide = otel.hide_outputs()
        probabilities = False
        used = len(getattr(span, "attributes", None) or {})
        keep = min(len(ranked), otel.trace_settings().max_documents, _room(span, used) // 4)
        if keep < len(ranked):
            attrs["rerank_kit.output_documents_cut"] = len(ranked) - keep
        for j, r in enumerate(ranked[:keep]):
            base = f"reranker.output_documents.{j}.document."
            attrs[base + "id"] = str(r.index)
            attrs[base + "score"] = float(r.score)
            if not hide and 0 <= r.index < len(texts):
                attrs[base + "content"] = str(texts[r.index])
            meta: dict[str, Any] = {}
            if r.stage_scores:
                meta["stage_scores"] = {k: float(v) for k, v in r.stage_scores.items()}
            probability = getattr(r, "probability", None)
            if probability is not None:
                meta["probability"] = float(probability)
                probabilities = True
            for flag in ("truncated", "empty", "llm_repaired"):
                if getattr(r, flag, False):
                    meta[flag] = True
            if meta:
                attrs[base + "metadata"] = json.dumps(meta)
        if probabilities:
            attrs["rerank_kit.calibrated"] = True
        span.set_attributes(attrs)


@contextlib.contextmanager
def rerank_call(
    reranker: Any, operation: str, query: Any, texts: Any, top_n: Any = None
) -> Iterator[_Call]:
    """The span and scope of one ``rerank``/``arerank``; the usage is added to the instance.

    The caller ends with ``call.finish(request, ranked)``, which returns the ``RankedList``.
    """
    items = texts if isinstance(texts, Sequence) else []
    api = otel.api()

    def attrs(span: Any) -> dict[str, Any]:
        return _start_attributes(span, reranker, operation, query, items, top_n)

    started = time.perf_counter()
    with _scoped(reranker, f"rerank_kit.{operation}", attrs) as scope:
        try:
            yield _Call(reranker, scope, query, items)
        finally:
            usage_total(reranker).add(scope.usage())
            if api is not None:
                metric = {"rerank_kit.reranker": str(reranker.name), "rerank_kit.stage": ""}
                _finish_metrics(api, scope, time.perf_counter() - started, metric)


def _room(span: Any, used: int) -> int:
    """How many more attributes ``span`` takes (its SDK's limit, 128 by default), less a reserve.

    The SDK drops the *oldest* attributes past its limit, which would lose the span kind and
    the model name: documents are cut to fit instead (``rerank_kit.documents_cut``).
    """
    limit = getattr(getattr(span, "_limits", None), "max_span_attributes", None)
    documents = otel.trace_settings().max_documents
    if not isinstance(limit, int):
        return documents * 4
    return max(0, limit - used - _RESERVE)


def _start_attributes(
    span: Any, reranker: Any, operation: str, query: Any, texts: Sequence[Any], top_n: Any
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "openinference.span.kind": "RERANKER",
        "reranker.model_name": str(reranker.name),
        "rerank_kit.operation": operation,
        "rerank_kit.candidates": len(texts),
    }
    attrs.update(otel.describe(reranker))
    if isinstance(top_n, int) and not isinstance(top_n, bool):
        attrs["reranker.top_k"] = top_n
    hide = otel.hide_inputs()
    text = str(query) if isinstance(query, str) else repr(query)
    attrs["reranker.query"] = REDACTED if hide else text
    attrs["input.value"] = REDACTED if hide else text
    per_doc = 1 if hide else 2
    outputs = len(texts) if not isinstance(attrs.get("reranker.top_k"), int) else top_n
    room = _room(span, len(attrs)) - 4 * min(outputs, len(texts))  # outputs come first
    keep = min(len(texts), otel.trace_settings().max_documents, max(0, room) // per_doc)
    if keep < len(texts):
        attrs["rerank_kit.input_documents_cut"] = len(texts) - keep
    for i, t in enumerate(texts[:keep]):
        base = f"reranker.input_documents.{i}.document."
        attrs[base + "id"] = str(i)
        if not hide and isinstance(t, str):
            attrs[base + "content"] = t
    return attrs


@contextlib.contextmanager
def stage(reranker: Any, name: str, index: int, keep: int | None, n: int) -> Iterator[Scope]:
    """A cascade stage's child span; its usage is also added to the stage's reranker."""
    api = otel.api()

    def attrs(span: Any) -> dict[str, Any]:
        out = {
            "openinference.span.kind": "RERANKER",
            "reranker.model_name": str(reranker.name),
            "rerank_kit.stage.name": name,
            "rerank_kit.stage.index": index,
            "rerank_kit.candidates": n,
            **otel.describe(reranker),
        }
        if keep is not None:
            out["reranker.top_k"] = keep
            out["rerank_kit.stage.keep"] = keep
        return out

    started = time.perf_counter()
    with _scoped(reranker, f"rerank_kit.stage {name}", attrs) as scope:
        try:
            yield scope
        finally:
            usage_total(reranker).add(scope.usage())
            if api is not None:
                metric = {"rerank_kit.reranker": str(reranker.name), "rerank_kit.stage": name}
                _finish_metrics(api, scope, time.perf_counter() - started, metric)


class _Attempt:
    """One remote attempt: what came back, and what was decided."""

    def __init__(self, scope: Scope, provider: str) -> None:
        self.scope, self.provider = scope, provider

    def outcome(self, outcome: Any, action: str, wait: float, reason: str) -> None:
        span = self.scope.span
        if action == "retry":
            record(retries=1)
            api = otel.api()
            if api is not None:
                api.retries.add(1, {"rerank_kit.provider": self.provider, "reason": reason})
        if span is None or not span.is_recording():
            return
        attrs: dict[str, Any] = {"rerank_kit.remote.action": action}
        status = getattr(outcome, "status_code", None)
        if isinstance(status, int):
            attrs["http.response.status_code"] = status
        elif isinstance(outcome, BaseException):
            attrs["error.type"] = type(outcome).__name__
        if reason:
            attrs["rerank_kit.remote.reason"] = reason
        if action == "retry":
            attrs["rerank_kit.remote.wait_s"] = float(wait)
            span.add_event("retry scheduled", {"wait_s": float(wait), "reason": reason})
        span.set_attributes(attrs)


@contextlib.contextmanager
def attempt(provider: str, url: str, number: int, docs: int) -> Iterator[_Attempt]:
    """A remote attempt's child span (number counts from 1)."""
    attrs = {
        "rerank_kit.provider": provider,
        "url.full": url,
        "rerank_kit.remote.attempt": number,
        "rerank_kit.remote.documents": docs,
    }
    record(attempts=1)
    with _scoped(None, f"rerank_kit.remote.attempt {provider}", attrs) as scope:
        yield _Attempt(scope, provider)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Scope]:
    """A plain child span (and scope) named ``name``, e.g. a Dask run on the client side."""
    with _scoped(None, name, attributes) as scope:
        yield scope


def spanned(name: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function so each call runs in a :func:`span` named ``name``."""

    def wrap(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def traced(*args: P.args, **kwargs: P.kwargs) -> T:
            with span(name):
                return function(*args, **kwargs)

        return traced

    return wrap


def remote_failure(provider: str, reason: str) -> None:
    """Count a remote request given up."""
    record(failures=1)
    api = otel.api()
    if api is not None:
        api.failures.add(1, {"rerank_kit.provider": provider, "reason": reason})


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, for work sent to another process (Dask)."""
    api = otel.api()
    out: dict[str, str] = {}
    if api is not None:
        api.propagate.inject(out)
    return out


@contextlib.contextmanager
def traced_from(headers: Mapping[str, str] | None, name: str, **attrs: Any) -> Iterator[None]:
    """A span named ``name`` under the trace context in ``headers`` (from :func:`carrier`)."""
    api = otel.api()
    if api is None or not headers:
        yield
        return
    token = api.context.attach(api.propagate.extract(dict(headers)))
    try:
        with api.tracer.start_as_current_span(name, attributes=attrs):
            yield
    finally:
        api.context.detach(token)
