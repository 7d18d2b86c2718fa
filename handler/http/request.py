"""An HTTP or direct expand request -> ExpandRequest: the body's fields checked by the library's rules
(options.FIELDS), then the function's limits (MAX_TEXTS, MAX_TEXT_CHARS; Settings). ``prune`` is checked by
``prune.Prune.parse``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splade_expander.errors import InvalidRequestError, PayloadTooLargeError, echo
from splade_expander.options import FIELD_BY_NAME, check_texts, check_value, json_type_name
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
    texts = options.pop("texts", None)
    if texts is None:
        texts = [options.pop("text")]
    if not texts:
        raise InvalidRequestError("texts must not be empty", field="texts")
    check_texts(texts)
    check_limits(texts, limits)
    return ExpandRequest(texts=texts, **options)
