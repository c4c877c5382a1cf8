"""Remote rerankers: hosted rerank APIs and self-hosted serving engines over HTTP.

One class, :class:`RemoteReranker`, talks to every provider through a small :class:`Profile`
that knows the provider's endpoint, request body, response layout, per-request limit and key
variable. Each profile says which version of the provider's public API reference it follows.

The client is ``httpx``: one pooled ``httpx.Client`` per reranker for the sync methods, and an
``httpx.AsyncClient`` (one per event loop) for ``ascore``/``arerank``, so concurrent queries
wait on the network together instead of on worker threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import math
import os
import random
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._base import (
    Reranker,
    check_query,
    check_texts,
    ranked_by_score,
)
from rerank_kit._errors import RerankError, missing_extra
from rerank_kit._types import Ranked

__all__ = ["PROFILES", "Profile", "RemoteRerankError", "RemoteReranker", "RetryPolicy"]

logger = logging.getLogger(__name__)

_USER_AGENT = "rerank-kit (+https://pypi.org/project/rerank-kit/)"


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


# --------------------------------------------------------------------------- request bodies


def _body_cohere(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # https://docs.cohere.com/reference/rerank (API v2): top_n omitted = every document scored.
    return {"model": model, "query": query, "documents": docs}


def _body_voyage(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # https://docs.voyageai.com/reference/reranker-api: top_k null = every document scored.
    return {
        "model": model,
        "query": query,
        "documents": docs,
        "return_documents": False,
        "truncation": True,
    }


def _body_jina(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # https://api.jina.ai/v1/rerank (Jina Reranker API v1).
    return {"model": model, "query": query, "documents": docs, "return_documents": False}


def _body_pinecone(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # Pinecone Inference API 2025-10, POST /rerank: documents are objects ranked on "text".
    return {
        "model": model,
        "query": query,
        "documents": [{"text": d} for d in docs],
        "return_documents": False,
    }


def _body_zeroentropy(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # https://docs.zeroentropy.dev/api-reference/models/rerank (v1): top_n omitted = all.
    return {"model": model, "query": query, "documents": docs}


def _body_tei(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # Text Embeddings Inference router 1.x, POST /rerank. raw_scores=False returns the sigmoid
    # (what CrossEncoder.predict gives for a one-label model); truncate=True cuts long pairs at
    # the model limit as local cross-encoders do, instead of a 413/422.
    return {
        "query": query,
        "texts": docs,
        "raw_scores": False,
        "return_text": False,
        "truncate": True,
    }


def _body_infinity(model: str, query: str, docs: list[str]) -> dict[str, Any]:
    # infinity-emb 0.0.78, POST /rerank (RerankInput): raw_scores=False applies the sigmoid.
    return {
        "model": model,
        "query": query,
        "documents": docs,
        "return_documents": False,
        "raw_scores": False,
    }


@dataclass(frozen=True)
class Profile:
    """What rerank-kit knows about one rerank provider.

    Attributes:
        name: Spec prefix, e.g. ``"cohere"``.
        api: The version of the provider's public API reference this profile follows.
        base_url: Default base URL (``None`` for self-hosted engines: the spec gives it).
        path: Endpoint path appended to the base URL.
        key_env: Environment variable holding the API key (``None``: no key needed).
        auth: ``"bearer"`` (``Authorization: Bearer KEY``) or ``"api-key"`` (``Api-Key: KEY``).
        max_docs: Most documents one request may carry (longer lists are split).
        max_bytes: Most payload bytes one request may carry, as the provider counts them.
        body: Builds the JSON request body from ``(model, query, documents)``.
        results_key: Key of the result list in the response (``None``: the body is the list).
        score_key: Key of the score in each result.
        headers: Extra headers every request carries.
        needs_model: Whether the spec must name a model.
        limit_note: Where ``max_docs`` comes from.
    """

    name: str
    api: str
    base_url: str | None
    path: str
    key_env: str | None
    auth: str
    max_docs: int | None
    body: Callable[[str, str, list[str]], dict[str, Any]]
    results_key: str | None
    score_key: str
    max_bytes: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    needs_model: bool = True
    limit_note: str = ""

    @property
    def hosted(self) -> bool:
        """True for hosted APIs (they need a key); False for self-hosted engines."""
        return self.key_env is not None

    def request_bytes(self, query: str, doc: str) -> int:
        """Bytes one document adds to a request, as ZeroEntropy counts them (150 + query + doc)."""
        return 150 + len(query.encode("utf-8")) + len(doc.encode("utf-8"))


#: Per-request document limits of Pinecone's hosted reranking models (its model guide).
_PINECONE_MAX_DOCS = {
    "bge-reranker-v2-m3": 100,
    "pinecone-rerank-v0": 100,
    "cohere-rerank-3.5": 200,
}

#: The providers ``RemoteReranker`` and ``load_reranker`` know, keyed by spec prefix.
PROFILES: dict[str, Profile] = {
    "cohere": Profile(
        name="cohere",
        api="Cohere Rerank API v2 (POST /v2/rerank)",
        base_url="https://api.cohere.com",
        path="/v2/rerank",
        key_env="COHERE_API_KEY",
        auth="bearer",
        max_docs=1000,
        body=_body_cohere,
        results_key="results",
        score_key="relevance_score",
        limit_note="Cohere recommends at most 1,000 documents per request",
    ),
    "voyage": Profile(
        name="voyage",
        api="Voyage AI Reranker API v1 (POST /v1/rerank)",
        base_url="https://api.voyageai.com",
        path="/v1/rerank",
        key_env="VOYAGE_API_KEY",
        auth="bearer",
        max_docs=1000,
        body=_body_voyage,
        results_key="data",
        score_key="relevance_score",
        limit_note="the number of documents cannot exceed 1,000",
    ),
    "jina": Profile(
        name="jina",
        api="Jina Reranker API v1 (POST /v1/rerank)",
        base_url="https://api.jina.ai",
        path="/v1/rerank",
        key_env="JINA_API_KEY",
        auth="bearer",
        max_docs=1000,
        body=_body_jina,
        results_key="results",
        score_key="relevance_score",
        limit_note="no cap is documented; rerank-kit sends at most 1,000 per request",
    ),
    "pinecone": Profile(
        name="pinecone",
        api="Pinecone Inference API 2025-10 (POST /rerank, X-Pinecone-Api-Version: 2025-10)",
        base_url="https://api.pinecone.io",
        path="/rerank",
        key_env="PINECONE_API_KEY",
        auth="api-key",
        max_docs=100,
        body=_body_pinecone,
        results_key="data",
        score_key="score",
        headers={"X-Pinecone-Api-Version": "2025-10"},
        limit_note="bge-reranker-v2-m3 takes at most 100 documents (cohere-rerank-3.5: 200)",
    ),
    "zeroentropy": Profile(
        name="zeroentropy",
        api="ZeroEntropy API v1 (POST /v1/models/rerank)",
        base_url="https://api.zeroentropy.dev",
        path="/v1/models/rerank",
        key_env="ZEROENTROPY_API_KEY",
        auth="bearer",
        max_docs=None,
        max_bytes=5_000_000,
        body=_body_zeroentropy,
        results_key="results",
        score_key="relevance_score",
        limit_note="at most 5,000,000 payload bytes, counted as 150 + query + document per document",
    ),
    "tei": Profile(
        name="tei",
        api="Text Embeddings Inference 1.x router (POST /rerank)",
        base_url=None,
        path="/rerank",
        key_env=None,
        auth="bearer",
        max_docs=32,
        body=_body_tei,
        results_key=None,
        score_key="score",
        needs_model=False,
        limit_note="the server's --max-client-batch-size, 32 by default",
    ),
    "infinity": Profile(
        name="infinity",
        api="infinity-emb 0.0.78 (POST /rerank)",
        base_url=None,
        path="/rerank",
        key_env=None,
        auth="bearer",
        max_docs=2048,
        body=_body_infinity,
        results_key="results",
        score_key="relevance_score",
        limit_note="INFINITY_MAX_CLIENT_BATCH_SIZE, 2,048 by default",
    ),
}


# --------------------------------------------------------------------------- retries


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


# --------------------------------------------------------------------------- helpers


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def _provider_message(response: Any) -> str:
    """The provider's own error message from an error response, shortened."""
    text = ""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    =============  ===============================================  ====================

    Scores are the provider's relevance scores as plain floats, so ``score_threshold`` and
    ``metadata["relevance_score"]`` mean what the provider documents. Lists longer than the
    provider's per-request limit are split, the parts sent concurrently and merged back in input
    order. Every response is checked (count, every index once and in range, numeric scores): a
    bad one raises :class:`RemoteRerankError` naming the provider, never a score on the wrong
    document. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and
    jitter, honouring ``Retry-After``; other 4xx are not retried. The API key never appears in a
    message, a log line or a repr.

    Setup:
        ``pip install "rerank-kit[remote]"`` (httpx).

    Args:
        provider: One of ``PROFILES`` (``"cohere"``, ``"voyage"``, ``"jina"``, ``"pinecone"``,
            ``"zeroentropy"``, ``"tei"``, ``"infinity"``), or a whole spec such as
            ``"cohere:rerank-v3.5"`` when ``model`` is omitted.
        model: The provider's model name; for ``tei`` the server URL; for ``infinity``
            ``URL#MODEL``.
        api_key: The key (default: the provider's environment variable; self-hosted engines
            send one only if given, for servers started with ``--api-key``).
        base_url: Replaces the provider's base URL (gateways, proxies, private deployments);
            the endpoint path is appended.
        timeout: Seconds to wait for connecting, sending and for the answer, per request.
        max_retries: Retries after the first attempt (0 disables retrying).
        batch_size: Documents per request (default and maximum: the provider's limit; for
            self-hosted engines any value, matching the server's setting).
        retry: A full :class:`RetryPolicy` (its ``max_retries`` is replaced by ``max_retries``).

    Example:
        >>> from rerank_kit import RemoteReranker, load_reranker  # doctest: +SKIP
        >>> cohere = load_reranker("cohere:rerank-v3.5")  # reads COHERE_API_KEY  # doctest: +SKIP
        >>> tei = RemoteReranker("tei", "http://gpu-pool.internal:8080", timeout=5)  # doctest: +SKIP
        >>> tei.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.98, stage_scores={}, truncated=False)]
        >>> await cohere.arerank("capital of France", docs, top_n=3)  # doctest: +SKIP
    """

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
        self.profile = profile
        self.provider = provider
        model = (model or "").strip()
        served, url = self._parse_target(profile, model, base_url)
        self.model_name = served
        self.base_url = url
        self.url = url.rstrip("/") + profile.path
        self.name = f"{provider}:{model}"

        if isinstance(timeout, bool) or not _is_number(timeout) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.timeout = float(timeout)
        self.retry = dataclasses.replace(retry or RetryPolicy(), max_retries=max_retries)
        self.batch_size = self._check_batch_size(profile, served, batch_size)

        key = api_key if api_key is not None else self._env_key(profile)
        if profile.hosted and not key:
            raise RemoteRerankError(
                provider,
                f"no API key: set the {profile.key_env} environment variable or pass api_key=...",
            )
        self._key = _Secret(key) if key else None
        self._httpx_timeout = httpx.Timeout(self.timeout)
        self._client = httpx.Client(headers=self._headers(), timeout=self._httpx_timeout)
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._rng = random.Random()

    # ---------------------------------------------------------------- construction helpers

    def _headers(self) -> dict[str, str]:
        """Request headers, built on demand so no attribute but the secret holds the key."""
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        headers.update(self.profile.headers)
        if self._key is not None:
            if self.profile.auth == "api-key":
                headers["Api-Key"] = self._key.value
            else:
                headers["Authorization"] = f"Bearer {self._key.value}"
        return headers

    @staticmethod
    def _env_key(profile: Profile) -> str | None:
        return os.environ.get(profile.key_env) if profile.key_env else None

    @staticmethod
    def _parse_target(profile: Profile, model: str, base_url: str | None) -> tuple[str, str]:
        """(model name sent to the server, base URL) for a spec's model part."""
        if profile.base_url is not None:  # hosted
            if not model:
                raise ValueError(f"{profile.name}: name the model, e.g. '{profile.name}:MODEL'")
            return model, (base_url or profile.base_url)
        url, _, served = model.partition("#")
        url = url.strip()
        if base_url is not None:
            if url:
                raise ValueError(
                    f"{profile.name}: give the server URL once, in the spec or as base_url"
                )
            url = base_url
        if not url.startswith(("http://", "https://")):
            example = "http://HOST:PORT#MODEL" if profile.name == "infinity" else "http://HOST:PORT"
            raise ValueError(
                f"{profile.name}: expected the server URL, e.g. '{profile.name}:{example}', "
                f"got {model!r}"
            )
        served = served.strip()
        if profile.name == "infinity" and not served:
            raise ValueError(
                "infinity: name the served model after '#', e.g. "
                "'infinity:http://localhost:7997#BAAI/bge-reranker-base'"
            )
        return served, url

    @staticmethod
    def _check_batch_size(profile: Profile, model: str, batch_size: int | None) -> int | None:
        limit = profile.max_docs
        if profile.name == "pinecone":
            limit = _PINECONE_MAX_DOCS.get(model, limit)
        if batch_size is None:
            return limit
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if profile.hosted and limit is not None and batch_size > limit:
            raise ValueError(
                f"{profile.name}: batch_size={batch_size} is over the provider's per-request "
                f"limit of {limit} documents ({profile.limit_note})"
            )
        return batch_size

    # ---------------------------------------------------------------- batching and parsing

    def _batches(self, query: str, texts: list[str]) -> list[tuple[int, list[str]]]:
        """(offset, documents) parts within the per-request count and byte limits."""
        parts: list[tuple[int, list[str]]] = []
        start, size, used = 0, 0, 0
        limit_docs, limit_bytes = self.batch_size, self.profile.max_bytes
        for i, text in enumerate(texts):
            cost = self.profile.request_bytes(query, text) if limit_bytes else 0
            full = (limit_docs is not None and size >= limit_docs) or (
                limit_bytes is not None and size > 0 and used + cost > limit_bytes
            )
            if full:
                parts.append((start, texts[start:i]))
                start, size, used = i, 0, 0
            if limit_bytes is not None and cost > limit_bytes:
                raise RemoteRerankError(
                    self.provider,
                    f"texts[{i}] with the query is {cost} bytes, over the provider's "
                    f"per-request limit of {limit_bytes} bytes",
                )
            size += 1
            used += cost
        parts.append((start, texts[start:]))
        return parts

    def _parse(self, response: Any, n: int) -> list[float]:
        """Scores in input order from one response for ``n`` documents, or a clear error."""
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise RemoteRerankError(
                self.provider,
                f"the answer from {self.url} is not valid JSON ({exc}); body starts "
                f"{response.text[:120]!r}",
                response.status_code,
            ) from None
        key = self.profile.results_key
        if key is None:
            results = data
        else:
            results = data.get(key) if isinstance(data, dict) else None
        if not isinstance(results, list):
            where = f"a {key!r} list" if key else "a list"
            raise RemoteRerankError(
                self.provider,
                f"the answer from {self.url} has no {where} of results",
                response.status_code,
            )
        if len(results) != n:
            raise RemoteRerankError(
                self.provider,
                f"returned {len(results)} results for {n} documents",
                response.status_code,
            )
        scores: list[float | None] = [None] * n
        for item in results:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, bool) or not isinstance(index, int):
                raise RemoteRerankError(
                    self.provider, f"result without an integer index: {item!r:.200}"
                )
            if not 0 <= index < n:
                raise RemoteRerankError(
                    self.provider, f"returned index {index}, out of range for {n} documents"
                )
            if scores[index] is not None:
                raise RemoteRerankError(self.provider, f"returned index {index} twice")
            score = item.get(self.profile.score_key)
            if not _is_number(score) or not math.isfinite(score):
                raise RemoteRerankError(
                    self.provider,
                    f"returned a non-numeric score {score!r:.50} for index {index}",
                )
            scores[index] = float(score)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:  # pragma: no cover - the count and duplicate checks make this unreachable
            raise RemoteRerankError(self.provider, f"returned no score for indices {missing}")
        return [float(s) for s in scores if s is not None]

    def _redact(self, text: str) -> str:
        if self._key is not None and self._key.value:
            text = text.replace(self._key.value, "<api key>")
        return text

    def _status_error(self, response: Any, attempts: int) -> RemoteRerankError:
        status = response.status_code
        message = self._redact(_provider_message(response))
        if status in (401, 403):
            if self.profile.key_env:
                hint = f"check {self.profile.key_env} or api_key="
            else:
                hint = "check api_key= (the server's --api-key)"
            text = f"the API key was refused (HTTP {status}); {hint}"
            if message:
                text += f". The server said: {message}"
        elif status == 429:
            text = f"rate limited (HTTP 429) by {self.url} after {attempts} attempt(s): {message}"
        elif status >= 500:
            text = (
                f"server error HTTP {status} from {self.url} after {attempts} attempt(s): {message}"
            )
        else:
            text = f"HTTP {status} from {self.url}: {message}"
        return RemoteRerankError(self.provider, text, status)

    def _transport_error(self, exc: Exception, attempts: int) -> RemoteRerankError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            text = (
                f"no answer from {self.url} within the {self.timeout:g} s timeout "
                f"({type(exc).__name__}, {attempts} attempt(s))"
            )
        else:
            detail = self._redact(str(exc)) or type(exc).__name__
            text = f"could not reach {self.url}: {detail} ({attempts} attempt(s))"
        return RemoteRerankError(self.provider, text)

    def _next_wait(self, attempt: int, response: Any | None) -> float:
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return self.retry.delay(attempt, retry_after, self._rng)

    # ---------------------------------------------------------------- one request, sync/async

    def _post(self, query: str, docs: list[str]) -> list[float]:
        import httpx

        body = self.profile.body(self.model_name, query, docs)
        attempt = 0
        while True:
            response = None
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_retries:
                    raise self._transport_error(exc, attempt + 1) from None
                reason = type(exc).__name__
            else:
                if response.status_code < 400:
                    return self._parse(response, len(docs))
                if attempt >= self.retry.max_retries or not RetryPolicy.retryable_status(
                    response.status_code
                ):
                    raise self._status_error(response, attempt + 1)
                reason = f"HTTP {response.status_code}"
            wait = self._next_wait(attempt, response)
            logger.warning(
                "%s: %s from %s; retry %d of %d in %.2f s",
                self.provider,
                reason,
                self.url,
                attempt + 1,
                self.retry.max_retries,
                wait,
            )
            time.sleep(wait)
            attempt += 1

    async def _apost(self, client: Any, query: str, docs: list[str]) -> list[float]:
        import httpx

        body = self.profile.body(self.model_name, query, docs)
        attempt = 0
        while True:
            response = None
            try:
                response = await client.post(self.url, json=body)
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_retries:
                    raise self._transport_error(exc, attempt + 1) from None
                reason = type(exc).__name__
            else:
                if response.status_code < 400:
                    return self._parse(response, len(docs))
                if attempt >= self.retry.max_retries or not RetryPolicy.retryable_status(
                    response.status_code
                ):
                    raise self._status_error(response, attempt + 1)
                reason = f"HTTP {response.status_code}"
            wait = self._next_wait(attempt, response)
            logger.warning(
                "%s: %s from %s; retry %d of %d in %.2f s",
                self.provider,
                reason,
                self.url,
                attempt + 1,
                self.retry.max_retries,
                wait,
            )
            await asyncio.sleep(wait)
            attempt += 1

    def _aclient(self) -> Any:
        """The ``httpx.AsyncClient`` of the running event loop (one per loop, pooled)."""
        import httpx

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = httpx.AsyncClient(headers=self._headers(), timeout=self._httpx_timeout)
            self._aclients[loop] = client
        return client

    # ---------------------------------------------------------------- Reranker hooks

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        parts = self._batches(query, texts)
        if len(parts) == 1:
            return self._post(query, parts[0][1])
        out: list[float] = [0.0] * len(texts)
        with ThreadPoolExecutor(max_workers=min(len(parts), 16)) as pool:
            futures = [(start, pool.submit(self._post, query, docs)) for start, docs in parts]
            for start, future in futures:
                scores = future.result()
                out[start : start + len(scores)] = scores
        return out

    async def _ascore(self, query: str, texts: list[str]) -> list[float]:
        client = self._aclient()
        parts = self._batches(query, texts)
        results = await asyncio.gather(*(self._apost(client, query, docs) for _, docs in parts))
        out: list[float] = [0.0] * len(texts)
        for (start, _), scores in zip(parts, results, strict=True):
            out[start : start + len(scores)] = scores
        return out

    def _score_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        # No model lock: httpx clients are thread-safe, and serialising calls would make
        # concurrent threads wait on each other's network round trips.
        if not texts:
            return [], []
        return self._checked_scores(texts, self._score(query, texts), None)

    async def _ascore_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        if not texts:
            return [], []
        return self._checked_scores(texts, await self._ascore(query, texts), None)

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Async ``score`` on an ``httpx.AsyncClient``: no worker thread, the loop keeps running.

        Example:
            >>> await reranker.ascore("capital of France", ["Berlin", "Paris"])  # doctest: +SKIP
            [0.02, 0.97]
        """
        q = check_query(query)
        items = check_texts(texts)
        if not items:
            return []
        return (await self._ascore_checked(q, items))[0]

    async def _arank(self, query: str, texts: list[str]) -> list[Ranked]:
        """``arerank`` awaits this: an ``httpx.AsyncClient`` call (no worker thread).

        Example:
            >>> import asyncio  # doctest: +SKIP
            >>> queries = ["q1", "q2", "q3"]  # doctest: +SKIP
            >>> await asyncio.gather(*(reranker.arerank(q, docs, top_n=5) for q in queries))  # doctest: +SKIP
        """
        return ranked_by_score(*(await self._ascore_checked(query, texts)))

    # ---------------------------------------------------------------- lifecycle

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
