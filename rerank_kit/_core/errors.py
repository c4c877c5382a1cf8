"""Exceptions raised by rerank-kit."""

from __future__ import annotations

__all__ = ["ModelNotAvailableError", "RerankError"]


class RerankError(RuntimeError):
    """Base class of the errors rerank-kit raises on purpose (bad input gets ``ValueError``/``TypeError``)."""


class ModelNotAvailableError(RerankError, OSError):
    """A model is neither a local folder nor in the local cache, and cannot be fetched.

    Raised quickly (no network retry loop) with a message that names the model and says how to
    pass a local path instead.
    """


def missing_extra(extra: str, package: str, exc: ImportError) -> ImportError:
    """Build the ``ImportError`` raised when an optional dependency is missing."""
    err = ImportError(
        f"{package} is needed here but is not installed. "
        f'Install it with: pip install "rerank-kit[{extra}]"'
    )
    err.__cause__ = exc
    return err


def require(module: str, *, extra: str, package: str) -> None:
    """Raise the install-hint ``ImportError`` if ``module`` is not importable (without importing it)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or sys.modules[module] is None
        found = False
    if not found:
        raise missing_extra(extra, package, ImportError(f"No module named {module!r}"))
