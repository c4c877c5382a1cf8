"""The rerank providers as data: one :class:`Profile` per hosted API or self-hosted engine.

A profile holds what differs between providers (endpoint, auth header, key variable, request
fields, where the results and scores sit in the answer, per-request limits) and nothing that
runs a request; every field cites the version of the provider's public API reference it follows.
Adding a provider is adding a row to :data:`PROFILES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._rerankers.remote.errors import RemoteRerankError
from rerank_kit._rerankers.remote.transport import MAX_JSON_DEPTH, JSONTooDeep

__all__ = [
    "PROFILES",
    "Answer",
    "Endpoint",
    "Limits",
    "Profile",
    "Request",
    "answer_usage",
    "reply_usage",
]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Endpoint:
    """Where a provider listens and how it takes the key.

    Attributes:
        base_url: Default base URL (``None`` for self-hosted engines: the spec gives it).
        path: Endpoint path appended to the base URL.
        key_env: Environment variable holding the API key (``None``: no key needed).
        auth_header: The header that carries the key.
        auth_format: Its value, with ``{key}`` for the key.
        headers: Extra headers every request carries.
    """

    base_url: str | None
    path: str = "/rerank"
    key_env: str | None = None
    auth_header: str = "Authorization"
    auth_format: str = "Bearer {key}"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """The request body: ``model`` (if the provider takes one), ``query``, the documents.

    Attributes:
        docs_field: The field holding the documents.
        doc_key: If set, each document is sent as ``{doc_key: text}`` instead of a string.
        extra: Fixed fields (every document is scored: no ``top_n``).
        model: Whether the body names the model (a self-hosted engine then takes it after
            ``#`` in the spec).
        model_optional: The engine serves one model and takes the name only if given (sent
            when the spec has ``#MODEL``, left out otherwise).
    """

    docs_field: str = "documents"
    doc_key: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    model: bool = True
    model_optional: bool = False


@dataclass(frozen=True)
class Answer:
    """Where the scores sit in a success answer: ``[{"index": i, score_key: s}, ...]``.

    Attributes:
        results_key: Key of the result list (``None``: the body is the list).
        score_key: Key of the score in each result.
    """

    results_key: str | None = "results"
    score_key: str = "relevance_score"


@dataclass(frozen=True)
class Limits:
    """How much one request may carry (longer lists are split).

    Attributes:
        max_docs: Most documents per request (``None``: no count limit).
        note: Where ``max_docs`` comes from.
        by_model: ``max_docs`` of the models whose limit differs.
        max_bytes: Most payload bytes per request, as the provider counts them.
    """

    max_docs: int | None
    note: str
    by_model: Mapping[str, int] = field(default_factory=dict)
    max_bytes: int | None = None


@dataclass(frozen=True)
class Profile:
    """What rerank-kit knows about one rerank provider.

    Attributes:
        name: Spec prefix, e.g. ``"cohere"``.
        api: The version of the provider's public API reference this profile follows.
        endpoint: Where it listens and how it takes the key.
        limits: How much one request may carry.
        request: The request body's fields.
        answer: Where the scores sit in the answer.
        example: A spec example, for messages.
        permanent: Server messages (a part of them) that a retry cannot change although
            their status is 5xx, each with a hint for the error: not retried.
    """

    name: str
    api: str
    endpoint: Endpoint
    limits: Limits
    request: Request = field(default_factory=Request)
    answer: Answer = field(default_factory=Answer)
    example: str = ""
    permanent: Mapping[str, str] = field(default_factory=dict)

    @property
    def hosted(self) -> bool:
        """True for hosted APIs (they need a key); False for self-hosted engines."""
        return self.endpoint.key_env is not None

    def request_bytes(self, query: str, doc: str) -> int:
        """Bytes one document adds to a request, as ZeroEntropy counts them (150 + query + doc)."""
        return 150 + len(query.encode("utf-8")) + len(doc.encode("utf-8"))

    def body(self, model: str, query: str, docs: list[str]) -> dict[str, Any]:
        """The JSON request body scoring every document (no ``top_n``: all are ranked).

        Example:
            >>> PROFILES["pinecone"].body("bge-reranker-v2-m3", "q", ["a"])["documents"]
            [{'text': 'a'}]
        """
        shape = self.request
        named = shape.model and (bool(model) or not shape.model_optional)
        body: dict[str, Any] = {"model": model} if named else {}
        body["query"] = query
        body[shape.docs_field] = [{shape.doc_key: d} for d in docs] if shape.doc_key else docs
        body.update(shape.extra)
        return body

    def target(self, model: str, base_url: str | None) -> tuple[str, str]:
        """(model name sent to the server, base URL) for a spec's model part.

        Example:
            >>> PROFILES["infinity"].target("http://gpu:7997#BAAI/bge-reranker-base", None)
            ('BAAI/bge-reranker-base', 'http://gpu:7997')
        """
        default = self.endpoint.base_url
        if default is not None:  # hosted
            if not model:
                raise ValueError(f"{self.name}: name the model, e.g. '{self.name}:MODEL'")
            return model, (base_url or default)
        url, _, served = model.partition("#")
        url = url.strip()
        if base_url is not None:
            if url:
                raise ValueError(
                    f"{self.name}: give the server URL once, in the spec or as base_url"
                )
            url = base_url
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"{self.name}: expected the server URL, e.g. '{self.example}', got {model!r}"
            )
        served = served.strip()
        if self.request.model and not self.request.model_optional and not served:
            raise ValueError(f"{self.name}: name the served model after '#', e.g. '{self.example}'")
        return served, url

    def permanent_hint(self, message: str) -> str | None:
        """The hint for a server message a retry cannot change, or ``None`` (retry as usual).

        Example:
            >>> PROFILES["llamacpp"].permanent_hint("input is too large to process. increase the physical batch size")[:30]
            'a (query, document) pair is lo'
        """
        for part, hint in self.permanent.items():
            if part in message:
                return hint
        return None

    def batch_limit(self, model: str, batch_size: int | None) -> int | None:
        """Documents per request: ``batch_size`` checked against the limit, or the limit."""
        limit = self.limits.by_model.get(model, self.limits.max_docs)
        if batch_size is None:
            return limit
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if self.hosted and limit is not None and batch_size > limit:
            raise ValueError(
                f"{self.name}: batch_size={batch_size} is over the provider's per-request "
                f"limit of {limit} documents ({self.limits.note})"
            )
        return batch_size

    def split(self, query: str, texts: list[str], max_docs: int | None) -> list[list[str]]:
        """Consecutive parts of ``texts`` within the per-request count and byte limits.

        Example:
            >>> PROFILES["tei"].split("q", ["a", "b", "c"], max_docs=2)
            [['a', 'b'], ['c']]
        """
        parts: list[list[str]] = []
        start, used = 0, 0
        limit_bytes = self.limits.max_bytes
        for i, text in enumerate(texts):
            cost = self.request_bytes(query, text) if limit_bytes else 0
            if limit_bytes is not None and cost > limit_bytes:
                raise RemoteRerankError(
                    self.name,
                    f"texts[{i}] with the query is {cost} bytes, over the provider's "
                    f"per-request limit of {limit_bytes} bytes",
                )
            size = i - start
            if size and (
                (max_docs is not None and size >= max_docs)
                or (limit_bytes is not None and used + cost > limit_bytes)
            ):
                parts.append(texts[start:i])
                start, used = i, 0
            used += cost
        parts.append(texts[start:])
        return parts

    def read_scores(self, response: Any, n: int, url: str) -> list[float]:
        """Scores in input order from one success answer for ``n`` documents, or a clear error.

        Every index must appear once and in range, with a finite numeric score: a bad answer
        raises :class:`RemoteRerankError`, never puts a score on the wrong document.
        """
        status = response.status_code
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            deep = isinstance(exc, (JSONTooDeep, RecursionError))
            what = (
                f"nests JSON deeper than {MAX_JSON_DEPTH} levels" if deep else "is not valid JSON"
            )
            raise RemoteRerankError(
                self.name,
                f"the answer from {url} {what} ({exc if not deep else 'HTTP ' + str(status)}); "
                f"body starts {response.text[:120]!r}: check that the URL is the provider's "
                "rerank endpoint",
                status,
            ) from None
        key = self.answer.results_key
        if key is None:
            results = data
        else:
            results = data.get(key) if isinstance(data, dict) else None
        if not isinstance(results, list):
            where = f"{key!r} list" if key else "list"
            raise RemoteRerankError(
                self.name, f"the answer from {url} has no {where} of results", status
            )
        if len(results) != n:
            raise RemoteRerankError(
                self.name, f"returned {len(results)} results for {n} documents", status
            )
        scores: list[float | None] = [None] * n
        for item in results:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, bool) or not isinstance(index, int):
                raise RemoteRerankError(
                    self.name, f"result without an integer index: {item!r:.200}"
                )
            if not 0 <= index < n:
                raise RemoteRerankError(
                    self.name, f"returned index {index}, out of range for {n} documents"
                )
            if scores[index] is not None:
                raise RemoteRerankError(self.name, f"returned index {index} twice")
            score = item.get(self.answer.score_key)
            # NaN, infinities and ints beyond float range (10**400) all fail, never overflow
            if not _is_number(score) or not (
                math.isfinite(score) if isinstance(score, float) else abs(score) <= 2**1023
            ):
                raise RemoteRerankError(
                    self.name, f"returned a non-numeric score {score!r:.50} for index {index}"
                )
            scores[index] = float(score)
        # the count and duplicate checks above leave no index without a score
        return [float(s) for s in scores if s is not None]


def _count(value: Any) -> float | None:
    if _is_number(value) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def reply_usage(profile: Profile, reply: Any) -> tuple[int, dict[str, float]]:
    """``answer_usage`` of an answer object (its ``json()``); nothing when it is not JSON."""
    try:
        data = reply.json()
    except (ValueError, RecursionError):  # read_scores already accepted it: not reached
        return 0, {}
    return answer_usage(profile, data)


def answer_usage(profile: Profile, data: Any) -> tuple[int, dict[str, float]]:
    """(tokens the provider reports, the units it bills) from one success answer's JSON.

    Cohere bills ``meta.billed_units`` (``search_units``); Jina and Voyage bill
    ``usage.total_tokens`` (as ``tokens``); Pinecone ``usage.rerank_units``. Self-hosted
    engines (llama.cpp, Infinity) report ``usage.total_tokens`` but bill nothing; ZeroEntropy
    reports ``total_tokens`` at the top level. Anything missing or not a count is left out.

    Example:
        >>> answer_usage(PROFILES["cohere"], {"meta": {"billed_units": {"search_units": 1}}})
        (0, {'search_units': 1.0})
        >>> answer_usage(PROFILES["jina"], {"usage": {"total_tokens": 42}})
        (42, {'tokens': 42.0})
    """
    if not isinstance(data, dict):
        return 0, {}
    billed: dict[str, float] = {}
    meta = data.get("meta")
    units = meta.get("billed_units") if isinstance(meta, dict) else None
    if isinstance(units, dict):
        for unit, value in units.items():
            amount = _count(value)
            if amount is not None and isinstance(unit, str):
                billed[unit] = amount
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    total = _count(usage.get("total_tokens", data.get("total_tokens")))
    tokens = int(total) if total is not None else 0
    if profile.hosted and total is not None:
        billed.setdefault("tokens", total)
    rerank_units = _count(usage.get("rerank_units"))
    if rerank_units is not None:
        billed["rerank_units"] = rerank_units
    return tokens, billed


#: The providers ``RemoteReranker`` and ``load_reranker`` know, keyed by spec prefix.
PROFILES: dict[str, Profile] = {
    "cohere": Profile(
        "cohere",
        # https://docs.cohere.com/reference/rerank (API v2): top_n omitted = every document scored.
        api="Cohere Rerank API v2 (POST /v2/rerank)",
        endpoint=Endpoint("https://api.cohere.com", "/v2/rerank", "COHERE_API_KEY"),
        limits=Limits(1000, "Cohere recommends at most 1,000 documents per request"),
    ),
    "voyage": Profile(
        "voyage",
        # https://docs.voyageai.com/reference/reranker-api: top_k null = every document scored.
        api="Voyage AI Reranker API v1 (POST /v1/rerank)",
        endpoint=Endpoint("https://api.voyageai.com", "/v1/rerank", "VOYAGE_API_KEY"),
        limits=Limits(1000, "the number of documents cannot exceed 1,000"),
        request=Request(extra={"return_documents": False, "truncation": True}),
        answer=Answer("data"),
    ),
    "jina": Profile(
        "jina",
        # https://api.jina.ai/v1/rerank (Jina Reranker API v1).
        api="Jina Reranker API v1 (POST /v1/rerank)",
        endpoint=Endpoint("https://api.jina.ai", "/v1/rerank", "JINA_API_KEY"),
        limits=Limits(1000, "no cap is documented; rerank-kit sends at most 1,000 per request"),
        request=Request(extra={"return_documents": False}),
    ),
    "pinecone": Profile(
        "pinecone",
        # Pinecone Inference API 2025-10: documents are objects ranked on "text"; the
        # per-model document limits are from its model guide.
        api="Pinecone Inference API 2025-10 (POST /rerank, X-Pinecone-Api-Version: 2025-10)",
        endpoint=Endpoint(
            "https://api.pinecone.io",
            key_env="PINECONE_API_KEY",
            auth_header="Api-Key",
            auth_format="{key}",
            headers={"X-Pinecone-Api-Version": "2025-10"},
        ),
        limits=Limits(
            100,
            "bge-reranker-v2-m3 takes at most 100 documents (cohere-rerank-3.5: 200)",
            by_model={
                "bge-reranker-v2-m3": 100,
                "pinecone-rerank-v0": 100,
                "cohere-rerank-3.5": 200,
            },
        ),
        request=Request(doc_key="text", extra={"return_documents": False}),
        answer=Answer("data", "score"),
    ),
    "zeroentropy": Profile(
        "zeroentropy",
        # https://docs.zeroentropy.dev/api-reference/models/rerank (v1): top_n omitted = all.
        api="ZeroEntropy API v1 (POST /v1/models/rerank)",
        endpoint=Endpoint(
            "https://api.zeroentropy.dev", "/v1/models/rerank", "ZEROENTROPY_API_KEY"
        ),
        limits=Limits(
            None,
            "at most 5,000,000 payload bytes, counted as 150 + query + document per document",
            max_bytes=5_000_000,
        ),
    ),
    "tei": Profile(
        "tei",
        # Text Embeddings Inference router 1.x. raw_scores=False returns the sigmoid (what
        # CrossEncoder.predict gives for a one-label model); truncate=True cuts long pairs at
        # the model limit as local cross-encoders do, instead of a 413/422.
        api="Text Embeddings Inference 1.x router (POST /rerank)",
        endpoint=Endpoint(None),
        limits=Limits(32, "the server's --max-client-batch-size, 32 by default"),
        request=Request(
            docs_field="texts",
            extra={"raw_scores": False, "return_text": False, "truncate": True},
            model=False,
        ),
        answer=Answer(None, "score"),
        example="tei:http://HOST:PORT",
    ),
    "infinity": Profile(
        "infinity",
        # infinity-emb 0.0.78, RerankInput: raw_scores=False applies the sigmoid.
        api="infinity-emb 0.0.78 (POST /rerank)",
        endpoint=Endpoint(None),
        limits=Limits(2048, "INFINITY_MAX_CLIENT_BATCH_SIZE, 2,048 by default"),
        request=Request(extra={"return_documents": False, "raw_scores": False}),
        example="infinity:http://localhost:7997#BAAI/bge-reranker-base",
    ),
    "llamacpp": Profile(
        "llamacpp",
        # llama.cpp tools/server (llama-server --reranking; README "POST /reranking" and
        # handle_rerank): POST /v1/rerank (aliases /rerank, /reranking, /v1/reranking), body
        # {model?, query, documents: [str], top_n?}; without top_n every document comes back.
        # The answer {model, object: "list", usage, results: [{index, relevance_score}]} is
        # sorted by score, so scores are read by index; relevance_score is the GGUF model's
        # rank head output as it computes it (raw logits for bge-reranker-v2-m3, no sigmoid).
        # Errors: {"error": {"code", "message", "type"}}; a pair longer than the physical
        # batch is refused with HTTP 500 whatever the retry.
        api="llama.cpp llama-server --reranking (POST /v1/rerank)",
        endpoint=Endpoint(None, "/v1/rerank"),
        limits=Limits(
            None,
            "no document count limit; each (query, document) pair must fit the server's "
            "physical batch (--ubatch-size, 512 tokens by default)",
        ),
        request=Request(model_optional=True),
        example="llamacpp:http://HOST:PORT",
        permanent={
            "input is too large to process": "a (query, document) pair is longer than the "
            "server's physical batch: restart llama-server with a larger --ubatch-size and "
            "--batch-size (e.g. -ub 8192 -b 8192), or send shorter passages",
            "does not support reranking": "start llama-server with --reranking and a "
            "reranker GGUF (its pooling type must be rank)",
        },
    ),
}
