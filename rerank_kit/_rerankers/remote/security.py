"""Keys and credentials of remote rerankers: held out of reprs and masked where shown.

A hosted provider's key is never sent over plain ``http://`` without an explicit opt-in.

- :class:`Secret` holds a key; its ``repr``/``str`` show ``<secret>``.
- :func:`mask_credentials` replaces the ``user:pass@`` of every URL in a text by ``***@``.
- :func:`transport_check` is the one decision on ``http://``: refuse (hosted provider, not
  loopback, no ``allow_insecure_http=True``), warn (a key or URL credentials sent in clear to a
  self-hosted engine off this machine) or accept.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

__all__ = [
    "INSECURE_HTTP_OPT_IN",
    "Secret",
    "is_loopback",
    "mask_credentials",
    "transport_check",
    "url_has_credentials",
]

#: The one spelling of the opt-in, in the engine, the adapters and the docs.
INSECURE_HTTP_OPT_IN = "allow_insecure_http"

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s]*)@")


class Secret:
    """Holds a key or a credential-bearing string; its ``repr`` and ``str`` never show it.

    Example:
        >>> Secret("sk-123")
        <secret>
        >>> Secret("sk-123").value
        'sk-123'
    """

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def mask_credentials(text: str) -> str:
    """``text`` with the ``user:pass@`` part of every URL in it replaced by ``***@``.

    Example:
        >>> mask_credentials("tei:http://bob:hunter2@gpu:8080/rerank")
        'tei:http://***@gpu:8080/rerank'
        >>> mask_credentials("tei:http://gpu:8080")
        'tei:http://gpu:8080'
    """
    return _USERINFO.sub(r"\g<scheme>***@", text)


def url_has_credentials(url: str) -> bool:
    """True if ``url`` carries a ``user[:pass]@`` part.

    Example:
        >>> url_has_credentials("http://a:b@host"), url_has_credentials("http://host")
        (True, False)
    """
    return _USERINFO.search(url) is not None


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("api.cohere.com")
        (True, True, False)
    """
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_check(
    provider: str, url: str, *, hosted: bool, sends_secret: bool, allow_insecure_http: bool
) -> tuple[str, str] | None:
    """The decision on sending to ``url``: ``None`` (fine) or ``(action, message)``.

    ``action`` is ``"refuse"`` (a hosted provider's key over plain ``http://`` to a host that
    is not loopback, without the opt-in) or ``"warn"`` (a self-hosted engine's key or URL
    credentials over plain ``http://`` off this machine: allowed, said once). ``https://``,
    loopback hosts and the opt-in need nothing.

    Example:
        >>> transport_check("cohere", "http://proxy:8080/v2/rerank", hosted=True,
        ...                 sends_secret=True, allow_insecure_http=False)[0]
        'refuse'
        >>> transport_check("cohere", "http://127.0.0.1:8080/v2/rerank", hosted=True,
        ...                 sends_secret=True, allow_insecure_http=False) is None
        True
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or allow_insecure_http or is_loopback(parts.hostname):
        return None
    where = mask_credentials(url)
    if hosted:
        return (
            "refuse",
            f"refusing to send the API key over plain http:// to {where}: anyone on the path "
            "could read it. Use https://, or pass allow_insecure_http=True (a trusted proxy on "
            "your own network)",
        )
    if sends_secret:
        return (
            "warn",
            f"sends its key or URL credentials over plain http:// to {where}; use https:// or "
            "a private network (allow_insecure_http=True silences this)",
        )
    return None
