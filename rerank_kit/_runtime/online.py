"""Whether the Hugging Face Hub may be reached (``HF_HUB_OFFLINE``) and whether it answers.

A leaf: ``rerank_kit.models`` and ``rerank_kit._runtime.hub`` both ask it, and it imports
neither.

Example:
    >>> isinstance(hub_offline(), bool)
    True
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

__all__ = ["hub_offline", "hub_reachable"]

_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Open (and close) one TCP connection to the Hub, bounded in time, DNS included.

    Returns ``(True, "")``, or ``(False, why)``.
    """
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except Exception:  # huggingface_hub is absent with onnxruntime + tokenizers alone
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = 443 if endpoint.startswith("https") else 80
    result: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append("")
        except OSError as exc:
            result.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return False, f"no answer from {host} within {timeout:.0f} s"
    return (result[0] == ""), result[0]
