"""API keys for ``rerank-kit serve``: Bearer tokens from a file or one environment variable.

Keys are compared in constant time (``hmac.compare_digest``, against every key, whatever
matched) and never appear in a log line, a ``repr`` or an error body.

Example:
    >>> keys = ApiKeys(["sk-one", "sk-two"])
    >>> keys.check("Bearer sk-two"), keys.check("Bearer nope"), keys.check(None)
    (True, False, False)
    >>> keys
    ApiKeys(2 keys)
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ApiKeys", "load_api_keys"]

_MAX_KEY_FILE = 1_000_000


class ApiKeys:
    """The accepted keys (empty: no key needed)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        cleaned = [k.strip() for k in keys if k and k.strip()]
        for key in cleaned:
            if any(c.isspace() for c in key) or not key.isprintable():
                raise ValueError("an API key must be one printable word (no spaces)")
        self._keys = tuple(k.encode("utf-8") for k in cleaned)

    @property
    def required(self) -> bool:
        """True when requests must carry a key."""
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    def check(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries an accepted key.

        ``Bearer KEY`` (the scheme is case-insensitive). Every key is compared, so the time
        taken does not say which key, or how much of one, matched.
        """
        if not self._keys:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        given = token.strip().encode("utf-8")
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given, key)
        return ok


def load_api_keys(key_file: str | Path | None = None, key_env: str | None = None) -> ApiKeys:
    """The keys of ``--api-key-file`` (one per line, ``#`` comments) and/or ``--api-key-env``.

    The variable holds one key or several separated by commas or whitespace.

    Raises:
        ValueError: The file cannot be read, or the variable is unset or empty (a server
            meant to need a key never starts open).
    """
    keys: list[str] = []
    if key_file is not None:
        path = Path(key_file).expanduser()
        try:
            with path.open("rb") as fh:
                raw = fh.read(_MAX_KEY_FILE + 1)
        except OSError as exc:
            raise ValueError(f"cannot read the API key file {path}: {exc.strerror}") from None
        if len(raw) > _MAX_KEY_FILE:
            raise ValueError(f"the API key file {path} is over {_MAX_KEY_FILE} bytes")
        for line in raw.decode("utf-8", errors="strict").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
        if not keys:
            raise ValueError(f"the API key file {path} holds no key")
    if key_env is not None:
        value = os.environ.get(key_env, "")
        found = [k for k in value.replace(",", " ").split() if k]
        if not found:
            raise ValueError(f"the environment variable {key_env} holds no API key")
        keys.extend(found)
    return ApiKeys(keys)
