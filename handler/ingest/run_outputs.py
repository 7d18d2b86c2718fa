"""The outputs of one run over one S3 object, held as one set: vectors and errors always, chunks (OUTPUT_CHUNKS)
and document frequencies (OUTPUT_DF) when configured. The set is opened from the checkpoint, written batch by
batch, and then committed, paused or discarded as a whole; the carry object (the unsent tails and counts that a
continuation needs) is created and deleted here and nowhere else.

Carry layout: the vectors' unsent tail, the chunks' tail, the error lines, then the counts (their lengths in the
checkpoint: ``tail_bytes``, ``chunks_tail_bytes``, the rest, ``df_bytes``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from splade_expander.batches import Records, output_name
from splade_expander.docfreq import DocFreq

from . import s3cond
from .states import Checkpoint, Status
from .writer import MAX_ERROR_RECORDS, JsonLinesWriter

if TYPE_CHECKING:
    from .states import ObjectRef

CHECKPOINTS = "_checkpoints/"  # under OUTPUT_PREFIX: carried state between runs of one object
# Per output: the checkpoint fields of the ETag seen when run 1 started, and of a multipart upload in progress.
SEEN = {"vectors": "output_etag", "errors": "errors_etag", "chunks": "chunks_etag", "df": "df_etag"}
UPLOADS = {"vectors": ("upload_id", "parts"), "chunks": ("chunks_upload_id", "chunks_parts")}


@dataclass(frozen=True)
class Place:
    """Where one source's outputs go: the output bucket, and the base name (OUTPUT_PREFIX + the source key)."""

    bucket: str
    prefix: str
    key: str

    def output(self, name: str) -> str:
        return output_name(self.prefix + self.key, name)

    def carry(self, etag: str | None, run: int) -> str:
        return f"{self.prefix}{CHECKPOINTS}{self.key}.{etag or 'x'}.{run}"


def metadata(ref: ObjectRef) -> dict[str, str]:
    """What every output records of its source event (the ordering of later events reads it)."""
    meta = {"source-etag": ref.etag or "", "source-sequencer": ref.sequencer or ""}
    if ref.version_id:
        meta["source-version-id"] = ref.version_id
    return meta


def drop_carry(s3: Any, bucket: str, key: str | None) -> None:
    """Delete a carry object (once its continuation is queued, or when the run's state is discarded)."""
    if key:
        s3.delete_object(Bucket=bucket, Key=key)


def abort_uploads(s3: Any, place: Place, cp: Checkpoint) -> None:
    """Abort the checkpoint's multipart uploads (already gone is fine) and drop its carry object."""
    for name, (upload_field, _) in UPLOADS.items():
        upload_id = getattr(cp, upload_field)
        if upload_id:
            try:
                s3.abort_multipart_upload(Bucket=place.bucket, Key=place.output(name), UploadId=upload_id)
            except Exception as exc:
                if not (s3cond.is_no_upload(exc) or s3cond.is_not_found(exc)):
                    raise
    drop_carry(s3, place.bucket, cp.carry_key)


class RunOutputs:
    """The writers of one run, by output name, restored from the checkpoint and its carry object."""

    def __init__(self, s3: Any, place: Place, ref: ObjectRef, cp: Checkpoint, *, chunks: bool, df_vocab: int | None):
        self.s3, self.place, self.ref, self.cp = s3, place, ref, cp
        carry = s3.get_object(Bucket=place.bucket, Key=cp.carry_key)["Body"].read() if cp.carry_key else b""
        chunks_end = cp.tail_bytes + cp.chunks_tail_bytes
        errors_end = len(carry) - cp.df_bytes
        tails = {"vectors": carry[: cp.tail_bytes], "chunks": carry[cp.tail_bytes : chunks_end]}
        self.writers: dict[str, JsonLinesWriter] = {}
        for name in ("vectors", "chunks") if chunks else ("vectors",):
            upload_field, parts_field = UPLOADS[name]
            self.writers[name] = self._writer(
                name, upload_id=getattr(cp, upload_field), parts=getattr(cp, parts_field), tail=tails[name]
            )
        self.writers["errors"] = self._writer(
            "errors", tail=carry[chunks_end:errors_end], max_records=MAX_ERROR_RECORDS, kept=cp.errors_kept,
            total=cp.errors_total,
        )  # fmt: skip
        self.df: DocFreq | None = None
        if df_vocab is not None:
            saved = carry[errors_end:]
            self.df = DocFreq.from_json(json.loads(saved)) if saved else DocFreq(df_vocab)
        self.documents = 0  # written by this run

    def _writer(self, name: str, **state: Any) -> JsonLinesWriter:
        return JsonLinesWriter(self.s3, self.place.bucket, self.place.output(name), metadata(self.ref), **state)

    @property
    def errors(self) -> int:
        """Error records offered so far, across runs."""
        return self.writers["errors"].total

    def write(self, records: Records) -> None:
        """One batch's records, each to its output."""
        for name, batch in (("errors", records.errors), ("vectors", records.vectors), ("chunks", records.chunks)):
            if name in self.writers:
                for record in batch:
                    self.writers[name].write(record)
        if self.df is not None:
            self.df.add(records.token_ids)
        self.documents += records.documents

    # ------------------------------------------------------------------ the set's three endings
    def pause(self, line: int, offset: int) -> tuple[Checkpoint, list[str]]:
        """Out of time: save the unsent tails and counts in a new carry object; the checkpoint of the next run
        (resuming at ``line``/``offset``), and the previous carry to drop once that run is queued."""
        cp = self.cp
        vectors, errors, chunks = self.writers["vectors"], self.writers["errors"], self.writers.get("chunks")
        tail, chunks_tail = bytes(vectors.buffer), bytes(chunks.buffer) if chunks is not None else b""
        counts = self.df.dumps() if self.df is not None else b""
        carry_key = self.place.carry(self.ref.etag, cp.run + 1)
        body = tail + chunks_tail + bytes(errors.buffer) + counts
        self.s3.put_object(Bucket=self.place.bucket, Key=carry_key, Body=body)
        nxt = replace(
            cp, run=cp.run + 1, line=line, offset=offset, documents=cp.documents + self.documents,
            errors_kept=errors.kept, errors_total=errors.total, tail_bytes=len(tail),
            chunks_tail_bytes=len(chunks_tail), df_bytes=len(counts), carry_key=carry_key, **self._uploads(),
        )  # fmt: skip
        return nxt, [cp.carry_key] if cp.carry_key else []

    def commit(self) -> Status:
        """Publish the set: the vectors first, with the condition run 1 saw (WRITTEN); a lost race discards the
        set and re-reads the output (SUPERSEDED by a newer event's output, else RESTART). Then each other output
        is published unless a newer event's stands, or, when this run has none, an earlier one is removed."""
        bucket, seq = self.place.bucket, self.ref.sequencer
        vectors = self.writers["vectors"]
        try:
            vectors.commit(self.cp.output_etag)
        except Exception as exc:
            if not s3cond.lost_race(exc, self.cp.output_etag):
                raise
            self.discard()
            current = s3cond.head(self.s3, bucket, vectors.key)
            return Status.SUPERSEDED if current is not None and current.newer_than(seq) else Status.RESTART
        for name in ("errors", "chunks", "df"):
            writer, seen = self._final(name), getattr(self.cp, SEEN[name])
            if writer is not None:
                published = s3cond.publish_unless_newer(
                    writer.commit, self.s3, bucket=bucket, key=writer.key, sequencer=seq, seen=seen
                )
                if not published:
                    writer.abort()
            elif seen is not None or name == "errors":  # a retry after the object was fixed leaves no stale file
                s3cond.delete_unless_newer(self.s3, bucket, self.place.output(name), seq)
        self.writers.pop("chunks", None)  # published: nothing of the set is left to abort
        self.cp = replace(self.cp, upload_id=None, chunks_upload_id=None)
        self.discard()
        return Status.WRITTEN

    def _final(self, name: str) -> JsonLinesWriter | None:
        """The writer to publish for ``name`` at commit: errors only when there are some; df from the counts."""
        if name == "errors":
            return self.writers["errors"] if self.errors else None
        if name == "df":
            return None if self.df is None else self._writer("df", tail=self.df.dumps() + b"\n")
        return self.writers.get(name)

    def discard(self) -> None:
        """Drop everything unpublished: this run's and the checkpoint's multipart uploads, and the carry."""
        abort_uploads(self.s3, self.place, replace(self.cp, **self._uploads()))

    def abort_new(self) -> None:
        """A retried failure: drop only the uploads this run started (the checkpoint's stay for the retry)."""
        for name, (upload_field, _) in UPLOADS.items():
            writer = self.writers.get(name)
            if writer is not None and writer.upload_id and writer.upload_id != getattr(self.cp, upload_field):
                writer.abort()

    def _uploads(self) -> dict[str, Any]:
        """The checkpoint fields of the multipart uploads as they stand now."""
        fields: dict[str, Any] = {}
        for name, (upload_field, parts_field) in UPLOADS.items():
            writer = self.writers.get(name)
            if writer is not None:
                fields[upload_field], fields[parts_field] = writer.upload_id, list(writer.parts)
        return fields
