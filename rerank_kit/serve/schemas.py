"""The request and answer of each schema ``rerank-kit serve`` speaks, and its error shape.

- ``cohere-v2``: ``POST /v2/rerank`` (Cohere Rerank API v2): ``model``, ``query``,
  ``documents`` (strings, or objects with ``text``), ``top_n``, ``return_documents``,
  ``max_tokens_per_doc``; answer ``{id, results: [{index, relevance_score, document?}],
  meta: {api_version, billed_units: {search_units}}}``; errors ``{id, message}``.
- ``cohere-v1``: ``POST /v1/rerank`` for Cohere v1 and Jina clients alike: Cohere's fields
  (``model`` optional, ``rank_fields`` for object documents) plus Jina's ``model`` and
  ``usage.total_tokens`` in the answer; Cohere-shaped errors.
- ``tei``: ``POST /rerank`` (Text Embeddings Inference 1.x router): ``query``, ``texts``,
  ``raw_scores``, ``return_text``, ``truncate``, ``truncation_direction``; answer a list
  ``[{index, score, text?}]``; errors ``{error, error_type}``.

``relevance_score`` (and TEI's ``score`` without ``raw_scores``) is the calibrated probability
when the served pipeline gives one (a ``probability`` attribute on its results), the score
otherwise: :func:`relevance` is the one place that decides it.

Example:
    >>> COHERE_V2.parse({"model": "m", "query": "q", "documents": ["a", {"text": "b"}]}).texts
    ['a', 'b']
    >>> TEI.error(422, "texts must be a list")
    {'error': 'texts must be a list', 'error_type': 'validation'}
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._core.types import Ranked

__all__ = ["COHERE_V1", "COHERE_V2", "SCHEMAS", "TEI", "ApiError", "Parsed", "Schema", "relevance"]

#: Cohere bills one search unit per request of up to 100 documents.
DOCS_PER_SEARCH_UNIT = 100


class ApiError(Exception):
    """A request the server refuses: HTTP ``status``, a message, extra headers."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, kind: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.kind = kind


def relevance(item: Ranked) -> float:
    """The ``relevance_score`` of one result: its calibrated probability, else its score.

    The hook for calibration: a pipeline that calibrates puts a ``probability`` (a float in
    [0, 1], or ``None``) on each result; nothing else in the server reads it.
    """
    probability = getattr(item, "probability", None)
    if isinstance(probability, (int, float)) and not isinstance(probability, bool):
        return float(probability)
    return float(item.score)


@dataclass
class Parsed:
    """One checked request, whatever its schema."""

    model: str | None
    query: str
    texts: list[str]
    documents: list[Any]
    top_n: int | None = None
    return_documents: bool = False
    max_tokens_per_doc: int | None = None
    raw_scores: bool = False
    truncate: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _bad(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def _string(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"{key!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _bad(f"{key!r} must not be empty")
    return value


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"{key!r} must be true or false, got {value!r:.40}")
    return value


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"{key!r} must be a positive integer, got {value!r:.40}")
    return value


def _object_text(doc: dict[str, Any], i: int, rank_fields: list[str] | None) -> str:
    if rank_fields:
        parts = []
        for key in rank_fields:
            value = doc.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise _bad(f"documents[{i}].{key} must be a string")
            parts.append(f"{key}: {value}")
        if not parts:
            raise _bad(f"documents[{i}] has none of the rank_fields {rank_fields}")
        return "\n".join(parts)
    text = doc.get("text")
    if not isinstance(text, str):
        raise _bad(f"documents[{i}] must be a string or an object with a string 'text'")
    return text


def _texts(raw: Any, key: str, *, objects: bool, rank_fields: list[str] | None) -> list[str]:
    if not isinstance(raw, list):
        raise _bad(f"{key!r} must be a list, got {type(raw).__name__}")
    if not raw:
        raise _bad(f"{key!r} must not be empty")
    texts: list[str] = []
    for i, doc in enumerate(raw):
        if isinstance(doc, str):
            text = doc
        elif objects and isinstance(doc, dict):
            text = _object_text(doc, i, rank_fields)
        else:
            kind = "a string or an object with 'text'" if objects else "a string"
            raise _bad(f"{key}[{i}] must be {kind}, got {type(doc).__name__}")
        if not text.strip():
            raise _bad(f"{key}[{i}] is empty or whitespace only: there is nothing to rank")
        texts.append(text)
    return texts


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    return body


class Schema:
    """One schema: its route, how its requests parse, how it answers and fails."""

    name = ""
    route = ""
    #: The HTTP status of a request the schema finds malformed.
    invalid_status = 400

    def parse(self, body: Any) -> Parsed:  # pragma: no cover - overridden
        """The checked request, or an :class:`ApiError` naming what is wrong."""
        raise NotImplementedError

    def answer(
        self, parsed: Parsed, ranked: Sequence[Ranked], model: str, tokens: int | None
    ) -> Any:  # pragma: no cover - overridden
        """The success body for ``ranked`` (best first, already cut to ``top_n``)."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> dict[str, Any]:
        """The error body (Cohere's shape; TEI overrides)."""
        return {"id": str(uuid.uuid4()), "message": message}


class _Cohere(Schema):
    version = "2"
    model_required = True

    def parse(self, body: Any) -> Parsed:
        body = _object(body)
        model = _string(body, "model", required=self.model_required)
        query = _string(body, "query", required=True) or ""
        rank_fields = body.get("rank_fields")
        if rank_fields is not None and (
            not isinstance(rank_fields, list) or not all(isinstance(f, str) for f in rank_fields)
        ):
            raise _bad("'rank_fields' must be a list of strings")
        if "documents" not in body:
            raise _bad("'documents' is required")
        texts = _texts(body["documents"], "documents", objects=True, rank_fields=rank_fields)
        return Parsed(
            model=model,
            query=query,
            texts=texts,
            documents=list(body["documents"]),
            top_n=_positive_int(body, "top_n"),
            return_documents=_flag(body, "return_documents", False),
            max_tokens_per_doc=_positive_int(body, "max_tokens_per_doc"),
        )

    def _results(self, parsed: Parsed, ranked: Sequence[Ranked]) -> list[dict[str, Any]]:
        results = []
        for item in ranked:
            entry: dict[str, Any] = {"index": item.index, "relevance_score": relevance(item)}
            if parsed.return_documents:
                doc = parsed.documents[item.index]
                entry["document"] = doc if isinstance(doc, dict) else {"text": doc}
            results.append(entry)
        return results

    def answer(
        self, parsed: Parsed, ranked: Sequence[Ranked], model: str, tokens: int | None
    ) -> Any:
        units = max(1, math.ceil(len(parsed.texts) / DOCS_PER_SEARCH_UNIT))
        return {
            "id": str(uuid.uuid4()),
            "results": self._results(parsed, ranked),
            "meta": {
                "api_version": {"version": self.version},
                "billed_units": {"search_units": units},
            },
        }


class _CohereV1(_Cohere):
    """Cohere v1 and Jina: ``model`` optional; the answer also names the model and tokens."""

    version = "1"
    model_required = False

    def answer(
        self, parsed: Parsed, ranked: Sequence[Ranked], model: str, tokens: int | None
    ) -> Any:
        body = super().answer(parsed, ranked, model, tokens)
        body["model"] = model
        body["usage"] = {"total_tokens": int(tokens or 0)}
        return body


class _Tei(Schema):
    invalid_status = 422

    def parse(self, body: Any) -> Parsed:
        try:
            body = _object(body)
            query = _string(body, "query", required=True) or ""
            if "texts" not in body:
                raise _bad("'texts' is required")
            texts = _texts(body["texts"], "texts", objects=False, rank_fields=None)
            direction = body.get("truncation_direction")
            if direction is not None and (
                not isinstance(direction, str) or direction.lower() not in ("right", "left")
            ):
                raise _bad("'truncation_direction' must be 'Right' or 'Left'")
            if isinstance(direction, str) and direction.lower() == "left":
                raise _bad("truncation_direction 'Left' is not supported: rerank-kit cuts the end")
            model = _string(body, "model", required=False)  # an extension: TEI serves one model
            return Parsed(
                model=model,
                query=query,
                texts=texts,
                documents=texts,
                return_documents=_flag(body, "return_text", False),
                raw_scores=_flag(body, "raw_scores", False),
                truncate=_flag(body, "truncate", False),
            )
        except ApiError as exc:
            raise ApiError(422, exc.message) from None

    def answer(
        self, parsed: Parsed, ranked: Sequence[Ranked], model: str, tokens: int | None
    ) -> Any:
        out = []
        for item in ranked:
            score = float(item.score) if parsed.raw_scores else relevance(item)
            entry: dict[str, Any] = {"index": item.index, "score": score}
            if parsed.return_documents:
                entry["text"] = parsed.texts[item.index]
            out.append(entry)
        return out

    def error(self, status: int, message: str) -> dict[str, Any]:
        kinds = {401: "unauthorized", 413: "validation", 422: "validation", 429: "overloaded"}
        kind = kinds.get(status, "validation" if status < 500 else "backend")
        if status == 503:
            kind = "unhealthy"
        return {"error": message, "error_type": kind}


COHERE_V2: Schema = _Cohere()
COHERE_V2.name, COHERE_V2.route = "cohere-v2", "/v2/rerank"
COHERE_V1: Schema = _CohereV1()
COHERE_V1.name, COHERE_V1.route = "cohere-v1", "/v1/rerank"
TEI: Schema = _Tei()
TEI.name, TEI.route = "tei", "/rerank"
#: Every schema, by route.
SCHEMAS: dict[str, Schema] = {s.route: s for s in (COHERE_V2, COHERE_V1, TEI)}
