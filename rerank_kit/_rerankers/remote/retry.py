"""When to retry a remote rerank request: one decision, shared by the sync and async loops.

:func:`decide` looks at one attempt's outcome (the HTTP response, or the transport error that
replaced it) and answers *done*, *retry after N seconds* or *give up*. It sends nothing and
sleeps never, so ``RemoteReranker``'s ``httpx.Client`` and ``httpx.AsyncClient`` loops take the
same decisions and differ only in the awaited send and sleep.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Decision", "RetryPolicy", "decide", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed request.

    Connection errors, timeouts, HTTP 429 and 5xx are retried up to ``max_retries`` times; other
    4xx are not. The wait is the server's ``Retry-After`` when it sends one (capped at
    ``max_retry_after``), else exponential backoff with jitter: a uniform draw from
    ``[b/2, b]`` with ``b = min(max_backoff, backoff * 2**attempt)``.

    Example:
        >>> RetryPolicy(backoff=0.5).delay(0, retry_after=2.0)
        2.0
        >>> 0.25 <= RetryPolicy(backoff=0.5).delay(0) <= 0.5
        True
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    @staticmethod
    def retryable_status(status: int) -> bool:
        """429 (rate limited) and 5xx (server trouble) are worth another try."""
        return status == 429 or 500 <= status <= 599

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return (rng or random).uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Example:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("soon") is None
        True
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class Decision:
    """What to do after one attempt.

    Attributes:
        action: ``"done"`` (a success answer: read it), ``"retry"`` (send again after ``wait``
            seconds) or ``"raise"`` (give up: the outcome is the error to report).
        wait: Seconds to sleep before the retry (0 unless ``action == "retry"``).
        reason: What went wrong, for the log line: ``"HTTP 503"``, ``"ConnectTimeout"``.
    """

    action: Literal["done", "retry", "raise"]
    wait: float = 0.0
    reason: str = ""


def decide(
    policy: RetryPolicy,
    attempt: int,
    outcome: Any,
    *,
    rng: random.Random | None = None,
    now: float | None = None,
) -> Decision:
    """The one retry/wait/raise decision after attempt number ``attempt`` (counted from 0).

    Args:
        policy: How many retries, and how long to wait.
        attempt: How many attempts came before this one.
        outcome: The HTTP response (anything with ``status_code`` and ``headers``), or the
            transport exception (connection error, timeout) raised instead of one.
        rng: The jitter's random source (seed it for repeatable waits).
        now: The clock for ``Retry-After`` dates (default: ``time.time()``).

    Example:
        >>> class Answer:  # a stand-in for httpx.Response
        ...     def __init__(self, status, retry_after=None):
        ...         self.status_code = status
        ...         self.headers = {"Retry-After": retry_after} if retry_after else {}
        >>> policy = RetryPolicy(max_retries=1)
        >>> decide(policy, 0, Answer(200))
        Decision(action='done', wait=0.0, reason='')
        >>> decide(policy, 0, Answer(429, retry_after="2"))
        Decision(action='retry', wait=2.0, reason='HTTP 429')
        >>> decide(policy, 1, Answer(429, retry_after="2"))  # out of retries
        Decision(action='raise', wait=0.0, reason='HTTP 429')
        >>> decide(policy, 0, Answer(401))  # refused: never retried
        Decision(action='raise', wait=0.0, reason='HTTP 401')
        >>> decide(policy, 0, Answer(302))  # a redirect is refused, never followed
        Decision(action='raise', wait=0.0, reason='HTTP 302')
        >>> decide(policy, 0, TimeoutError("read timed out")).action
        'retry'
    """
    if isinstance(outcome, BaseException):
        reason, retry_after = type(outcome).__name__, None
    else:
        status = outcome.status_code
        if 200 <= status < 300:
            return Decision("done")
        reason = f"HTTP {status}"
        if status < 400 or not policy.retryable_status(status):  # 3xx: redirects not followed
            return Decision("raise", reason=reason)
        retry_after = parse_retry_after(outcome.headers.get("Retry-After"), now)
    if attempt >= policy.max_retries:
        return Decision("raise", reason=reason)
    return Decision("retry", policy.delay(attempt, retry_after, rng), reason)
