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

from splade_expander.outputs import Output, OutputState, states_from_dict, states_to_dict

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
    """Where a partly expanded object stands between runs (travels in the continuation message): the run and
    the source position, the documents written, the carry object, and each output's state (outputs.OutputState)."""

    run: int = 0  # runs finished
    line: int = 0  # lines fully handled (written or recorded as errors)
    offset: int = 0  # bytes of the (decompressed) object fully handled
    documents: int = 0
    carry_key: str | None = None  # each output's unsent bytes, in Output order
    outputs: dict[Output, OutputState] = field(default_factory=dict)

    def state(self, output: Output) -> OutputState:
        return self.outputs.get(output) or OutputState()

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in POSITION}
        return {**data, "outputs": states_to_dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """A continuation's checkpoint; one queued by a version before 0.2 holds flat per-output fields."""
        outputs = states_from_dict(data["outputs"]) if "outputs" in data else _flat_states(data)
        return cls(**{k: data[k] for k in POSITION if k in data}, outputs=outputs)

    @property
    def continuing(self) -> bool:
        """A later run: the checkpoint carries state (uploads, a carry object) from the runs before."""
        return self.run > 0


POSITION = ("run", "line", "offset", "documents", "carry_key")  # a checkpoint's fields besides the outputs'
# A checkpoint before 0.2: output -> its flat fields (seen ETag, upload, parts, tail length, kept/offered records).
FLAT_FIELDS = {
    Output.VECTORS: {
        "seen": "output_etag", "upload_id": "upload_id", "parts": "parts", "tail_bytes": "tail_bytes"
    },
    Output.CHUNKS: {
        "seen": "chunks_etag", "upload_id": "chunks_upload_id", "parts": "chunks_parts",
        "tail_bytes": "chunks_tail_bytes",
    },
    Output.ERRORS: {"seen": "errors_etag", "kept": "errors_kept", "total": "errors_total"},
    Output.DF: {"seen": "df_etag", "tail_bytes": "df_bytes"},
}  # fmt: skip


def _flat_states(data: dict[str, Any]) -> dict[Output, OutputState]:
    """The output states of a flat checkpoint (its errors' tail is whatever the other tails leave)."""
    states = {}
    for output, names in FLAT_FIELDS.items():
        state = OutputState.from_dict({name: data[flat] for name, flat in names.items() if flat in data})
        if output is Output.ERRORS:
            state.tail_bytes = None
        states[output] = state
    return states


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
