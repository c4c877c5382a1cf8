"""Spec prefixes from other packages: the ``rerank_kit.rerankers`` entry points, and in-process.

A distribution adds a prefix to ``load_reranker`` (and so to the CLI's ``--reranker``, to
``PipelineConfig`` and to cascade specs) by declaring an entry point in the group
``rerank_kit.rerankers``; in its ``pyproject.toml``::

    [project.entry-points."rerank_kit.rerankers"]
    keywords = "my_package.rerank:KeywordReranker"

The entry point's name is the prefix; its object is a ``Reranker`` subclass or a factory,
called as ``factory(model, **kwargs)`` with the spec's text after ``PREFIX:`` and the keyword
arguments given to ``load_reranker``. The group is read once, on the first spec whose prefix
is not built in; an entry point is imported only when its prefix is used. Built-in prefixes
win: a plugin that claims one is ignored with a warning. ``register_reranker`` adds a prefix
in-process (a plugin of the running program, or a test).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from rerank_kit._core.errors import RerankError
from rerank_kit._core.protocol import Reranker

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "Factory",
    "build_plugin",
    "find_plugin",
    "installed_plugins",
    "register_reranker",
    "reserve_prefixes",
]

logger = logging.getLogger(__name__)

#: The entry-point group a distribution declares its spec prefixes in.
ENTRY_POINT_GROUP = "rerank_kit.rerankers"

#: What builds a plugin's reranker: ``factory(model, **kwargs)`` (a ``Reranker`` class is one).
Factory = Callable[..., Reranker]

_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_lock = threading.Lock()
_registered: dict[str, Factory] = {}  # register_reranker
_discovered: dict[str, EntryPoint] | None = None  # the group, read once
_loaded: dict[str, Factory] = {}  # entry points imported so far


_builtin: set[str] = set()  # the built-in prefixes, from _registry (which imports this module)


def reserve_prefixes(prefixes: Collection[str]) -> None:
    """Mark ``prefixes`` as built in: no plugin may claim them (``_registry`` calls this)."""
    with _lock:
        _builtin.update(prefixes)


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValueError(
            f"a reranker spec prefix is lower-case letters, digits, '_', '.' or '-' (starting "
            f"with a letter or digit), got {prefix!r}"
        )
    return prefix


def register_reranker(prefix: str, factory: Callable[..., Reranker]) -> None:
    """Make ``load_reranker("PREFIX:MODEL")`` build ``factory(MODEL, **kwargs)``, in-process.

    The ``rerank_kit.rerankers`` entry point does the same for an installed distribution (see
    ``docs/guides/extending.md``); this is for a program's own family, or a test. Registering
    a prefix again replaces the factory; a registered prefix wins over an entry point of the
    same name.

    Args:
        prefix: The spec prefix (lower case; not a built-in one such as ``"onnx"``).
        factory: A ``Reranker`` subclass, or a callable ``factory(model, **kwargs)`` that
            returns a ``Reranker``; ``model`` is the spec's text after ``PREFIX:`` (maybe
            empty).

    Raises:
        ValueError: A malformed or built-in prefix.
        TypeError: A factory that is not callable.

    Example:
        >>> from rerank_kit import load_reranker, register_reranker
        >>> from rerank_kit.testing import FakeReranker
        >>> register_reranker("my-words", lambda model, **kwargs: FakeReranker(f"my-words:{model}"))
        >>> load_reranker("my-words:x").rerank("red apple", ["pear", "apple"], top_n=1)[0].index
        1
    """
    _check_prefix(prefix)
    if prefix in _builtin:
        raise ValueError(f"{prefix!r} is a built-in reranker spec prefix; choose another")
    if not callable(factory):
        raise TypeError(f"register_reranker({prefix!r}, ...) needs a callable, got {factory!r}")
    with _lock:
        if prefix in _registered:
            logger.debug("reranker spec prefix %r registered again: replaced", prefix)
        _registered[prefix] = factory


def _entry_points() -> dict[str, EntryPoint]:
    """The group's entry points by prefix, read once (built-in prefixes left out, warned)."""
    global _discovered
    with _lock:
        if _discovered is not None:
            return _discovered
        from importlib import metadata  # here: importing rerank_kit stays cheap

        found: dict[str, EntryPoint] = {}
        builtin = set(_builtin)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            where = _source(ep)
            if ep.name in builtin:
                logger.warning(
                    "reranker plugin %s (%s) claims the built-in spec prefix %r: ignored, "
                    "the built-in one is used",
                    ep.value,
                    where,
                    ep.name,
                )
            elif not _PREFIX.match(ep.name):
                logger.warning(
                    "reranker plugin %s (%s) has a malformed spec prefix %r: ignored",
                    ep.value,
                    where,
                    ep.name,
                )
            elif ep.name in found:
                logger.warning(
                    "reranker spec prefix %r is declared twice (%s and %s): the first is used",
                    ep.name,
                    _source(found[ep.name]),
                    where,
                )
            else:
                found[ep.name] = ep
        _discovered = found
        return found


def _source(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"from {dist.name} {dist.version}" if dist is not None else "an entry point"


def installed_plugins() -> dict[str, str]:
    """Plugin spec prefixes and where each comes from (entry points, then registered ones).

    Example:
        >>> "onnx" in installed_plugins()  # built-in prefixes are not plugins
        False
    """
    out = {name: f"{ep.value}, {_source(ep)}" for name, ep in _entry_points().items()}
    with _lock:
        out.update({name: f"{_describe(f)}, registered" for name, f in _registered.items()})
    return dict(sorted(out.items()))


def _describe(factory: Factory) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}:{getattr(factory, '__qualname__', type(factory).__name__)}"


def find_plugin(prefix: str) -> Factory | None:
    """The factory of a plugin prefix (importing its entry point once), or ``None``.

    Raises:
        RerankError: The entry point's module cannot be imported, or its object is not
            callable (the message names the plugin and its distribution).
    """
    with _lock:
        factory = _registered.get(prefix) or _loaded.get(prefix)
    if factory is not None:
        return factory
    ep = _entry_points().get(prefix)
    if ep is None:
        return None
    try:
        obj = ep.load()
    except Exception as exc:  # an ImportError, or anything its module raises on import
        raise RerankError(
            f"reranker plugin {prefix!r} ({ep.value}, {_source(ep)}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(obj):
        raise RerankError(
            f"reranker plugin {prefix!r} ({ep.value}, {_source(ep)}) is not a Reranker class "
            f"or a factory: got {type(obj).__name__}"
        )
    with _lock:
        _loaded[prefix] = obj
    return obj


def build_plugin(prefix: str, factory: Factory, model: str, kwargs: dict[str, Any]) -> Reranker:
    """``factory(model, **kwargs)``, checked to be a ``Reranker``."""
    reranker = factory(model, **kwargs)
    if not isinstance(reranker, Reranker):
        raise RerankError(
            f"reranker plugin {prefix!r} ({_describe(factory)}) returned "
            f"{type(reranker).__name__}, not a rerank_kit.Reranker"
        )
    return reranker


def _reset() -> None:
    """Forget what was read and registered (tests)."""
    global _discovered
    with _lock:
        _discovered = None
        _registered.clear()
        _loaded.clear()
