"""An HTTP or direct expand request -> ExpandRequest: the body's fields checked by the library's rules
(options.FIELDS), then the function's limits (MAX_TEXTS, MAX_TEXT_CHARS; Settings). ``prune`` is checked by
``prune.Prune.parse``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splade_expander.errors import InvalidRequestError, PayloadTooLargeError, echo
from splade_expander.options import CONTENT_TYPES, FIELD_BY_NAME, check_texts, check_value, json_type_name
from splade_expander.prune import Prune, one_way_only

from ..config import Settings


@dataclass(frozen=True)
class ExpandRequest:
    texts: list[str]
    kind: str = "document"
    top_k: int | None = None
    min_weight: float = 0.0
    format: str = "indices"
    truncate: bool = False
    prune: Prune | None = None
    chunks: bool = False
    query_encoder: str | None = None
    sparse_embedding_format: str | None = None  # word | lexical | token_id: the response's `response` maps


def check_limits(texts: Sequence[str], limits: Settings) -> None:
    """MAX_TEXTS and MAX_TEXT_CHARS (413), checked after the shape and types (400)."""
    if len(texts) > limits.max_texts:
        raise PayloadTooLargeError(
            f"{len(texts)} texts exceed the limit of {limits.max_texts} per request", field="texts",
            code="too_many_texts",
        )  # fmt: skip
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise PayloadTooLargeError(
                f"texts[{i}] has {len(text)} characters; the limit is {limits.max_text_chars}", index=i,
                code="text_too_long", reason="max_text_chars",
            )  # fmt: skip


def _ml_commons(options: dict[str, Any]) -> None:
    """ml-commons' parameters, checked by FIELDS: the format lower-cased, ``content_type`` turned into ``kind``
    (``passage`` is a document); a ``kind`` that says otherwise is refused."""
    if options.get("sparse_embedding_format") is not None:
        options["sparse_embedding_format"] = options["sparse_embedding_format"].lower()
        if options.get("chunks"):
            raise InvalidRequestError("chunks has no place in ml-commons' token maps", field="chunks")
    content_type = options.pop("content_type", None)
    if content_type is not None:
        kind = CONTENT_TYPES[content_type.lower()]
        if options.get("kind", kind) != kind:
            raise InvalidRequestError(
                f"content_type {echo(content_type)} means kind {kind}, but kind is {echo(options['kind'])}",
                field="content_type",
            )
        options["kind"] = str(kind)


def parse_request(payload: Any, limits: Settings) -> ExpandRequest:
    """Validate a request object against FIELDS and the limits; raise a typed error naming the field.

    Shape and type errors (400) are found before limits (413), and both before any inference.
    """
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"the request must be a JSON object, not {json_type_name(payload)}")
    for key in payload:
        if key not in FIELD_BY_NAME:
            raise InvalidRequestError(f"unknown field {echo(repr(key))}", field=echo(str(key)))
    if ("texts" in payload) == ("text" in payload):
        raise InvalidRequestError("give exactly one of `texts` (a list) or `text` (a string)", field="texts")
    for name, value in payload.items():
        check_value(FIELD_BY_NAME[name], value)
    options = dict(payload)
    if options.get("prune") is not None:
        if "top_k" in options or "min_weight" in options:
            raise one_way_only()
        options["prune"] = Prune.parse(options["prune"])
    _ml_commons(options)
    texts = options.pop("texts", None)
    if texts is None:
        texts = [options.pop("text")]
    if not texts:
        raise InvalidRequestError("texts must not be empty", field="texts")
    check_texts(texts)
    check_limits(texts, limits)
    return ExpandRequest(texts=texts, **options)
