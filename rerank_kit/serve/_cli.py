"""``rerank-kit serve``: the command line, and running the app under uvicorn.

Example:
    rerank-kit serve --model fast=onnx:cross-encoder/ms-marco-MiniLM-L-12-v2 --port 8080
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import logging
import math
from typing import Any

from rerank_kit._core.errors import missing_extra
from rerank_kit.serve.auth import ApiKeys, load_api_keys
from rerank_kit.serve.config import Batching, Limits, ServeConfig, parse_model, read_config_file

__all__ = ["add_arguments", "build_config", "run", "serve"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rerank-kit serve``."""
    parser.description = (
        "Serve rerankers over HTTP: Cohere /v2/rerank, Cohere v1 and Jina /v1/rerank, TEI "
        "/rerank; /health, /ready, /metrics, /openapi.json."
    )
    add = parser.add_argument
    add(
        "--model",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a model to serve: NAME=SPEC (a load_reranker spec or a saved pipeline .json); "
        "repeat for several; SPEC alone is served under its own name",
    )
    add("--config", metavar="FILE", help="a JSON serve config (models, limits, batching)")
    add("--default-model", metavar="NAME", help="the model of requests that name none")
    add(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    add("--port", type=int, default=8080, help="port (default 8080)")
    add("--api-key-file", metavar="FILE", help="accepted Bearer keys, one per line")
    add("--api-key-env", metavar="VAR", help="environment variable holding the accepted key(s)")
    add("--max-documents", type=int, help="most documents per request (default 1000)")
    add("--max-body-bytes", type=int, help="most request body bytes (default 4 MiB)")
    add(
        "--max-tokens",
        type=int,
        help="most tokens per request, query and documents (default: none)",
    )
    add("--max-query-chars", type=int, help="most characters of a query (default 20000)")
    add("--batch-window-ms", type=float, help="wait this long for requests to batch (default 2)")
    add("--max-batch-pairs", type=int, help="most pairs per model call (default 512)")
    add("--max-queue", type=int, help="most queued requests per model; then 429 (default 256)")
    add("--deadline", type=float, help="seconds before a request gets 504 (default 30)")
    add(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this origin by CORS (repeat; default: CORS off)",
    )
    add(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds to let accepted requests finish (default 30)",
    )
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def build_config(args: argparse.Namespace) -> ServeConfig:
    """The ``ServeConfig`` of the command line (over a ``--config`` file's values)."""
    base: dict[str, Any] = read_config_file(args.config) if args.config else {}
    models = tuple(parse_model(m) for m in args.model) or base.get("models", ())
    limits = base.get("limits", Limits())
    batching = base.get("batching", Batching())
    limits = Limits(
        **{
            **limits.__dict__,
            **_given(
                {
                    "max_documents": args.max_documents,
                    "max_body_bytes": args.max_body_bytes,
                    "max_tokens": args.max_tokens,
                    "max_query_chars": args.max_query_chars,
                }
            ),
        }
    )
    batching = Batching(
        **{
            **batching.__dict__,
            **_given(
                {
                    "window_ms": args.batch_window_ms,
                    "max_pairs": args.max_batch_pairs,
                    "max_queue": args.max_queue,
                    "deadline_s": args.deadline,
                }
            ),
        }
    )
    return ServeConfig(
        models=tuple(models),
        default_model=args.default_model or base.get("default_model"),
        limits=limits,
        batching=batching,
        cors_origins=tuple(args.cors_origin) or base.get("cors_origins", ()),
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_keys: ApiKeys | None = None,
    models: Any = None,
    graceful_timeout: float = 30.0,
    log_level: str = "info",
) -> None:
    """Run the server until SIGINT/SIGTERM (accepted requests finish first)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise missing_extra("serve", "uvicorn", exc) from exc
    from rerank_kit.serve.app import create_app

    keys = api_keys or ApiKeys()
    if not keys.required and not _loopback(host):
        logger.warning("serving on %s without an API key: anyone who reaches it can use it", host)
    app = create_app(config, models, api_keys=keys)
    # uvicorn's own logging set-up, with rerank-kit's loggers on its handler (the server's log)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["rerank_kit"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    uvicorn.run(
        app,
        log_config=log_config,
        host=host,
        port=port,
        backlog=2048,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, math.ceil(graceful_timeout)),
        server_header=False,
    )


def run(args: argparse.Namespace) -> int:
    """``rerank-kit serve``."""
    try:
        config = build_config(args)
        keys = load_api_keys(args.api_key_file, args.api_key_env)
    except ValueError as exc:
        raise SystemExit(f"rerank-kit serve: error: {exc}") from None
    serve(
        config,
        host=args.host,
        port=args.port,
        api_keys=keys,
        graceful_timeout=args.graceful_timeout,
        log_level=args.log_level,
    )
    return 0
