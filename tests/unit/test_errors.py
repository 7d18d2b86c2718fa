"""The error-code registry (errors.CODES): every code the product raises or records is registered once, and the
OpenAPI document, the docs and the permanent/transient split derive from it."""

from __future__ import annotations

import ast
import re

import pytest

from devkit import MODEL_DIR, ROOT
from devkit.events import http_event, http_response_body
from handler import app
from handler.http import openapi
from splade_expander.errors import CODES, PERMANENT_CODES, REASONS, ObjectFailedError, PayloadTooLargeError, codes_where
from splade_expander.expander import Expander


def raised_codes() -> dict[str, set[str]]:
    """Every error code literal in the library, the function and the tools: ``code="x"`` arguments, ``code = "x"``
    class attributes, the code of a DocumentError(line, "x", ...) and ``{"code": "x"}`` records; by file."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for d in ("splade_expander", "handler", "splade_tools") for p in (ROOT / d).rglob("*.py")):
        codes: set[object] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                codes |= {k.value.value for k in node.keywords if k.arg == "code" and isinstance(k.value, ast.Constant)}
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name == "DocumentError" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    codes.add(node.args[1].value)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
                    codes.add(node.value.value)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                        codes.add(value.value)
        found[path.name] = {c for c in codes if isinstance(c, str)}
    return found


def test_every_raised_code_is_registered_and_every_registered_code_is_raised() -> None:
    """A code written anywhere in the library, the function or the tools that the registry lacks fails here, and so
    does a registered code that nothing raises any more. (object_failed and payload_too_large are class defaults
    every raise overrides.)"""
    found = raised_codes()
    written = set().union(*found.values()) - {"object_failed", "payload_too_large"}
    unregistered = {
        f: sorted(c - set(CODES)) for f, c in found.items() if c - set(CODES) - {"object_failed", "payload_too_large"}
    }
    assert unregistered == {}
    assert set(CODES) - written == set()


def test_the_permanent_split_and_the_openapi_codes_derive_from_the_registry() -> None:
    """Permanent object failures are the registry's; the OpenAPI error enum is its HTTP request codes by status."""
    assert {
        "object_too_large",
        "unsupported_type",
        "binary_object",
        "not_utf8",
        "unreadable_object",
        "too_many_runs",
    } == PERMANENT_CODES
    assert ObjectFailedError("x", code="not_utf8").permanent and not ObjectFailedError("x", code="timeout").permanent
    http = {c for c in codes_where("request") if c not in openapi.DIRECT_ONLY}
    assert {c for codes in openapi.ERROR_CODES.values() for c in codes} == http
    assert all(CODES[c].status == status for status, codes in openapi.ERROR_CODES.items() for c in codes)
    schema = openapi.ERROR_SCHEMA["properties"]["error"]["properties"]  # type: ignore[index]
    assert schema["reason"]["enum"] == sorted(REASONS["text_too_long"])


def test_ingest_docs_list_every_line_code() -> None:
    """docs/ingest.md names every errors-file line code the registry has (more_errors is described apart)."""
    text = (ROOT / "docs" / "ingest.md").read_text()
    sentence = text[text.index("`…<key>.errors.jsonl` when some lines were bad") :].split("The good lines")[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", sentence)) - {"code"} >= set(codes_where("line")) - {"more_errors"}
    assert "more_errors" in text


def test_one_public_code_tells_its_checks_apart_by_reason(lambda_context) -> None:
    """text_too_long stays the code on the wire for its three request checks; `reason` says which: the
    MAX_TEXT_CHARS limit (HTTP), MAX_WINDOWS windows, the characters any MAX_WINDOWS windows can hold."""
    long_text = "a " * 10_001
    status, body = http_response_body(app.lambda_handler(http_event({"text": long_text}), lambda_context))
    assert (status, body["error"]["code"], body["error"]["reason"]) == (413, "text_too_long", "max_text_chars")
    small = Expander(MODEL_DIR, threads=1, max_windows=1)
    for text, reason in (("lung disease " * 200, "max_windows"), ("x" * (small.max_chars or 0) + "x", "chars_bound")):
        with pytest.raises(PayloadTooLargeError) as refused:
            small.expand([text])
        assert (refused.value.code, refused.value.reason) == ("text_too_long", reason)
        assert refused.value.to_dict()["error"]["reason"] == reason
