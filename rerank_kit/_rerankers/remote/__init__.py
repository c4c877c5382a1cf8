"""Remote rerankers: hosted rerank APIs and self-hosted serving engines over HTTP.

- ``providers``: every provider as data (a ``Profile``: endpoint, body, answer layout, limits).
- ``retry``: ``RetryPolicy`` and the one retry/wait/raise decision (``decide``).
- ``client``: ``RemoteReranker``, whose sync and async loops differ only in send and sleep.
- ``errors``: ``RemoteRerankError`` and its messages.
- ``transport``: bounded answers (a total deadline per request, a body-size cap, bounded JSON
  nesting), shared by the sync and async loops.
- ``security``: keys and URL credentials held out of reprs and masked where shown, and the one
  decision on plain ``http://`` (``allow_insecure_http``).
"""

from __future__ import annotations

from rerank_kit._rerankers.remote.client import RemoteReranker
from rerank_kit._rerankers.remote.errors import RemoteRerankError
from rerank_kit._rerankers.remote.providers import PROFILES, Profile
from rerank_kit._rerankers.remote.retry import RetryPolicy, parse_retry_after

__all__ = [
    "PROFILES",
    "Profile",
    "RemoteRerankError",
    "RemoteReranker",
    "RetryPolicy",
    "parse_retry_after",
]
