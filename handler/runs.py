"""What one run over an S3 object gives: its outcome, what the output already holds, and the ordering of S3
events by sequencer. (The checkpoint a continuation carries is part of the event: events.py.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .events import Checkpoint, ObjectRef


@dataclass
class Outcome:
    """What happened to one event: written | continued | restart | superseded | missing | skipped | failed |
    deleted. ``continued`` carries the checkpoint to queue; ``restart`` asks for a fresh run."""

    status: str
    key: str
    output: str | None = None
    documents: int = 0
    errors: int = 0
    code: str | None = None
    reason: str | None = None
    seconds: float | None = None  # of this run
    ref: ObjectRef | None = None
    checkpoint: Checkpoint | None = None
    stale: list[str] = field(default_factory=list)  # output-bucket keys to delete once the continuation is queued

    def summary(self) -> dict[str, Any]:
        keep = ("status", "key", "output", "documents", "errors", "code", "reason", "seconds")
        return {k: v for k, v in asdict(self).items() if k in keep and v is not None}


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


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
    etag: str
    sequencer: str | None
    source_etag: str | None
