"""The output model that S3 ingest and ``splade-expand`` share: which outputs a source gives (``Output``), where
each stands between runs (``OutputState``), one batch's records serialized for them (``Lines``), and the one
interface both sinks implement (``OutputSet``: write, pause, commit, discard).

The S3 sink is ``handler/ingest/run_outputs.py`` (multipart uploads, a carry object, conditional commits); the
local-file sink is ``splade_tools/jobs.py`` (files truncated back to the last progress record on ``--resume``).
Adding an output is one member here, its records in ``batches.records``, and what each sink does with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

from .batches import Records, dumps_line
from .docfreq import DocFreq


class Output(StrEnum):
    """One of a source's outputs, in the order their tails are carried (and written) between runs."""

    VECTORS = "vectors"  # a vector record per document: <base>.jsonl
    CHUNKS = "chunks"  # each window's vector and span (OUTPUT_CHUNKS, --chunks): <base>.chunks.jsonl
    ERRORS = "errors"  # one record per bad line or too-long document: <base>.errors.jsonl
    DF = "df"  # the source's document frequencies (OUTPUT_DF, --df): <base>.df.json

    @property
    def suffix(self) -> str:
        return SUFFIXES[self]

    @property
    def streamed(self) -> bool:
        """Written batch by batch (the df counts are written once, at the end)."""
        return self is not Output.DF

    @property
    def multipart(self) -> bool:
        """On S3, a multipart upload that can span runs (errors and df are one PUT each at the commit)."""
        return self in (Output.VECTORS, Output.CHUNKS)

    @property
    def capped(self) -> bool:
        """Holds at most MAX_ERROR_RECORDS records on S3, then one ``more_errors`` record."""
        return self is Output.ERRORS

    @property
    def optional(self) -> bool:
        """Left out (no file) when it has nothing: the errors of a clean source. Vectors are always written."""
        return self is not Output.VECTORS


SUFFIXES = {
    Output.VECTORS: ".jsonl",
    Output.CHUNKS: ".chunks.jsonl",
    Output.ERRORS: ".errors.jsonl",
    Output.DF: ".df.json",
}


def output_name(base: str, output: str) -> str:
    """The name of ``output`` for the source named ``base`` (OUTPUT_PREFIX + the S3 key, or <out>/<relative
    path>): ``<base>.jsonl``, ``.chunks.jsonl``, ``.errors.jsonl``, ``.df.json``."""
    return base + SUFFIXES[Output(output)]


def chosen(*, chunks: bool, df: bool) -> tuple[Output, ...]:
    """The outputs a run writes: vectors and errors always, chunks and df when asked; in Output order."""
    return tuple(o for o in Output if (o is not Output.CHUNKS or chunks) and (o is not Output.DF or df))


@dataclass
class OutputState:
    """Where one output stands between runs. S3: the ETag the output had when run 1 started (``seen``), its
    multipart upload and parts, and its unsent bytes in the carry object (``tail_bytes``; None: whatever the
    other outputs leave, as a checkpoint from before 0.2 records the errors' tail). A capped output: the records
    kept and offered so far. Local: the file's size."""

    seen: str | None = None
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    tail_bytes: int | None = 0
    kept: int = 0
    total: int = 0
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from the defaults (continuation messages stay small)."""
        empty = OutputState()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(empty, f.name)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputState:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def states_to_dict(states: Mapping[Output, OutputState]) -> dict[str, dict[str, Any]]:
    return {str(o): states[o].to_dict() for o in Output if o in states}


def states_from_dict(data: Mapping[str, Any]) -> dict[Output, OutputState]:
    return {Output(name): OutputState.from_dict(state) for name, state in data.items()}


def split_carry(carry: bytes, states: Mapping[Output, OutputState]) -> dict[Output, bytes]:
    """The carry object cut into each output's tail, in Output order (a None length takes the rest)."""
    known = sum(states[o].tail_bytes or 0 for o in Output if o in states)
    tails, start = {}, 0
    for output in (o for o in Output if o in states):
        length = states[output].tail_bytes
        size = len(carry) - known if length is None else length
        tails[output], start = carry[start : start + size], start + size
    return tails


@dataclass
class Lines:
    """One batch's records, serialized (one JSON line each), by output, with the batch's document frequencies:
    what every sink writes. Made where the batch is expanded (a splade-expand worker, the ingest function)."""

    lines: dict[Output, list[bytes]]
    documents: int = 0
    df: DocFreq | None = None

    @property
    def errors(self) -> int:
        return len(self.lines.get(Output.ERRORS, ()))


def serialize(records: Records, vocab_size: int | None = None) -> Lines:
    """``records`` as Lines; their token ids counted into a DocFreq over ``vocab_size`` (None: no df)."""
    lines = {
        Output.VECTORS: [dumps_line(r) for r in records.vectors],
        Output.CHUNKS: [dumps_line(r) for r in records.chunks],
        Output.ERRORS: [dumps_line(r) for r in records.errors],
    }
    counts = None
    if vocab_size is not None:
        counts = DocFreq(vocab_size)
        counts.add(records.token_ids)
    return Lines(lines, records.documents, counts)


class OutputSet(Protocol):
    """A run's outputs as one set. Opened before the source is read, so ``discard`` is the one cleanup path."""

    def write(self, batch: Lines) -> None:
        """One batch, in source order, each output's lines to it."""

    def pause(self, line: int, offset: int) -> Any:
        """Everything so far made durable; where the next run resumes (S3: the next checkpoint)."""

    def commit(self) -> Any:
        """Publish every output (S3: with its condition)."""

    def discard(self) -> None:
        """Drop everything not published (a permanent failure, a run that starts over)."""
