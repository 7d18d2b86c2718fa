"""One S3 object's bytes -> documents and line errors -> vectors, streamed.

The input is read line by line (gzip decompressed on the fly, the decompressed size limited too), so memory
stays bounded for any input: a line is at most ``MAX_LINE_BYTES`` and a text object at most one document.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ObjectFailedError, PayloadTooLargeError
from .formats import render, render_chunks

MAX_LINE_BYTES = 4 * 1024 * 1024
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text", ".rst")


@dataclass
class Document:
    id: Any
    text: str
    line: int | None
    offset: int = 0  # byte offset of the line's start in the (decompressed) object


@dataclass
class DocumentError:
    """A line, or the one document of a text object, that gives no vector; or, with no line, the whole object
    (a permanent object failure). One record of the errors file."""

    line: int | None
    code: str
    reason: str
    offset: int = 0
    id: Any = None

    def record(self, source: dict[str, Any]) -> dict[str, Any]:
        """The errors-file record: ``{"id"?, "source": {..., "line"}, "code", "reason"}``."""
        record = {"source": {**source, "line": self.line}, "code": self.code, "reason": self.reason}
        return {"id": self.id, **record} if self.id is not None else record


class _LimitedReader(io.RawIOBase):
    """A raw stream over ``read(n)`` that fails once more than ``limit`` bytes came through."""

    def __init__(self, read: Callable[[int], bytes], limit: int, what: str) -> None:
        self._read, self._limit, self._what, self.count = read, limit, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        self.count += len(data)
        if self.count > self._limit:
            raise ObjectFailedError(f"{self._what} exceeds MAX_OBJECT_BYTES ({self._limit})", code="object_too_large")
        buffer[: len(data)] = data
        return len(data)


def open_stream(body: Any, key: str, limit: int) -> io.BufferedIOBase:
    """A buffered byte stream of the object's content, gunzipped when the key ends in .gz.

    The decompressed stream is limited too, so a gzip bomb stops at MAX_OBJECT_BYTES of output."""
    raw = io.BufferedReader(_LimitedReader(body.read, limit, "the object"), 1 << 16)
    if not is_gzip(key):
        return raw
    inflated = gzip.GzipFile(fileobj=raw, mode="rb")
    return io.BufferedReader(_LimitedReader(inflated.read, limit, "the decompressed object"), 1 << 16)


def is_gzip(key: str) -> bool:
    return key.lower().endswith(".gz")


class Layout(StrEnum):
    """How a source holds its documents: one JSON object per line, or the whole source is one text."""

    JSONL = "jsonl"
    TEXT = "text"
    UNSUPPORTED = "unsupported"  # neither: refused (ingest's unsupported_type, splade-expand skips it)


def layout_of(key: str, content_type: str | None) -> Layout:
    """The source's Layout from the key's suffix (before .gz), else its content type."""
    name = key.lower().removesuffix(".gz")
    if name.endswith(JSONL_SUFFIXES):
        return Layout.JSONL
    if name.endswith(TEXT_SUFFIXES) or (content_type or "").lower().startswith("text/"):
        return Layout.TEXT
    return Layout.UNSUPPORTED


def _lines(stream: io.BufferedIOBase, first: int, offset: int, skip: int) -> Iterator[tuple[int, int, bytes | None]]:
    """(line number, byte offset, bytes without the line end) per line, numbered from ``first + 1``; None for a
    line over MAX_LINE_BYTES. The first ``skip`` lines are read and dropped (a gzip continuation)."""
    number = first
    while True:
        start = offset
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        offset += len(line)
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the overlong line
                line = stream.readline(MAX_LINE_BYTES)
                offset += len(line)
            if number > skip:
                yield number, start, None
            continue
        if number <= skip:
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield number, start, line.rstrip(b"\r\n")


def read_documents(
    stream: io.BufferedIOBase,
    key: str,
    layout: Layout,
    *,
    text_field: str,
    id_field: str,
    max_doc_bytes: int,
    first_line: int = 0,
    offset: int = 0,
    skip_lines: int = 0,
) -> Iterator[Document | DocumentError]:
    """Documents of the object, or a DocumentError for each bad line (the rest go on).

    ``first_line``/``offset``: the stream starts after that many lines, at that byte offset (a ranged read);
    ``skip_lines``: drop that many lines first (a gzip stream always starts at the beginning).
    A text object over ``max_doc_bytes`` is one document too long to expand: a DocumentError, read no further."""
    try:
        if layout is Layout.TEXT:
            data = stream.read(max_doc_bytes + 1)
            if len(data) > max_doc_bytes:
                yield DocumentError(None, "text_too_long", f"the document exceeds {max_doc_bytes} bytes (MAX_WINDOWS)")
                return
            if b"\x00" in data:
                raise ObjectFailedError("the object is binary (NUL bytes), not text", code="binary_object")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ObjectFailedError(f"the object is not UTF-8 text ({exc.reason})", code="not_utf8") from None
            yield Document(key, text, None)
            return
        for number, start, raw in _lines(stream, first_line, offset, skip_lines):
            item = _parse_line(raw, number, start, key=key, text_field=text_field, id_field=id_field)
            if item is not None:
                yield item
    except (EOFError, OSError, zlib.error) as exc:
        raise ObjectFailedError(f"the object cannot be read: {exc}", code="unreadable_object") from None


def _parse_line(
    raw: bytes | None, number: int, start: int, *, key: str, text_field: str, id_field: str
) -> Document | DocumentError | None:
    if raw is None:
        return DocumentError(number, "line_too_long", f"the line exceeds {MAX_LINE_BYTES} bytes", start)
    if not raw.strip():
        return None
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return DocumentError(number, "not_utf8", "the line is not UTF-8", start)
    except (ValueError, RecursionError) as exc:
        return DocumentError(number, "invalid_json", f"invalid JSON: {str(exc)[:200]}", start)
    if not isinstance(record, dict):
        return DocumentError(number, "not_an_object", "the line is not a JSON object", start)
    value = record.get(text_field)
    if value is None:
        return DocumentError(number, "missing_text", f"no {text_field!r} field", start)
    if not isinstance(value, str):
        return DocumentError(number, "text_not_string", f"{text_field!r} must be a string", start)
    return Document(record.get(id_field, f"{key}#{number}"), value, number, start)


Expanded = tuple[Document, dict[str, Any], list[dict[str, Any]]]


def expand_documents(
    expander: Any, docs: list[Document], fmt: str, prune: Any = None, chunks: bool = False
) -> tuple[list[Expanded], list[DocumentError]]:
    """(document, rendered vector, rendered chunks) for one batch, and the DocumentErrors of documents too long to
    expand. ``prune``: PRUNE_TYPE / PRUNE_VALUE as a Prune, or None; ``chunks``: OUTPUT_CHUNKS (else no chunks)."""
    results: list[Expanded] = []
    errors: list[DocumentError] = []
    pending = list(docs)
    while pending:
        try:
            vectors = expander.expand([d.text for d in pending], prune=prune, chunks=chunks)
        except PayloadTooLargeError as exc:  # one document needs too many windows: record it, go on
            if exc.index is None:
                raise
            bad = pending.pop(exc.index)
            reason = (
                f"the document needs more than MAX_WINDOWS={expander.max_windows} windows of "
                f"{expander.window_tokens} tokens; split it into smaller documents"
            )
            errors.append(DocumentError(bad.line, "text_too_long", reason, bad.offset, bad.id))
            continue
        results.extend((d, render(v, fmt), render_chunks(v, fmt)) for d, v in zip(pending, vectors, strict=True))
        pending = []
    return results, errors
