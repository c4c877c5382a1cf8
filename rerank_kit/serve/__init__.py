"""``rerank-kit serve``: rerankers as a Cohere-, Jina- and TEI-compatible HTTP endpoint.

Needs the ``serve`` extra (Starlette, uvicorn, prometheus-client): ``pip install
"rerank-kit[serve]"``. Importing this package imports none of them; ``create_app`` and ``serve``
do. See docs/serve.md.

Example:
    >>> from rerank_kit.serve import ModelEntry, ServeConfig
    >>> ServeConfig((ModelEntry("fast", "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"),)).default
    'fast'
"""

from __future__ import annotations

from typing import Any

from rerank_kit.serve.auth import ApiKeys, load_api_keys
from rerank_kit.serve.config import Batching, Limits, ModelEntry, ServeConfig

__all__ = [
    "ApiKeys",
    "Batching",
    "Limits",
    "ModelEntry",
    "ServeConfig",
    "create_app",
    "load_api_keys",
    "serve",
]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The Starlette app (see ``rerank_kit.serve.app.create_app``)."""
    from rerank_kit.serve.app import create_app as build

    return build(*args, **kwargs)


def serve(*args: Any, **kwargs: Any) -> None:
    """Run the server under uvicorn (see ``rerank_kit.serve._cli.serve``)."""
    from rerank_kit.serve._cli import serve as run

    run(*args, **kwargs)
