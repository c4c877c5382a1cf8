"""``load_reranker``: build any reranker from one string."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rerank_kit._core.assembly.similarity import Embedder, set_embedder_loader
from rerank_kit._core.protocol import Reranker
from rerank_kit._plugins import (
    ENTRY_POINT_GROUP,
    build_plugin,
    find_plugin,
    installed_plugins,
    reserve_prefixes,
)

__all__ = [
    "KINDS",
    "REMOTE_KINDS",
    "build_cascade",
    "build_reranker",
    "load_embedder",
    "load_reranker",
]

#: Remote providers (``rerank_kit._rerankers.remote.PROFILES``): hosted APIs and self-hosted engines.
REMOTE_KINDS = (
    "cohere",
    "voyage",
    "jina",
    "pinecone",
    "zeroentropy",
    "tei",
    "infinity",
    "llamacpp",
)
#: Spec prefixes understood by ``load_reranker``.
KINDS = ("cross-encoder", "flashrank", "bi-encoder", "onnx", "onnx-int8", "openvino", *REMOTE_KINDS)
reserve_prefixes(KINDS)
_KEEP = re.compile(r"^(?P<spec>.+?)@(?P<keep>\d+)$")


def _builders() -> dict[str, Callable[..., Reranker]]:
    from rerank_kit._rerankers.bi_encoder import BiEncoderReranker
    from rerank_kit._rerankers.cross_encoder import CrossEncoderReranker
    from rerank_kit._rerankers.flashrank import FlashRankReranker
    from rerank_kit._rerankers.onnx_cross_encoder import OnnxCrossEncoderReranker

    def onnx_int8(model: str, **kwargs: Any) -> Reranker:
        return OnnxCrossEncoderReranker(model, quantize="int8", **kwargs)

    def remote(kind: str) -> Callable[..., Reranker]:
        def build(model: str, **kwargs: Any) -> Reranker:
            from rerank_kit._rerankers.remote import RemoteReranker

            return RemoteReranker(kind, model, **kwargs)

        return build

    def openvino(model: str, **kwargs: Any) -> Reranker:
        return OnnxCrossEncoderReranker(model, backend="openvino", **kwargs)

    return {
        "cross-encoder": CrossEncoderReranker,
        "flashrank": FlashRankReranker,
        "bi-encoder": BiEncoderReranker,
        "onnx": OnnxCrossEncoderReranker,
        "onnx-int8": onnx_int8,
        **{kind: remote(kind) for kind in REMOTE_KINDS},
        "openvino": openvino,
    }


def build_reranker(kind: str, model: str, **kwargs: Any) -> Reranker:
    """Build one reranker of ``kind`` (one of ``KINDS``) for ``model``, passing ``kwargs`` on.

    Example:
        >>> build_reranker("flashrank", "ms-marco-TinyBERT-L-2-v2", cache_dir="/models")  # doctest: +SKIP
    """
    if kind not in KINDS:
        factory = find_plugin(kind)
        if factory is not None:
            return build_plugin(kind, factory, model, kwargs)
        raise ValueError(
            f"unknown reranker kind {kind!r}; expected one of {', '.join(KINDS)}{_plugins_hint()}"
        )
    return _builders()[kind](model, **kwargs)


def _plugins_hint() -> str:
    """The installed plugin prefixes, for an unknown prefix's message."""
    plugins = installed_plugins()
    if not plugins:
        return f"; no plugin prefixes are installed (entry-point group {ENTRY_POINT_GROUP})"
    listed = ", ".join(f"{name} ({where})" for name, where in plugins.items())
    return f"; plugin prefixes: {listed}"


def build_cascade(stages: str | Sequence[tuple[str | Reranker, int | None]]) -> Reranker:
    """Build a cascade from a ``>>`` spec or from ``(spec, keep)`` pairs.

    A pair may hold a ready ``Reranker`` instead of a spec (e.g. a ``ListwiseLLMReranker``,
    which no spec string can describe).

    Example:
        >>> build_cascade([("flashrank:ms-marco-TinyBERT-L-2-v2", 20), ("bi-encoder:all-MiniLM-L6-v2", None)])  # doctest: +SKIP
    """
    from rerank_kit._rerankers.cascade import CascadeReranker, Stage

    if isinstance(stages, str):
        reranker = load_reranker(stages)
        if not isinstance(reranker, CascadeReranker):
            reranker = CascadeReranker([reranker])
        return reranker
    built: list[Stage] = []
    for item in stages:
        if not (
            isinstance(item, (tuple, list))
            and len(item) == 2
            and isinstance(item[0], (str, Reranker))
        ):
            raise TypeError(
                f"each cascade stage must be a (spec, keep) or (reranker, keep) pair, got {item!r}"
            )
        model = item[0] if isinstance(item[0], Reranker) else _load_single(item[0], {})
        built.append(Stage(model, item[1]))
    return CascadeReranker(built)


def _load_single(spec: str, kwargs: dict[str, Any]) -> Reranker:
    kind, sep, model = spec.partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    factory = find_plugin(kind) if sep and kind not in KINDS else None
    if factory is not None:  # a plugin's prefix: the model part and kwargs are its own
        return build_plugin(kind, factory, model, kwargs)
    if not sep or kind not in KINDS:
        raise ValueError(
            f"unknown reranker spec {spec!r}: expected 'KIND:MODEL' with KIND one of "
            f"{', '.join(KINDS)} (e.g. 'flashrank:ms-marco-TinyBERT-L-2-v2'), or stages joined "
            f"by '>>' for a cascade{_plugins_hint()}"
        )
    if kwargs.get("instruction") is not None and kind in ("flashrank", "bi-encoder", *REMOTE_KINDS):
        raise ValueError(f"instruction= applies to cross-encoder specs, not to {spec!r}")
    if not model:
        if kind == "flashrank":
            model = "ms-marco-TinyBERT-L-2-v2"
        else:
            raise ValueError(f"reranker spec {spec!r} names no model after '{kind}:'")
    return build_reranker(kind, model, **kwargs)


def load_reranker(spec: str, **kwargs: Any) -> Reranker:
    """Build a reranker from a one-line spec, so swapping models is a one-line change.

    Spellings:
        - ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"`` (Hub id or local path)
        - ``"flashrank:ms-marco-TinyBERT-L-2-v2"`` (FlashRank name or local folder)
        - ``"bi-encoder:sentence-transformers/all-MiniLM-L6-v2"`` (Hub id or local path)
        - hosted APIs: ``"cohere:rerank-v3.5"``, ``"voyage:rerank-2.5"``,
          ``"jina:jina-reranker-v2-base-multilingual"``, ``"pinecone:bge-reranker-v2-m3"``,
          ``"zeroentropy:zerank-1-small"`` (key from the provider's variable, e.g.
          ``COHERE_API_KEY``); self-hosted engines: ``"tei:http://HOST:PORT"``,
          ``"infinity:http://HOST:PORT#MODEL"``, ``"llamacpp:http://HOST:PORT"`` (llama.cpp's
          ``llama-server --reranking``; ``#MODEL`` optional) (see ``RemoteReranker``)
        - ``"onnx:ID_OR_PATH"``, ``"onnx-int8:ID_OR_PATH"`` (cross-encoder on ONNX Runtime) and
          ``"openvino:ID_OR_PATH"`` (cross-encoder on OpenVINO)
        - a plugin's prefix: ``"PREFIX:MODEL"`` for a prefix an installed distribution declares
          in the ``rerank_kit.rerankers`` entry-point group, or one given to
          ``register_reranker`` (built-in prefixes win over plugins)
        - cascade: stages joined by ``>>``, each ending in ``@KEEP`` (how many it passes on;
          optional on the last stage), e.g.
          ``"flashrank:ms-marco-TinyBERT-L-2-v2@20 >> cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``

    Args:
        spec: The spec string.
        **kwargs: Passed to the reranker's constructor (single-model specs only), e.g.
            ``cache_dir=`` for FlashRank, ``batch_size=``, or ``api_key=``/``base_url=``/
            ``timeout=``/``max_retries=``/``max_response_bytes=``/``allow_insecure_http=``
            for remote specs.

    Returns:
        A ``Reranker``.

    Example:
        >>> from rerank_kit import load_reranker  # doctest: +SKIP
        >>> reranker = load_reranker("bi-encoder:all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> reranker.rerank("query", ["a", "b"], top_n=1)  # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("reranker spec must be a non-empty string like 'flashrank:NAME'")
    parts = [p.strip() for p in spec.split(">>")]
    if len(parts) == 1:
        return _load_single(parts[0], kwargs)
    if kwargs:
        raise ValueError("keyword arguments apply to single-model specs, not cascades")
    from rerank_kit._rerankers.cascade import CascadeReranker, Stage

    stages: list[Stage] = []
    for i, part in enumerate(parts):
        match = _KEEP.match(part)
        keep = int(match["keep"]) if match else None
        sub = match["spec"].strip() if match else part
        if keep is None and i < len(parts) - 1:
            raise ValueError(
                f"cascade stage {i + 1} ({part!r}) needs '@KEEP', how many candidates it passes on"
            )
        stages.append(Stage(_load_single(sub, {}), keep))
    return CascadeReranker(stages)


def load_embedder(spec: str) -> Embedder:
    """The embedder a ``similarity_model`` spec names: a ``"bi-encoder:..."`` spec or a model name.

    A bare name reads as ``"bi-encoder:<name>"``. Context assembly (in ``rerank_kit._core``,
    which imports no family) resolves spec strings through this function, which
    ``rerank_kit`` installs with ``set_embedder_loader`` when this module is imported.

    Example:
        >>> load_embedder("cross-encoder:m")
        Traceback (most recent call last):
        ...
        ValueError: similarity_model must name a bi-encoder, got 'cross-encoder:m'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"similarity_model must be a non-empty spec string, got {spec!r}")
    kind = spec.partition(":")[0].strip().lower() if ":" in spec else ""
    if kind and kind != "bi-encoder" and kind in KINDS:
        raise ValueError(f"similarity_model must name a bi-encoder, got {spec!r}")
    loaded = load_reranker(spec if kind == "bi-encoder" else f"bi-encoder:{spec}")
    if not isinstance(loaded, Embedder):
        raise ValueError(f"similarity_model must name a bi-encoder, got {spec!r}")
    return loaded


# the core resolves similarity_model specs through this module (it names no family itself)
set_embedder_loader(load_embedder)
