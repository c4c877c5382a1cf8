"""The error a remote rerank call raises, and its messages (never the API key)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rerank_kit._core.errors import RerankError

__all__ = ["RemoteRerankError", "failure", "provider_message"]


class RemoteRerankError(RerankError):
    """A remote rerank call failed; the message names the provider (never the API key).

    Attributes:
        provider: The provider profile name, e.g. ``"cohere"``.
        status: The HTTP status of the last answer, if there was one.
    """

    def __init__(self, provider: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


def provider_message(response: Any) -> str:
    """The provider's own error message from an error response, shortened."""
    text = ""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or json.dumps(value)
            if isinstance(value, list):
                value = json.dumps(value)
            if isinstance(value, str) and value:
                text = value
                break
    if not text:
        text = response.text or response.reason_phrase or ""
    text = " ".join(text.split())
    return text[:500] + ("..." if len(text) > 500 else "")


def failure(
    outcome: Any,
    attempts: int,
    *,
    provider: str,
    url: str,
    key_env: str | None,
    timeout: float,
    redact: Callable[[str], str],
    hint: str | None = None,
) -> RemoteRerankError:
    """The error for a request given up after ``attempts`` attempts.

    ``outcome`` is the last HTTP error response, or the transport exception that replaced it;
    ``hint`` (what to change) ends the message.
    """
    if isinstance(outcome, BaseException):
        import httpx

        if isinstance(outcome, (httpx.TimeoutException, TimeoutError)):
            text = (
                f"no answer from {url} within the {timeout:g} s timeout "
                f"({type(outcome).__name__}, {attempts} attempt(s)); the timeout bounds each "
                "request as a whole (connect, send, every read): raise timeout= or check the "
                "server"
            )
        else:
            detail = redact(str(outcome)) or type(outcome).__name__
            text = (
                f"could not reach {url}: {detail} ({attempts} attempt(s)); check the URL and "
                "that the server is up"
            )
        return RemoteRerankError(provider, text)
    status = outcome.status_code
    message = redact(provider_message(outcome))
    if 300 <= status < 400 or status < 200:
        location = redact(str(outcome.headers.get("Location") or "(no Location header)"))
        text = (
            f"HTTP {status} from {url} pointing to {location}: redirects are not followed "
            "(they could carry the key to another host); set base_url (or the spec's URL) to "
            "the final address"
        )
    elif status in (401, 403):
        hint = (
            f"check {key_env} or api_key=" if key_env else "check api_key= (the server's --api-key)"
        )
        text = f"the API key was refused (HTTP {status}); {hint}"
        if message:
            text += f". The server said: {message}"
    elif status == 429:
        text = f"rate limited (HTTP 429) by {url} after {attempts} attempt(s): {message}"
        hint = hint or "lower the request rate, or raise max_retries= to wait longer"
    elif status >= 500:
        text = f"server error HTTP {status} from {url} after {attempts} attempt(s): {message}"
        hint = hint or "the server's own trouble: try again later or raise max_retries="
    else:
        text = f"HTTP {status} from {url}: {message}"
    if hint:
        text += f" ({hint})"
    return RemoteRerankError(provider, text, status)
