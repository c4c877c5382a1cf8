"""The OpenAPI 3.1 description of ``rerank-kit serve`` (served at ``/openapi.json``).

Example:
    >>> doc = openapi_document(["fast"])
    >>> sorted(doc["paths"])[:3]
    ['/health', '/metrics', '/ready']
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_DOC_ITEM = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "additionalProperties": {"type": "string"},
        },
    ]
}
_COHERE_ERROR = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "message": {"type": "string"}},
}
_TEI_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}},
}


def _cohere_request(models: list[str], *, model_required: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["query", "documents", *(["model"] if model_required else [])],
        "properties": {
            "model": {"type": "string", "enum": models},
            "query": {"type": "string"},
            "documents": {"type": "array", "items": _DOC_ITEM, "minItems": 1},
            "top_n": {"type": "integer", "minimum": 1},
            "return_documents": {"type": "boolean", "default": False},
            "max_tokens_per_doc": {"type": "integer", "minimum": 1},
            "rank_fields": {"type": "array", "items": {"type": "string"}},
        },
    }


def _cohere_answer(v1: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "relevance_score"],
                "properties": {
                    "index": {"type": "integer"},
                    "relevance_score": {
                        "type": "number",
                        "description": "The calibrated probability when the served pipeline "
                        "has one, else the model's score",
                    },
                    "document": {"type": "object"},
                },
            },
        },
        "meta": {
            "type": "object",
            "properties": {
                "api_version": {"type": "object"},
                "billed_units": {
                    "type": "object",
                    "properties": {"search_units": {"type": "number"}},
                },
            },
        },
    }
    if v1:
        props["model"] = {"type": "string"}
        props["usage"] = {"type": "object", "properties": {"total_tokens": {"type": "integer"}}}
    return {"type": "object", "properties": props}


def _errors(schema: dict[str, Any], codes: tuple[int, ...]) -> dict[str, Any]:
    return {
        str(code): {
            "description": "error",
            "content": {"application/json": {"schema": schema}},
        }
        for code in codes
    }


def _post(summary: str, request: dict[str, Any], answer: dict[str, Any], error: Any) -> Any:
    codes = (400, 401, 404, 413, 422, 429, 500, 503, 504)
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request}},
            },
            "responses": {
                "200": {
                    "description": "ranked",
                    "content": {"application/json": {"schema": answer}},
                },
                **_errors(error, codes),
            },
        }
    }


def openapi_document(models: list[str]) -> dict[str, Any]:
    """The OpenAPI document for a server of ``models``."""
    tei_request = {
        "type": "object",
        "required": ["query", "texts"],
        "properties": {
            "query": {"type": "string"},
            "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "raw_scores": {"type": "boolean", "default": False},
            "return_text": {"type": "boolean", "default": False},
            "truncate": {"type": "boolean", "default": False},
            "truncation_direction": {"type": "string", "enum": ["Right"]},
        },
    }
    tei_answer = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"},
                "score": {"type": "number"},
                "text": {"type": "string"},
            },
        },
    }
    plain = {
        "get": {"responses": {"200": {"description": "ok"}, "503": {"description": "not yet"}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rerank-kit serve",
            "description": "Cohere-, Jina- and TEI-compatible rerank endpoints",
            "version": "1",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/v2/rerank": _post(
                "Cohere Rerank API v2",
                _cohere_request(models, model_required=True),
                _cohere_answer(False),
                _COHERE_ERROR,
            ),
            "/v1/rerank": _post(
                "Cohere v1 and Jina rerank",
                _cohere_request(models, model_required=False),
                _cohere_answer(True),
                _COHERE_ERROR,
            ),
            "/rerank": _post(
                "Text Embeddings Inference rerank", tei_request, tei_answer, _TEI_ERROR
            ),
            "/health": plain,
            "/ready": plain,
            "/metrics": plain,
            "/v1/models": plain,
        },
    }
