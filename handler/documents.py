"""One S3 object -> documents -> SPLADE vectors -> JSON Lines in the output bucket.

Streams in both directions: the input is read line by line (gzip decompressed on the fly), documents are
expanded in batches, and the output is written as a multipart upload (one part per ~8 MiB), so a 200 MB
JSONL never needs 200 MB of memory. A failed object aborts its upload: nothing is half-written.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import PayloadTooLargeError, SpladeError
from .formats import render

PART_BYTES = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB (except the last)
BATCH_DOCS = 64
BATCH_CHARS = 400_000  # ~90k tokens per Expander call: tokenizer memory stays ~60 MB
MAX_LINE_BYTES = 4 * 1024 * 1024
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text", ".rst")


class ObjectFailedError(SpladeError):
    """The object cannot be processed (unreadable, binary, too large, missing, denied, out of time).

    The message is reported as a failure so SQS retries it and finally moves it to the DLQ."""

    status = 422
    code = "object_failed"


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    raw_key: str | None = None  # the key as the event spelled it, tried when the decoded key is missing


@dataclass
class Document:
    id: Any
    text: str
    line: int | None


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
    """A buffered byte stream of the object's content, gunzipped when the key ends in .gz."""
    raw = io.BufferedReader(_LimitedReader(body.read, limit, "the object"), 1 << 16)
    if not key.lower().endswith(".gz"):
        return raw
    inflated = gzip.GzipFile(fileobj=raw, mode="rb")
    return io.BufferedReader(_LimitedReader(inflated.read, limit, "the decompressed object"), 1 << 16)


def kind_of(key: str, content_type: str | None) -> str:
    """``jsonl`` | ``text`` | ``unsupported`` from the key's suffix (before .gz) or the content type."""
    name = key.lower().removesuffix(".gz")
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES) or (content_type or "").lower().startswith("text/"):
        return "text"
    return "unsupported"


def _lines(stream: io.BufferedIOBase) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line end) for each line; None for a line over MAX_LINE_BYTES."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the overlong line
                line = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield number, line.rstrip(b"\r\n")


def read_documents(
    stream: io.BufferedIOBase, ref: ObjectRef, kind: str, *, text_field: str, id_field: str, max_doc_bytes: int
) -> Iterator[Document | dict[str, Any]]:
    """Documents of the object; a bad JSONL line yields an error record instead (the rest go on).

    A text object over ``max_doc_bytes`` is one document too long to expand: an error record, read no further."""
    try:
        if kind == "text":
            data = stream.read(max_doc_bytes + 1)
            if len(data) > max_doc_bytes:
                yield _bad(None, "text_too_long", f"the document exceeds {max_doc_bytes} bytes (MAX_WINDOWS windows)")
                return
            if b"\x00" in data:
                raise ObjectFailedError("the object is binary (NUL bytes), not text", code="binary_object")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ObjectFailedError(f"the object is not UTF-8 text ({exc.reason})", code="not_utf8") from None
            yield Document(ref.key, text, None)
            return
        for number, raw in _lines(stream):
            if raw is None:
                yield _bad(number, "line_too_long", f"the line exceeds {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield _bad(number, "not_utf8", "the line is not UTF-8")
                continue
            except (ValueError, RecursionError) as exc:
                yield _bad(number, "invalid_json", f"invalid JSON: {str(exc)[:200]}")
                continue
            if not isinstance(record, dict):
                yield _bad(number, "not_an_object", "the line is not a JSON object")
                continue
            value = record.get(text_field)
            if value is None:
                yield _bad(number, "missing_text", f"no {text_field!r} field")
                continue
            if not isinstance(value, str):
                yield _bad(number, "text_not_string", f"{text_field!r} must be a string")
                continue
            doc_id = record.get(id_field, f"{ref.key}#{number}")
            yield Document(doc_id, value, number)
    except (EOFError, OSError, zlib.error) as exc:
        raise ObjectFailedError(f"the object cannot be read: {exc}", code="unreadable_object") from None


def _bad(line: int | None, code: str, reason: str) -> dict[str, Any]:
    return {"line": line, "code": code, "reason": reason}


class OutputWriter:
    """Buffered JSON Lines writer to one S3 key: a single PUT when small, multipart when large."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.buffer += json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.lines += 1
        if len(self.buffer) >= PART_BYTES:
            self._flush_part()

    def _flush_part(self) -> None:
        if self.upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/x-ndjson"
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        part = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=bytes(self.buffer)
        )
        self.parts.append({"PartNumber": number, "ETag": part["ETag"]})
        self.buffer.clear()

    def close(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer), ContentType="application/x-ndjson"
            )
            return
        if self.buffer:
            self._flush_part()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None


def expand_documents(
    expander: Any, docs: list[Document], fmt: str
) -> tuple[list[tuple[Document, dict[str, Any]]], list[tuple[Document, dict[str, Any]]]]:
    """(document, rendered vector) pairs and (document, error record) pairs for one batch."""
    results: list[tuple[Document, dict[str, Any]]] = []
    errors: list[tuple[Document, dict[str, Any]]] = []
    pending = list(docs)
    while pending:
        try:
            vectors = expander.expand([d.text for d in pending])
        except PayloadTooLargeError as exc:  # one document needs too many windows: record it, go on
            index = int(str(exc.field).removeprefix("texts[").removesuffix("]"))
            bad = pending.pop(index)
            reason = (
                f"the document needs more than MAX_WINDOWS={expander.max_windows} windows of "
                f"{expander.window_tokens} tokens; split it into smaller documents"
            )
            errors.append((bad, _bad(bad.line, "text_too_long", reason)))
            continue
        results.extend((d, render(v, fmt)) for d, v in zip(pending, vectors, strict=True))
        pending = []
    return results, errors
