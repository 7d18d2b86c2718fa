"""S3's conditions in one place: what an error code means, the ordering of one key's events, and the conditional
reads, publishes and deletes that keep an older event from overwriting a newer one's output.

- **not found**: the key, version or upload is gone (404 NoSuchKey / NotFound / NoSuchVersion / NoSuchUpload).
  ``If-Match`` on a key that no longer exists answers 404 NoSuchKey, not 412: for a conditional write or delete
  that is a lost race too (``lost_race``).
- **precondition**: ``If-Match`` / ``If-None-Match`` failed (412 PreconditionFailed) or a concurrent conditional
  write conflicted (409 ConditionalRequestConflict).
- **denied**: 403 AccessDenied (S3 also answers a missing key with 403 when the caller may not list the bucket).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from splade_expander.errors import ObjectFailedError

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
NO_UPLOAD = frozenset({"NoSuchUpload"})
PRECONDITION = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict"})
DENIED = frozenset({"403", "AccessDenied"})


def bare_etag(value: str | None) -> str | None:
    """A source ETag without its quotes: events carry it bare (notifications, EventBridge), S3 responses and
    ListObjectsV2 items quoted. The one place a source ETag is normalised (ObjectRef holds it bare)."""
    return value.strip('"') or None if value else None


def quoted_etag(value: str) -> str:
    """The form HTTP conditions take (If-Match)."""
    return f'"{value}"'


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in NOT_FOUND


def is_no_upload(exc: BaseException) -> bool:
    return error_code(exc) in NO_UPLOAD


def is_precondition(exc: BaseException) -> bool:
    return error_code(exc) in PRECONDITION


def is_denied(exc: BaseException) -> bool:
    return error_code(exc) in DENIED


def lost_race(exc: BaseException, if_match: str | None) -> bool:
    """A conditional write or delete lost to another writer: 412/409, or 404 when it was ``If-Match`` on a key
    that someone removed meanwhile (S3 answers that with NoSuchKey, not 412)."""
    return is_precondition(exc) or (if_match is not None and is_not_found(exc))


def sequencer_order(a: str | None, b: str | None) -> int:
    """-1, 0, 1 comparing two S3 event sequencers of one key (hex strings; the shorter right-padded with zeros,
    as S3 documents); 0 when either is unknown."""
    if not a or not b:
        return 0
    width = max(len(a), len(b))
    x, y = a.upper().ljust(width, "0"), b.upper().ljust(width, "0")
    return (x > y) - (x < y)


@dataclass(frozen=True)
class Existing:
    """An output object as HEAD saw it: its ETag and the source event it was written for."""

    etag: str
    sequencer: str | None
    source_etag: str | None

    def newer_than(self, sequencer: str | None) -> bool:
        """This output comes from a later event of the key than ``sequencer``."""
        return sequencer_order(self.sequencer, sequencer) > 0


def head(s3: Any, bucket: str, key: str) -> Existing | None:
    """The output under ``key`` (None: there is none)."""
    try:
        found = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
    meta = found.get("Metadata") or {}
    return Existing(str(found["ETag"]), meta.get("source-sequencer") or None, meta.get("source-etag") or None)


def publish_unless_newer(
    commit: Callable[[str | None], None], s3: Any, *, bucket: str, key: str, sequencer: str | None, seen: str | None
) -> bool:
    """Publish with ``commit(if_match)`` (None: only if the key is absent), starting from ``seen``, the ETag the
    run saw. A lost race re-reads the key: a newer event's output stands (False); otherwise try again from what
    is there now. Three lost races in a row: ObjectFailedError commit_conflict (retried)."""
    for _ in range(3):
        try:
            commit(seen)
            return True
        except Exception as exc:
            if not lost_race(exc, seen):
                raise
        current = head(s3, bucket, key)
        if current is not None and current.newer_than(sequencer):
            return False
        seen = current.etag if current else None
    raise ObjectFailedError(f"{key} keeps changing under concurrent writers", code="commit_conflict")


def delete_unless_newer(s3: Any, bucket: str, key: str, sequencer: str | None) -> bool:
    """Delete ``key`` unless it holds a newer event's output, conditional on the ETag just read: an output
    published between the read and the delete answers 412 and stands. True: this call deleted it."""
    current = head(s3, bucket, key)
    if current is None or current.newer_than(sequencer):
        return False
    try:
        s3.delete_object(Bucket=bucket, Key=key, IfMatch=current.etag)
    except Exception as exc:
        if lost_race(exc, current.etag):  # replaced (412) or already removed (404) meanwhile
            return False
        raise
    return True
