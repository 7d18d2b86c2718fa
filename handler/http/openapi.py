"""The OpenAPI 3 document, generated from the routes (routes.ROUTES) and the request fields that validate input
(options.FIELDS)."""

from __future__ import annotations

from functools import cache
from typing import Any

from splade_expander.errors import CODES, REASONS, codes_where
from splade_expander.options import FIELDS, Field
from splade_expander.prune import PRUNE_TYPES

from .. import runtime
from . import service
from .routes import ROUTES

# The HTTP error codes by status, from the registry (errors.CODES): a direct-only or ingest code is not an HTTP answer.
DIRECT_ONLY = ("unrecognized_event", "ingest_failed")
ERROR_CODES: dict[int, list[str]] = {}
for _code in codes_where("request"):
    if _code not in DIRECT_ONLY:
        ERROR_CODES.setdefault(CODES[_code].status or 500, []).append(_code)


def _field_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": f.type, "description": f.description}
    if f.items:
        schema["items"] = {"type": f.items, "maxLength": runtime.settings.max_text_chars}
        schema["minItems"] = 1
        schema["maxItems"] = runtime.settings.max_texts
    if f.type == "string" and not f.enum:
        schema["maxLength"] = runtime.settings.max_text_chars
    if f.enum:  # any_case: ml-commons' upper-case spelling too (any other case is accepted as well)
        schema["enum"] = [*f.enum, *(v.upper() for v in f.enum)] if f.any_case else list(f.enum)
    if f.minimum is not None:
        schema["minimum"] = f.minimum
    if f.type == "object" and f.name == "prune":
        schema["required"] = ["type", "value"]
        schema["additionalProperties"] = False
        schema["properties"] = {"type": {"type": "string", "enum": list(PRUNE_TYPES)}, "value": {"type": "number"}}
    if f.nullable:
        schema["nullable"] = True
    if f.default is not None or f.nullable:
        schema["default"] = f.default
    return schema


def _request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Give exactly one of `texts` or `text`.",
        "properties": {f.name: _field_schema(f) for f in FIELDS},
    }


MODEL_SCHEMA = {
    "type": "object",
    "required": ["name", "precision", "sha256", "vocab_size"],
    "properties": {
        "name": {"type": "string", "example": "splade-tiny"},
        "precision": {"type": "string", "example": "int8"},
        "sha256": {"type": "string"},
        "vocab_size": {"type": "integer", "example": 30522},
        "encoder": {
            "type": "string",
            "enum": ["document", "query", "idf"],
            "description": "What produced the vectors: the document model, the query/ model, or idf.json weights.",
        },
        "encoders": {
            "type": "object",
            "description": "GET /v1/model: the encoders the model directory has, and `default_query_encoder`.",
        },
    },
}

VECTOR_SCHEMA = {
    "type": "object",
    "required": ["index", "tokens", "windows"],
    "properties": {
        "index": {"type": "integer", "description": "Position of the text in the request."},
        "indices": {"type": "array", "items": {"type": "integer"}, "description": "Vocabulary ids, heaviest first."},
        "values": {"type": "array", "items": {"type": "number"}, "description": "Weights, same order as indices."},
        "terms": {"type": "object", "additionalProperties": {"type": "number"}, "description": "{term: weight}"},
        "tokens": {"type": "integer", "description": "WordPiece tokens of the text the vector covers."},
        "windows": {"type": "integer", "description": "Model windows run for the text."},
        "chunks": {
            "type": "array",
            "description": "With `chunks: true`: each window's own vector, in text order.",
            "items": {
                "type": "object",
                "required": ["chunk", "span", "tokens"],
                "properties": {
                    "chunk": {"type": "integer", "description": "0-based window number."},
                    "span": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[start, end): text[start:end] is the window's text (characters).",
                    },
                    "indices": {"type": "array", "items": {"type": "integer"}},
                    "values": {"type": "array", "items": {"type": "number"}},
                    "terms": {"type": "object", "additionalProperties": {"type": "number"}},
                    "tokens": {"type": "integer", "description": "WordPiece tokens in the window."},
                },
            },
        },
    },
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": sorted({c for codes in ERROR_CODES.values() for c in codes})},
                "message": {"type": "string"},
                "field": {"type": "string", "example": "texts[3]"},
                "reason": {
                    "type": "string",
                    "description": "Which check, where one code covers several: "
                    + "; ".join(f"{code}: {', '.join(reasons)}" for code, reasons in REASONS.items()),
                    "enum": sorted({r for reasons in REASONS.values() for r in reasons}),
                },
            },
        }
    },
}


def _error(status: int, text: str) -> dict[str, Any]:
    return {
        "description": f"{text} (code: {', '.join(ERROR_CODES[status])})",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(ref: str, text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


OPERATIONS: dict[str, dict[str, Any]] = {
    "expand": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExpandRequest"}}},
        },
        "responses": {
            "200": _json("ExpandResponse", "One vector per text, in input order"),
            "400": _error(400, "Malformed JSON or a field of the wrong shape"),
            "413": _error(
                413,
                "Too many texts, a text too long, or a body too large. Lambda's 6 MB request limit applies to the "
                "whole invocation event (headers, request context and the body re-escaped as a JSON string, base64 "
                "for binary bodies), so a body near 6 MB or larger is refused before the function runs, by API "
                "Gateway or the Function URL, with their own 413 body (not this format)",
            ),
            "415": _error(415, "The body is not JSON"),
            "500": _error(500, "Unexpected failure; the message carries the request id"),
        },
    },
    "model": {"responses": {"200": _json("ModelResponse", "Model block and limits")}},
    "openapi": {"responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {}}}}},
}


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        operation = {"operationId": route.operation, "summary": route.summary, **OPERATIONS[route.operation]}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


@cache
def openapi_document() -> dict[str, Any]:
    limits = {k: {"type": "integer"} for k in service.limits_block()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SPLADE expander",
            "version": "1.0.0",
            "description": "Text -> learned sparse (SPLADE) vectors for sparse_vector, rank_features, sparse indexes.",
        },
        "paths": _paths(),
        "components": {
            "schemas": {
                "ExpandRequest": _request_schema(),
                "ExpandResponse": {
                    "type": "object",
                    "description": "`data`, or with `sparse_embedding_format` `response` (one map per text).",
                    "required": ["model", "usage"],
                    "properties": {
                        "model": {"$ref": "#/components/schemas/Model"},
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Vector"}},
                        "response": {
                            "type": "array",
                            "description": "sparse_embedding_format only: per text, in order, term (word) or "
                            "vocabulary id as a string (token_id) -> weight; OpenSearch neural-search's shape.",
                            "items": {"type": "object", "additionalProperties": {"type": "number"}},
                        },
                        "usage": {
                            "type": "object",
                            "properties": {"texts": {"type": "integer"}, "tokens": {"type": "integer"}},
                        },
                    },
                },
                "ModelResponse": {
                    "type": "object",
                    "properties": {
                        "model": {"$ref": "#/components/schemas/Model"},
                        "limits": {"type": "object", "properties": limits},
                    },
                },
                "Model": MODEL_SCHEMA,
                "Vector": VECTOR_SCHEMA,
                "Error": ERROR_SCHEMA,
            }
        },
    }
