"""``RemoteReranker``: one class for every provider in ``PROFILES``, sync and async.

Everything a request decides lives once: the provider's body and answer layout in its
:class:`~rerank_kit._rerankers.remote.providers.Profile`, the retry/wait/raise decision in
:func:`~rerank_kit._rerankers.remote.retry.decide`, driven through one :class:`_Exchange` per
request. The two request loops only send and sleep: ``_post`` on the pooled ``httpx.Client``,
``_apost`` awaiting an ``httpx.AsyncClient`` (one per event loop), so concurrent queries wait on
the network together instead of on worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import logging
import os
import random
import time
import weakref
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from rerank_kit._core import telemetry
from rerank_kit._core.errors import missing_extra
from rerank_kit._core.protocol import Reranker
from rerank_kit._rerankers.remote.errors import RemoteRerankError, failure, provider_message
from rerank_kit._rerankers.remote.providers import PROFILES, Profile, reply_usage
from rerank_kit._rerankers.remote.retry import RetryPolicy, decide
from rerank_kit._rerankers.remote.security import Secret, mask_credentials, transport_check
from rerank_kit._rerankers.remote.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BodyReader,
    Deadline,
    bound_client,
)

__all__ = ["RemoteReranker"]

logger = logging.getLogger(__name__)

_USER_AGENT = "rerank-kit (+https://pypi.org/project/rerank-kit/)"


_Secret = Secret  # the name older code imported


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without user:pass@, "user:password" or None)``.

    The credentials go as Basic auth, so the URL httpx logs never carries them.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"


@functools.cache
def _auth_class() -> type:
    import httpx

    class KeyAuth(httpx.Auth):
        """Puts the key (and URL credentials) on each request.

        Never in the client's headers, whose repr shows all but ``Authorization`` in clear.
        """

        def __init__(self, header: str | None, value: Secret | None, basic: Secret | None):
            self._header, self._value, self._basic = header, value, basic

        def __repr__(self) -> str:
            return "<rerank-kit key auth>"

        def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
            if self._basic is not None:
                pair = self._basic.value.encode("utf-8")
                request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            if self._header is not None and self._value is not None:
                request.headers[self._header] = self._value.value
            yield request

    return KeyAuth


class _Exchange:
    """One request and its retries: the body to send, and what to do after each attempt.

    Both loops drive it alike (send ``body``, ``feed`` the outcome, sleep what it returns), so
    the sync and async paths take the same decisions; only sending and sleeping differ.
    """

    def __init__(self, owner: RemoteReranker, query: str, docs: list[str]) -> None:
        self.owner = owner
        self.n = len(docs)
        self.body = owner.profile.body(owner.model_name, query, docs)
        self.attempt = 0
        self.scores: list[float] = []

    def attempt_span(self) -> Any:
        """The next attempt's span (a child of the rerank's, or of a cascade stage's)."""
        owner = self.owner
        return telemetry.attempt(owner.provider, owner.url, self.attempt + 1, self.n)

    def feed(self, outcome: Any, span: Any = None) -> float | None:
        """Seconds to wait before sending again, or ``None`` once ``scores`` holds the answer.

        Args:
            outcome: The ``httpx.Response``, or the ``httpx.TransportError`` raised instead.
            span: The attempt's span (``attempt_span``), told the decision.

        Raises:
            RemoteRerankError: The request was given up, or the answer is malformed.
        """
        owner = self.owner
        step = decide(owner.retry, self.attempt, outcome, rng=owner._rng)
        self.attempt += 1
        hint = None
        if step.action == "retry" and not isinstance(outcome, BaseException):
            hint = owner.profile.permanent_hint(provider_message(outcome))
        action = "raise" if hint is not None else step.action
        if span is not None:
            span.outcome(outcome, action, step.wait, step.reason)
        if step.action == "done":
            self.scores = owner.profile.read_scores(outcome, self.n, owner.url)
            tokens, billed = reply_usage(owner.profile, outcome)  # the running call's usage
            telemetry.record(billed, model_calls=1, tokens=tokens)
            return None
        if action == "raise":
            telemetry.remote_failure(owner.provider, step.reason)
            raise owner._failure(outcome, self.attempt, hint)
        logger.warning(
            "%s: %s from %s; retry %d of %d in %.2f s",
            owner.provider,
            step.reason,
            owner.url,
            self.attempt,
            owner.retry.max_retries,
            step.wait,
        )
        return step.wait


class RemoteReranker(Reranker):
    """Reranks through a hosted rerank API or a self-hosted serving engine.

    Providers and specs (``load_reranker`` understands the same strings):

    =============  ===============================================  ====================
    provider       spec                                             key variable
    =============  ===============================================  ====================
    cohere         ``cohere:rerank-v3.5``                           ``COHERE_API_KEY``
    voyage         ``voyage:rerank-2.5``                            ``VOYAGE_API_KEY``
    jina           ``jina:jina-reranker-v2-base-multilingual``      ``JINA_API_KEY``
    pinecone       ``pinecone:bge-reranker-v2-m3``                  ``PINECONE_API_KEY``
    zeroentropy    ``zeroentropy:zerank-1-small``                   ``ZEROENTROPY_API_KEY``
    tei            ``tei:http://HOST:PORT``                         (none)
    infinity       ``infinity:http://HOST:PORT#MODEL``              (none)
    llamacpp       ``llamacpp:http://HOST:PORT[#MODEL]``            (none)
    =============  ===============================================  ====================

    Scores are the provider's relevance scores as plain floats, so ``score_threshold`` and
    ``metadata["relevance_score"]`` mean what the provider documents. Lists longer than the
    provider's per-request limit are split, the parts sent concurrently and merged back in input
    order. Every response is checked (count, every index once and in range, numeric scores): a
    bad one raises :class:`RemoteRerankError` naming the provider, never a score on the wrong
    document. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and
    jitter, honouring ``Retry-After``; other 4xx are not retried. The API key never appears in a
    message, a log line or a repr. Calls are not serialised: one instance serves many threads
    and tasks at once, and ``ascore``/``arerank`` await the network (no worker thread).

    Setup:
        ``pip install "rerank-kit[remote]"`` (httpx).

    Args:
        provider: One of ``PROFILES`` (``"cohere"``, ``"voyage"``, ``"jina"``, ``"pinecone"``,
            ``"zeroentropy"``, ``"tei"``, ``"infinity"``, ``"llamacpp"``), or a whole spec such as
            ``"cohere:rerank-v3.5"`` when ``model`` is omitted.
        model: The provider's model name; for ``tei`` the server URL; for ``infinity``
            ``URL#MODEL``; for ``llamacpp`` ``URL`` or ``URL#MODEL`` (the name is sent only
            when given: llama-server serves the model it was started with).
        api_key: The key (default: the provider's environment variable; self-hosted engines
            send one only if given, for servers started with ``--api-key``).
        base_url: Replaces the provider's base URL (gateways, proxies, private deployments);
            the endpoint path is appended. A hosted provider's key is never sent over plain
            ``http://`` to a host other than loopback (``127.0.0.1``, ``localhost``, ``::1``)
            unless ``allow_insecure_http=True``.
        timeout: Seconds one request may take as a whole: connecting, sending and reading
            the whole answer, however slowly the server sends it (each retry gets its own).
        max_retries: Retries after the first attempt (0 disables retrying).
        batch_size: Documents per request (default and maximum: the provider's limit; for
            self-hosted engines any value, matching the server's setting).
        retry: A full :class:`RetryPolicy` (its ``max_retries`` is replaced by ``max_retries``).
        allow_insecure_http: Send a hosted provider's key over plain ``http://`` to a host
            that is not loopback (a trusted proxy on your own network). Self-hosted engines
            (TEI, Infinity, llama.cpp) take ``http://`` without it; a key or URL credentials
            sent in clear off this machine are then warned about once (this flag silences it).
        max_response_bytes: The largest answer body accepted (default 16 MiB); a larger one
            raises :class:`RemoteRerankError` unread.

    Example:
        >>> from rerank_kit import RemoteReranker, load_reranker  # doctest: +SKIP
        >>> cohere = load_reranker("cohere:rerank-v3.5")  # reads COHERE_API_KEY  # doctest: +SKIP
        >>> tei = RemoteReranker("tei", "http://gpu-pool.internal:8080", timeout=5)  # doctest: +SKIP
        >>> tei.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={}, truncated=False)]
        >>> await cohere.arerank("capital of France", docs, top_n=3)  # doctest: +SKIP
    """

    #: Network calls overlap: no model lock.
    serialise = False
    #: ``Usage.model_calls`` counts the answered requests (not the scoring calls).
    _counts_own_calls = True
    #: How the loops wait between attempts (tests replace them to record the waits).
    _sleep = staticmethod(time.sleep)
    _asleep = staticmethod(asyncio.sleep)

    def __init__(
        self,
        provider: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int | None = None,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__()
        try:
            import httpx
        except ImportError as exc:
            raise missing_extra("remote", "httpx", exc) from exc
        if model is None and isinstance(provider, str) and ":" in provider:
            provider, _, model = provider.partition(":")
        provider = str(provider).strip().lower()
        profile = PROFILES.get(provider)
        if profile is None:
            raise ValueError(
                f"unknown remote provider {provider!r}; expected one of {', '.join(PROFILES)}"
            )
        self.profile: Profile = profile
        self.provider = provider
        model = (model or "").strip()
        self.model_name, target = profile.target(model, base_url)
        send_url, credentials = _split_credentials(target.rstrip("/") + profile.endpoint.path)
        self._basic = Secret(credentials) if credentials else None
        self._send_url = send_url
        #: Shown in names, messages and logs: URL credentials masked.
        self.base_url = mask_credentials(target)
        self.url = mask_credentials(target.rstrip("/") + profile.endpoint.path)
        self.name = mask_credentials(f"{provider}:{model}")
        # the score cache keeps the name as it always was (credentials included), so the
        # scores cached by an existing remote reranker stay found; it is never shown
        self._identity_name = Secret(f"{provider}:{model}")

        if not _positive_number(timeout):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not isinstance(allow_insecure_http, bool):
            raise ValueError(
                f"allow_insecure_http must be True or False, got {allow_insecure_http!r}"
            )
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ValueError(
                f"max_response_bytes must be a positive int, got {max_response_bytes!r}"
            )
        self.allow_insecure_http = allow_insecure_http
        self.max_response_bytes = max_response_bytes
        self.timeout = float(timeout)
        self.retry = dataclasses.replace(retry or RetryPolicy(), max_retries=max_retries)
        self.batch_size = profile.batch_limit(self.model_name, batch_size)

        key_env = profile.endpoint.key_env
        key = api_key if api_key is not None else (os.environ.get(key_env) if key_env else None)
        if profile.hosted and not key:
            raise RemoteRerankError(
                provider,
                f"no API key: set the {key_env} environment variable or pass api_key=...",
            )
        self._key = Secret(key) if key else None
        verdict = transport_check(
            provider,
            self.url,
            hosted=profile.hosted,
            sends_secret=self._key is not None or self._basic is not None,
            allow_insecure_http=allow_insecure_http,
        )
        if verdict is not None and verdict[0] == "refuse":
            raise RemoteRerankError(provider, verdict[1])
        if verdict is not None:
            logger.warning("%s: %s", self.name, verdict[1])
        endpoint = profile.endpoint
        self._auth = _auth_class()(
            endpoint.auth_header if self._key is not None else None,
            Secret(endpoint.auth_format.format(key=key)) if self._key is not None else None,
            self._basic,
        )
        self._transport_error = httpx.TransportError
        self._httpx_timeout = httpx.Timeout(self.timeout)
        self._client = httpx.Client(headers=self._headers(), timeout=self._httpx_timeout)
        bound_client(self._client)
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._rng = random.Random()

    def _headers(self) -> dict[str, str]:
        """The clients' headers: never the key (``_auth`` adds it to each request)."""
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        headers.update(self.profile.endpoint.headers)
        return headers

    def _redact(self, text: str) -> str:
        if self._key is not None and self._key.value:
            text = text.replace(self._key.value, "<api key>")
        password = self._basic.value.partition(":")[2] if self._basic is not None else ""
        if len(password) >= 3:
            text = text.replace(password, "***")
        return mask_credentials(text)

    def _score_identity(self) -> str:
        """The score-cache key, as before masking: the name with its URL credentials."""
        identity = super()._score_identity()
        shown = mask_credentials(self._identity_name.value)
        return identity.replace(shown, self._identity_name.value, 1)

    def _failure(self, outcome: Any, attempts: int, hint: str | None = None) -> RemoteRerankError:
        return failure(
            outcome,
            attempts,
            provider=self.provider,
            url=self.url,
            key_env=self.profile.endpoint.key_env,
            timeout=self.timeout,
            redact=self._redact,
            hint=hint,
        )

    # -- one request: the same exchange, sent two ways -------------------------------------

    @staticmethod
    def _timed_out(exc: TimeoutError) -> Any:
        """The deadline's ``TimeoutError`` as the ``httpx.ReadTimeout`` both loops report."""
        import httpx

        return httpx.ReadTimeout(str(exc) or "the request's total deadline passed")

    def _reader(self, response: Any, deadline: Deadline) -> BodyReader:
        return BodyReader(
            response,
            provider=self.provider,
            url=self.url,
            max_bytes=self.max_response_bytes,
            deadline=deadline,
        )

    def _send(self, body: dict[str, Any]) -> Any:
        """One attempt: the whole answer (a ``Reply``) within the deadline, or the error."""
        deadline = Deadline(self.timeout)
        token = deadline.activate()  # every socket operation ends by the deadline
        try:
            request = self._client.build_request("POST", self._send_url, json=body)
            response = self._client.send(request, stream=True, auth=self._auth)
            try:
                reader = self._reader(response, deadline)
                for chunk in response.iter_bytes():
                    reader.feed(chunk)
                return reader.reply()
            finally:
                response.close()
        except self._transport_error as exc:
            return exc
        except TimeoutError as exc:
            return self._timed_out(exc)
        finally:
            deadline.deactivate(token)

    def _post(self, query: str, docs: list[str]) -> list[float]:
        exchange = _Exchange(self, query, docs)
        while True:
            with exchange.attempt_span() as span:
                wait = exchange.feed(self._send(exchange.body), span)
            if wait is None:
                return exchange.scores
            self._sleep(wait)

    async def _apost(self, client: Any, query: str, docs: list[str]) -> list[float]:
        exchange = _Exchange(self, query, docs)
        while True:
            with exchange.attempt_span() as span:
                wait = exchange.feed(await self._asend(client, exchange.body), span)
            if wait is None:
                return exchange.scores
            await self._asleep(wait)

    async def _asend(self, client: Any, body: dict[str, Any]) -> Any:
        """Async ``_send``: the attempt runs under ``anyio.fail_after`` (the deadline)."""
        import anyio

        deadline = Deadline(self.timeout)
        try:
            with anyio.fail_after(self.timeout):
                request = client.build_request("POST", self._send_url, json=body)
                response = await client.send(request, stream=True, auth=self._auth)
                try:
                    reader = self._reader(response, deadline)
                    async for chunk in response.aiter_bytes():
                        reader.feed(chunk)
                    return reader.reply()
                finally:
                    await response.aclose()
        except self._transport_error as exc:
            return exc
        except TimeoutError as exc:
            return self._timed_out(exc)

    def _aclient(self) -> Any:
        """The ``httpx.AsyncClient`` of the running event loop (one per loop, pooled)."""
        import httpx

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = httpx.AsyncClient(headers=self._headers(), timeout=self._httpx_timeout)
            self._aclients[loop] = client
        return client

    # -- the scoring hook, sync and async --------------------------------------------------

    def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
        """Scores from the provider; parts over its per-request limit go out concurrently."""
        parts = self.profile.split(query, texts, self.batch_size)
        if len(parts) == 1:
            return self._post(query, parts[0])
        with ThreadPoolExecutor(max_workers=min(len(parts), 16)) as pool:
            post = telemetry.in_context(lambda docs: self._post(query, docs))
            results = list(pool.map(post, parts))
        return [s for scores in results for s in scores]  # the parts are consecutive

    async def _ascore_pairs(self, query: str, texts: list[str]) -> list[float]:
        """Async ``_score_pairs`` on an ``httpx.AsyncClient``: no worker thread.

        Example:
            >>> import asyncio  # doctest: +SKIP
            >>> queries = ["q1", "q2", "q3"]  # doctest: +SKIP
            >>> await asyncio.gather(*(reranker.arerank(q, docs, top_n=5) for q in queries))  # doctest: +SKIP
        """
        client = self._aclient()
        parts = self.profile.split(query, texts, self.batch_size)
        results = await asyncio.gather(*(self._apost(client, query, docs) for docs in parts))
        return [s for scores in results for s in scores]

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled sync client (async clients: ``await aclose()``)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the async client of the running loop and the sync client."""
        loop = asyncio.get_running_loop()
        client = self._aclients.pop(loop, None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> RemoteReranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RemoteReranker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
