"""The states of one S3 object event in ingest, the checkpoint a continuation carries, and what a run gives.

Every event starts at START (a created object) or REMOVE (a deleted one). objects.py moves it:

    START ----> RUN            the output's ETags are noted (the checkpoint of run 1)
          \\--> SUPERSEDED      the output comes from a newer event of the key
    RUN   ----> WRITTEN        every output published with its condition
          \\--> CONTINUED      out of time: the outputs so far are carried (checkpoint + carry object), queued
          \\--> RESTART        a publish lost its race to an older-or-equal output, or the carried state is gone:
                               queued again without a checkpoint (back to START)
          \\--> SUPERSEDED     the object changed (412 on read) or a newer event's output won the publish
          \\--> MISSING        the object is gone (404 on read)
          \\--> SKIPPED        another delivery of this continuation already wrote it
          \\--> FAILED         a permanent failure: one record in the errors file, no vectors left behind
    CONTINUED ... RUN          the next invocation runs on from the checkpoint
    REMOVE ----> DELETED       the outputs are removed (each unless a newer event's output stands)
           \\--> SUPERSEDED     a newer object exists under the key, or the outputs come from a newer event

A run that raises (throttling, 5xx, access denied, out of time with no queue) leaves the checkpoint as it was;
the message is retried. WRITTEN, SUPERSEDED, MISSING, SKIPPED, FAILED and DELETED end the event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from .s3cond import bare_etag


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object named by an event: which version (ETag / version id) and where in the key's history
    (the event's ``sequencer``, when the event has one)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    removed: bool = False  # an ObjectRemoved / "Object Deleted" event
    raw_key: str | None = None  # EventBridge: the key as spelled, tried when the URL-decoded key is missing

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", bare_etag(self.etag))  # one form, whichever the event gave

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v is not False}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Status(StrEnum):
    """How one run of one event ended (the log's and the direct invocation's ``status``)."""

    WRITTEN = "written"
    CONTINUED = "continued"
    RESTART = "restart"
    SUPERSEDED = "superseded"
    MISSING = "missing"
    SKIPPED = "skipped"
    FAILED = "failed"
    DELETED = "deleted"

    @property
    def queues_again(self) -> bool:
        """The event is not over: it goes back on the ingest queue (with its checkpoint, or from the start)."""
        return self in (Status.CONTINUED, Status.RESTART)


@dataclass
class Checkpoint:
    """Where a partly expanded object stands between runs (travels in the continuation message)."""

    run: int = 0  # runs finished
    line: int = 0  # lines fully handled (written or recorded as errors)
    offset: int = 0  # bytes of the (decompressed) object fully handled
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    documents: int = 0
    errors_kept: int = 0
    errors_total: int = 0
    tail_bytes: int = 0  # the carry object holds the vectors' unsent tail, the chunks' tail, then the error lines
    carry_key: str | None = None
    output_etag: str | None = None  # the output when run 1 started (None: there was none)
    errors_etag: str | None = None
    chunks_etag: str | None = None  # the .chunks.jsonl when run 1 started
    chunks_upload_id: str | None = None  # OUTPUT_CHUNKS: the chunks file's own multipart upload
    chunks_parts: list[dict[str, Any]] = field(default_factory=list)
    chunks_tail_bytes: int = 0
    df_etag: str | None = None  # the .df.json when run 1 started
    df_bytes: int = 0  # OUTPUT_DF: the counts so far, at the end of the carry object

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def continuing(self) -> bool:
        """A later run: the checkpoint carries state (uploads, a carry object) from the runs before."""
        return self.run > 0


@dataclass
class Outcome:
    """What one run of one event gave. CONTINUED carries the checkpoint to queue; RESTART asks for a fresh run."""

    status: Status
    key: str
    output: str | None = None
    documents: int = 0
    errors: int = 0
    code: str | None = None
    reason: str | None = None
    seconds: float | None = None  # of this run
    ref: ObjectRef | None = None
    checkpoint: Checkpoint | None = None
    stale: list[str] = field(default_factory=list)  # carry objects to delete once the continuation is queued

    def summary(self) -> dict[str, Any]:
        keep = ("key", "output", "documents", "errors", "code", "reason", "seconds")
        fields = {k: v for k, v in asdict(self).items() if k in keep and v is not None}
        return {"status": self.status.value, **fields}
