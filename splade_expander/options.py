"""The options of one expansion and their one set of rules: the library (``Expander.expand``), HTTP and direct
requests (request.py) and the OpenAPI document (openapi.py) all check against ``FIELDS``. No Lambda here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import InvalidRequestError
from .formats import FORMATS as OUTPUT_FORMATS
from .queries import QUERY_ENCODERS


class Kind(StrEnum):
    """What a text is: a document (windows over long text) or a query (one window, its own encoder)."""

    DOCUMENT = "document"
    QUERY = "query"


KINDS = tuple(Kind)
SPARSE_EMBEDDING_FORMATS = ("word", "lexical", "token_id")  # ml-commons' SparseEmbeddingFormat, and lexical
CONTENT_TYPES = {"query": Kind.QUERY, "passage": Kind.DOCUMENT}  # ml-commons' asymmetric-model content_type


@dataclass(frozen=True)
class Field:
    """One request field: its JSON type and constraints."""

    name: str
    type: str  # JSON Schema type
    description: str
    default: Any = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    nullable: bool = False
    items: str | None = None  # item type of an array
    any_case: bool = False  # the enum's values in any letter case (ml-commons sends WORD, TOKEN_ID, QUERY)


FIELDS: tuple[Field, ...] = (
    Field("texts", "array", "Texts to expand (1 to MAX_TEXTS). Use `text` for one text.", items="string"),
    Field("text", "string", "One text to expand (instead of `texts`)."),
    Field("kind", "string", "`document` (windows over long text) or `query` (one window).", "document", KINDS),
    Field("top_k", "integer", "Keep at most this many terms, heaviest first; null keeps all.", None, (), 1, True),
    Field("min_weight", "number", "Keep terms whose weight is >= this value.", 0.0, (), 0.0),
    Field(
        "format", "string", "`indices` (indices + values), `terms` ({term: weight}) or `both`.", "indices",
        OUTPUT_FORMATS,
    ),
    Field("truncate", "boolean", "Only the first window of a long text (default: every window, max-pooled).", False),
    Field(
        "query_encoder", "string", "kind=query only: `idf` (no model run; needs idf.json) or `model`; null: idf when "
        "the model has an idf.json, else its query model, else the document model.", None, QUERY_ENCODERS, None, True,
    ),
    Field(
        "chunks", "boolean", "Also return each window's vector with the character span [start, end) of the text "
        "it covers.", False,
    ),
    Field(
        "prune", "object", "OpenSearch-style pruning: {\"type\": \"top_k\" | \"max_ratio\" | \"abs_value\" | "
        "\"alpha_mass\", \"value\": x}; not together with top_k or min_weight.", None, (), None, True,
    ),
    Field(
        "sparse_embedding_format", "string", "OpenSearch ml-commons' parameter, any case: `word` (or `lexical`) or "
        "`token_id`. With it, the response's `response` holds one map per text, term -> weight (`word`) or vocabulary "
        "id as a string -> weight (`token_id`), instead of `data`.", None, SPARSE_EMBEDDING_FORMATS, None, True,
        any_case=True,
    ),
    Field(
        "content_type", "string", "OpenSearch ml-commons' parameter, any case: `query` (kind query) or `passage` "
        "(kind document); not together with a different `kind`.", None, tuple(CONTENT_TYPES), None, True, any_case=True,
    ),
)  # fmt: skip
FIELD_BY_NAME = {f.name: f for f in FIELDS}


def is_finite_number(value: float) -> bool:
    """Finite and representable as a float (a JSON integer may be written out past float range: 10**400)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_ok(value: Any, json_type: str) -> bool:
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and is_finite_number(value)
    if json_type == "array":
        return isinstance(value, list)
    if json_type == "object":
        return isinstance(value, dict)
    return False


def _article(json_type: str) -> str:
    return f"an {json_type}" if json_type[0] in "aeiou" else f"a {json_type}"


def check_value(f: Field, value: Any) -> None:
    """``value`` for field ``f``: its type, enum and minimum (InvalidRequestError naming the field)."""
    if value is None and f.nullable:
        return
    if not _type_ok(value, f.type):
        got = json_type_name(value)
        if f.type == "number" and isinstance(value, float):
            got = "a non-finite number"
        elif f.type == "number" and isinstance(value, int) and not isinstance(value, bool):
            got = "an integer beyond the float range"
        raise InvalidRequestError(f"{f.name} must be {_article(f.type)}, not {got}", field=f.name)
    if f.enum and (value.lower() if f.any_case and isinstance(value, str) else value) not in f.enum:
        raise InvalidRequestError(f"{f.name} must be one of {', '.join(f.enum)}", field=f.name)
    if f.minimum is not None and value < f.minimum:
        raise InvalidRequestError(f"{f.name} must be >= {f.minimum:g}", field=f.name)


def check_options(options: Mapping[str, Any]) -> None:
    """Options other than the texts (kind, top_k, min_weight, format, truncate), by the FIELDS rules."""
    for name, value in options.items():
        check_value(FIELD_BY_NAME[name], value)


def check_texts(texts: Any) -> None:
    """A non-string sequence of strings (the library accepts any sequence; JSON gives a list)."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidRequestError(f"texts must be an array of strings, not {json_type_name(texts)}", field="texts")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestError(f"texts[{i}] must be a string, not {json_type_name(text)}", index=i)
