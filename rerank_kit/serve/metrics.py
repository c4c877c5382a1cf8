"""Prometheus metrics of one ``rerank-kit serve`` app (its own registry, never the global one).

Names (all prefixed ``rerank_kit_``; ``model`` is the served name clients pass):

- ``serve_requests_total{route, model, status}``: requests answered, by HTTP status;
- ``serve_request_seconds{route, model}``: latency histogram, body read to answer;
- ``pairs_scored_total{model}``: (query, document) pairs scored; the OpenTelemetry metrics of
  the observability issue use the same words (``pairs scored``) for the same count;
- ``serve_batch_pairs{model}`` / ``serve_batch_requests{model}``: size of each model call;
- ``serve_queue_depth{model}``: requests waiting;
- ``score_cache_hits_total`` / ``score_cache_misses_total{model}``: the model's score cache
  (``Reranker.cache_info``), read when scraped.

Example:
    >>> m = Metrics()
    >>> m.observe_request("/v2/rerank", "fast", 200, 0.012)
    >>> b"rerank_kit_serve_requests_total" in m.render()[0]
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rerank_kit._core.errors import missing_extra

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PAIR_BUCKETS = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
_REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """The counters and histograms of one app; ``render()`` is the ``/metrics`` body."""

    def __init__(self, cache_info: Callable[[], Mapping[str, Mapping[str, int]]] | None = None):
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:
            raise missing_extra("serve", "prometheus-client", exc) from exc
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "rerank_kit_serve_requests",
            "Requests answered, by route, model and HTTP status.",
            ("route", "model", "status"),
            registry=reg,
        )
        self.latency = Histogram(
            "rerank_kit_serve_request_seconds",
            "Request latency in seconds, body read to answer.",
            ("route", "model"),
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.pairs = Counter(
            "rerank_kit_pairs_scored", "Query-document pairs scored.", ("model",), registry=reg
        )
        self.batch_pairs = Histogram(
            "rerank_kit_serve_batch_pairs",
            "Pairs per model call (requests batched together).",
            ("model",),
            buckets=_PAIR_BUCKETS,
            registry=reg,
        )
        self.batch_requests = Histogram(
            "rerank_kit_serve_batch_requests",
            "Requests per model call.",
            ("model",),
            buckets=_REQUEST_BUCKETS,
            registry=reg,
        )
        self.queue_depth = Gauge(
            "rerank_kit_serve_queue_depth", "Requests waiting, per model.", ("model",), registry=reg
        )
        if cache_info is not None:
            reg.register(_CacheCollector(cache_info))

    def observe_request(self, route: str, model: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(route, model, str(status)).inc()
        self.latency.labels(route, model).observe(seconds)

    def observe_batch(self, model: str, requests: int, pairs: int) -> None:
        """Count one model call of ``requests`` requests holding ``pairs`` pairs."""
        self.pairs.labels(model).inc(pairs)
        self.batch_pairs.labels(model).observe(pairs)
        self.batch_requests.labels(model).observe(requests)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text exposition."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _CacheCollector:
    """Score-cache hits and misses per served model, read from the rerankers when scraped."""

    def __init__(self, cache_info: Callable[[], Mapping[str, Mapping[str, int]]]) -> None:
        self._cache_info = cache_info

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        hits = CounterMetricFamily(
            "rerank_kit_score_cache_hits", "Score cache hits.", labels=("model",)
        )
        misses = CounterMetricFamily(
            "rerank_kit_score_cache_misses", "Score cache misses.", labels=("model",)
        )
        for model, info in self._cache_info().items():
            hits.add_metric((model,), float(info.get("hits", 0)))
            misses.add_metric((model,), float(info.get("misses", 0)))
        yield hits
        yield misses
