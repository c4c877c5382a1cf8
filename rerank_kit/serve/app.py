"""The Starlette app of ``rerank-kit serve``: routes, limits, keys, batching, metrics.

Routes: ``POST /v2/rerank`` (Cohere v2), ``POST /v1/rerank`` (Cohere v1 and Jina),
``POST /rerank`` (TEI), ``GET /health`` (the process answers), ``GET /ready`` (every model is
loaded and the server is not draining), ``GET /metrics`` (Prometheus), ``GET /openapi.json``,
``GET /v1/models``. Only the rerank routes need a key.

Models load in a worker thread after the server starts listening, so ``/health`` answers at
once and ``/ready`` turns 200 when they are loaded (rerank requests get 503 until then). On
SIGTERM, uvicorn stops accepting connections and lets every accepted request finish before the
app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerank_kit._core.errors import RerankError, missing_extra
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.ranking import RerankOptions
from rerank_kit._pipeline import Pipeline
from rerank_kit.serve.auth import ApiKeys
from rerank_kit.serve.batcher import Batcher, DeadlineExceeded, Overloaded
from rerank_kit.serve.config import ServeConfig
from rerank_kit.serve.limits import check_limits, cut_documents, token_count
from rerank_kit.serve.metrics import Metrics
from rerank_kit.serve.openapi import openapi_document
from rerank_kit.serve.schemas import SCHEMAS, ApiError, Parsed, Schema

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["Served", "create_app", "load_models"]

logger = logging.getLogger(__name__)

Loaded = Reranker | Pipeline


@dataclass
class Served:
    """One served model: its name, the reranker, the pipeline settings it runs with."""

    name: str
    reranker: Reranker
    pipeline: Pipeline | None
    batcher: Batcher

    def options(self, top_n: int | None) -> RerankOptions:
        """``rerank`` options: the pipeline's tuned ones, cut further by the request's top_n."""
        if self.pipeline is None:
            return {"top_n": top_n}
        options = self.pipeline.options()
        tuned = options.get("top_n")
        if top_n is not None:
            options["top_n"] = top_n if tuned is None else min(top_n, tuned)
        return options


def load_models(config: ServeConfig, **kwargs: Any) -> dict[str, Loaded]:
    """Build every model ``config`` names (a pipeline file -> ``load_pipeline``)."""
    from rerank_kit._pipeline import load_pipeline
    from rerank_kit._registry import load_reranker

    out: dict[str, Loaded] = {}
    for entry in config.models:
        start = time.perf_counter()
        path = entry.pipeline_file
        out[entry.name] = (
            load_pipeline(path, **kwargs) if path else load_reranker(entry.spec, **kwargs)
        )
        logger.info("model %r loaded in %.1f s", entry.name, time.perf_counter() - start)
    return out


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    from starlette.responses import Response

    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(data, status, headers=dict(headers or {}), media_type="application/json")


class _State:
    """What the routes share: the models once loaded, the keys, the metrics, readiness."""

    def __init__(
        self,
        config: ServeConfig,
        keys: ApiKeys,
        loader: Callable[[], Mapping[str, Loaded]],
    ) -> None:
        self.config = config
        self.keys = keys
        self.loader = loader
        self.models: dict[str, Served] = {}
        self.ready = False
        self.draining = False
        self.load_error: str | None = None
        self.metrics = Metrics(cache_info=self.cache_info)

    def cache_info(self) -> dict[str, dict[str, int]]:
        return {name: s.reranker.cache_info() for name, s in list(self.models.items())}

    async def load(self) -> None:
        try:
            loaded = await asyncio.to_thread(self.loader)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error("loading the models failed: %s", self.load_error)
            return
        for name in (m.name for m in self.config.models):
            item = loaded[name]
            pipeline = item if isinstance(item, Pipeline) else None
            reranker = item.reranker if isinstance(item, Pipeline) else item
            gauge = self.metrics.queue_depth.labels(name)
            batcher = Batcher(
                name,
                reranker,
                self.config.batching,
                on_batch=functools.partial(self.metrics.observe_batch, name),
                on_depth=gauge.set,
            )
            batcher.start()
            self.models[name] = Served(name, reranker, pipeline, batcher)
            logger.info(
                "serving %r (%s)%s",
                name,
                reranker.name,
                "" if batcher.cross_request else ": one request per model call (batch-dependent)",
            )
        self.ready = True

    async def stop(self) -> None:
        self.draining = True
        for served in self.models.values():
            await served.batcher.stop()


async def _read_body(request: Request, limit: int | None) -> bytes:
    declared = request.headers.get("content-length")
    if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is {declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit is not None and size > limit:
            raise ApiError(413, f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None


async def _rerank(state: _State, schema: Schema, request: Request) -> tuple[Response, str]:
    """One rerank request: (the response, the served model's name for metrics)."""
    if not state.keys.check(request.headers.get("authorization")):
        raise ApiError(401, "invalid or missing API key (Authorization: Bearer KEY)")
    if state.load_error is not None:
        raise ApiError(503, f"the models failed to load: {state.load_error}")
    if not state.ready or state.draining:
        what = "shutting down" if state.draining else "loading its models"
        raise ApiError(503, f"the server is {what}", {"Retry-After": "1"})
    limits = state.config.limits
    raw = await _read_body(request, limits.max_body_bytes)
    try:
        parsed: Parsed = schema.parse(_parse_json(raw))
    except ApiError as exc:
        raise ApiError(
            schema.invalid_status if exc.status == 400 else exc.status, exc.message
        ) from None
    name = parsed.model or state.config.default
    served = state.models.get(name)
    if served is None:
        served_names = ", ".join(state.models)
        raise ApiError(404, f"model {name!r} is not served here (served: {served_names})")
    tokens = check_limits(parsed, limits, served.reranker, schema)
    if parsed.max_tokens_per_doc is not None:
        parsed.texts = cut_documents(parsed.texts, parsed.max_tokens_per_doc, served.reranker)
    ranked = await served.batcher.submit(parsed.query, parsed.texts, served.options(parsed.top_n))
    if schema.name == "tei" and not parsed.truncate and any(r.truncated for r in ranked):
        raise ApiError(
            413, "a text with the query is longer than the model's limit; send truncate=true"
        )
    if tokens is None and schema.name == "cohere-v1":
        tokens = token_count(parsed, served.reranker)
    return _json(schema.answer(parsed, ranked, name, tokens)), name


def create_app(
    config: ServeConfig,
    models: Mapping[str, Loaded] | None = None,
    *,
    api_keys: ApiKeys | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
) -> Starlette:
    """The ASGI app serving ``config``'s models.

    Args:
        config: Models, limits, batching, CORS.
        models: Rerankers or pipelines already built, by served name (tests; default: built
            from ``config`` when the server starts).
        api_keys: Accepted Bearer keys (default: none needed).
        load_kwargs: Passed to ``load_reranker`` / ``load_pipeline`` (e.g. ``threads``).
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.middleware.cors import CORSMiddleware
        from starlette.responses import Response
        from starlette.routing import Route
    except ImportError as exc:
        raise missing_extra("serve", "starlette", exc) from exc

    def loader() -> Mapping[str, Loaded]:
        if models is not None:
            missing = [m.name for m in config.models if m.name not in models]
            if missing:
                raise ValueError(f"no reranker given for {', '.join(missing)}")
            return models
        return load_models(config, **dict(load_kwargs or {}))

    state = _State(config, api_keys or ApiKeys(), loader)

    def endpoint(schema: Schema) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            start = time.perf_counter()
            name, status = "-", 500
            try:
                response, name = await _rerank(state, schema, request)
            except ApiError as exc:
                response = _json(schema.error(exc.status, exc.message), exc.status, exc.headers)
            except Overloaded as exc:
                headers = {"Retry-After": str(exc.retry_after)}
                response = _json(schema.error(429, str(exc)), 429, headers)
            except DeadlineExceeded as exc:
                response = _json(schema.error(504, str(exc)), 504)
            except (RerankError, ValueError) as exc:
                logger.warning("%s: %s", schema.route, exc)
                response = _json(schema.error(500, f"reranking failed: {exc}"), 500)
            except Exception:  # a bug: logged whole, answered in the schema's shape
                logger.exception("%s failed", schema.route)
                response = _json(schema.error(500, "internal error"), 500)
            status = response.status_code
            state.metrics.observe_request(schema.route, name, status, time.perf_counter() - start)
            return response

        return handle

    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def ready(request: Request) -> Response:
        if state.ready and not state.draining:
            return _json({"status": "ready", "models": list(state.models)})
        reason = state.load_error or ("draining" if state.draining else "loading")
        return _json({"status": "not ready", "reason": reason}, 503, {"Retry-After": "1"})

    async def metrics(request: Request) -> Response:
        body, content_type = state.metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    async def openapi(request: Request) -> Response:
        return _json(openapi_document([m.name for m in config.models]))

    async def list_models(request: Request) -> Response:
        data = [{"id": m.name, "object": "model", "owned_by": "rerank-kit"} for m in config.models]
        return _json({"object": "list", "data": data})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(state.load())
        try:
            yield
        finally:
            await loading
            await state.stop()

    routes = [Route(s.route, endpoint(s), methods=["POST"]) for s in SCHEMAS.values()]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
    ]
    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.serve = state
    return app
