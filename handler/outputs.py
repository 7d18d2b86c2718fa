"""Bounded JSON Lines bodies to S3: the vectors as a multipart upload that can span invocations, and at most
``MAX_ERROR_RECORDS`` error records per object (then one ``more_errors`` record)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PART_BYTES = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB (except the last)
MAX_ERROR_RECORDS = 1_000


def dumps_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass
class ErrorLog:
    """The error records of one object: at most MAX_ERROR_RECORDS lines kept, the rest only counted."""

    body: bytearray = field(default_factory=bytearray)
    kept: int = 0
    total: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.total += 1
        if self.kept < MAX_ERROR_RECORDS:
            self.body += dumps_line(record)
            self.kept += 1

    def final_body(self) -> bytes:
        if self.total > self.kept:
            return bytes(self.body) + dumps_line({"code": "more_errors", "count": self.total - self.kept})
        return bytes(self.body)


class VectorUpload:
    """JSON Lines to one S3 key: a multipart upload that can span invocations (its upload id, the parts so far
    and the unsent tail are the checkpoint), or a single PUT when everything fits in one part.

    Part boundaries depend only on the byte stream (a part is cut at the first line end past PART_BYTES), so a
    retried run uploads the same parts under the same numbers: nothing is duplicated or lost."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        metadata: dict[str, str],
        *,
        upload_id: str | None = None,
        parts: list[dict[str, Any]] | None = None,
        tail: bytes = b"",
    ) -> None:
        self.s3, self.bucket, self.key, self.metadata = s3, bucket, key, metadata
        self.upload_id = upload_id
        self.parts: list[dict[str, Any]] = list(parts or [])
        self.buffer = bytearray(tail)
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.buffer += dumps_line(record)
        self.lines += 1
        if len(self.buffer) >= PART_BYTES:
            self._flush_part()

    def _flush_part(self) -> None:
        if self.upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/x-ndjson", Metadata=self.metadata
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        part = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=bytes(self.buffer)
        )
        self.parts.append({"PartNumber": number, "ETag": part["ETag"]})
        self.buffer.clear()

    def commit(self, if_match: str | None) -> None:
        """Publish the object, only if the key still holds ``if_match`` (None: only if the key is absent).
        A lost race raises botocore's ClientError PreconditionFailed (412)."""
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        if self.upload_id is None:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=bytes(self.buffer),
                ContentType="application/x-ndjson",
                Metadata=self.metadata,
                **condition,
            )
            return
        if self.buffer:
            self._flush_part()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
            **condition,
        )
        self.upload_id = None

    def abort(self) -> None:
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None
