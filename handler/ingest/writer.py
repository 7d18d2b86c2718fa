"""JSON Lines to S3, one writer for every output: the vectors (a multipart upload that can span invocations)
and the errors file (at most ``MAX_ERROR_RECORDS`` records, then one ``more_errors`` record counting the rest).
Both are published with a conditional write."""

from __future__ import annotations

from typing import Any

from splade_expander.batches import dumps_line

PART_BYTES = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB (except the last)
MAX_ERROR_RECORDS = 1_000


def take_part(buffer: bytearray, part_bytes: int | None = None) -> bytes | None:
    """The next multipart part once ``buffer`` (whole lines) holds ``part_bytes`` or more: all of it, and the
    buffer is emptied; else None. A part therefore ends at a line end, and where parts are cut depends only on
    the byte stream, so a run resumed from a checkpoint's tail cuts the same parts."""
    if len(buffer) < (PART_BYTES if part_bytes is None else part_bytes):
        return None
    part = bytes(buffer)
    buffer.clear()
    return part


class JsonLinesWriter:
    """JSON Lines to one S3 key: a multipart upload that can span invocations (its upload id, the parts so far
    and the unsent tail are the checkpoint), or a single PUT when everything fits in one part.

    Part boundaries depend only on the byte stream (a part is cut at the first line end past PART_BYTES), so a
    retried run uploads the same parts under the same numbers: nothing is duplicated or lost.
    ``max_records``: keep at most this many records (an errors file); the rest are counted, and the published
    body ends with ``{"code": "more_errors", "count": N}``."""

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
        max_records: int | None = None,
        kept: int = 0,
        total: int = 0,
    ) -> None:
        self.s3, self.bucket, self.key, self.metadata = s3, bucket, key, metadata
        self.upload_id = upload_id
        self.parts: list[dict[str, Any]] = list(parts or [])
        self.buffer = bytearray(tail)
        self.max_records = max_records
        self.kept, self.total = kept, total  # records written (across runs), and offered

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(dumps_line(record))

    def write_line(self, line: bytes) -> None:
        """One record, serialized (outputs.Lines holds them so)."""
        self.total += 1
        if self.max_records is not None and self.kept >= self.max_records:
            return
        self.buffer += line
        self.kept += 1
        if self.max_records is None:  # a capped file stays one PUT
            part = take_part(self.buffer)
            if part is not None:
                self._upload_part(part)

    def _upload_part(self, body: bytes) -> None:
        if self.upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/x-ndjson", Metadata=self.metadata
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        part = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self.parts.append({"PartNumber": number, "ETag": part["ETag"]})

    def commit(self, if_match: str | None) -> None:
        """Publish the object, only if the key still holds ``if_match`` (None: only if the key is absent).
        A lost race raises ClientError PreconditionFailed (412), or NoSuchKey (404) when ``if_match`` names a key
        someone removed meanwhile: s3cond.lost_race."""
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        body = bytes(self.buffer)
        if self.total > self.kept:
            body += dumps_line({"code": "more_errors", "count": self.total - self.kept})
        if self.upload_id is None:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=self.metadata,
                **condition,
            )
            return
        if body:
            self.buffer.clear()
            self._upload_part(body)
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
