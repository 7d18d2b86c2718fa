"""The S3 sink of the output model (splade_expander/outputs.py): the outputs of one run over one S3 object, held
as one set: vectors and errors always, chunks (OUTPUT_CHUNKS) and document frequencies (OUTPUT_DF) when
configured. The set is opened before the object is read (so ``discard`` is the one cleanup path), restored from
the checkpoint when writing starts, written batch by batch, and then committed, paused or discarded as a whole;
the carry object (the unsent tails and counts that a continuation needs) is created and deleted here and nowhere
else.

Carry layout: each output's unsent bytes in Output order (vectors, chunks, error lines, the df counts), their
lengths in the checkpoint's output states.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from splade_expander.docfreq import DocFreq
from splade_expander.outputs import Lines, Output, OutputState, output_name, split_carry

from . import s3cond
from .states import Checkpoint, Status
from .writer import MAX_ERROR_RECORDS, JsonLinesWriter

if TYPE_CHECKING:
    from .states import ObjectRef

CHECKPOINTS = "_checkpoints/"  # under OUTPUT_PREFIX: carried state between runs of one object


class Place:
    """Where one source's outputs go: the output bucket, and the base name (OUTPUT_PREFIX + the source key)."""

    def __init__(self, bucket: str, prefix: str, key: str) -> None:
        self.bucket, self.prefix, self.key = bucket, prefix, key

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


class RunOutputs:
    """The writers of one run, by output, restored from the checkpoint and its carry object (``open``)."""

    def __init__(self, s3: Any, place: Place, ref: ObjectRef, cp: Checkpoint, outputs: tuple[Output, ...]) -> None:
        self.s3, self.place, self.ref, self.cp, self.outputs = s3, place, ref, cp, outputs
        self.writers: dict[Output, JsonLinesWriter] = {}
        self.df: DocFreq | None = None
        self.documents = 0  # written by this run

    def open(self, ref: ObjectRef, vocab_size: int | None) -> None:
        """Restore each output from the checkpoint (``ref``: the event as the source's read completed it)."""
        self.ref, cp = ref, self.cp
        carry = self.s3.get_object(Bucket=self.place.bucket, Key=cp.carry_key)["Body"].read() if cp.carry_key else b""
        tails = split_carry(carry, {o: cp.state(o) for o in self.outputs})
        for output in (o for o in self.outputs if o.streamed):
            state = cp.state(output)
            capped = {"max_records": MAX_ERROR_RECORDS, "kept": state.kept, "total": state.total}
            self.writers[output] = self._writer(
                output, upload_id=state.upload_id, parts=state.parts, tail=tails[output],
                **(capped if output.capped else {}),
            )  # fmt: skip
        if Output.DF in self.outputs and vocab_size is not None:
            saved = tails[Output.DF]
            self.df = DocFreq.loads(saved) if saved else DocFreq(vocab_size)

    def _writer(self, output: Output, **state: Any) -> JsonLinesWriter:
        return JsonLinesWriter(self.s3, self.place.bucket, self.place.output(output), metadata(self.ref), **state)

    @property
    def errors(self) -> int:
        """Error records offered so far, across runs."""
        return self.writers[Output.ERRORS].total

    def write(self, batch: Lines) -> None:
        """One batch, each output's lines to its writer (errors first: a failure mid-batch loses nothing)."""
        for output in (Output.ERRORS, Output.VECTORS, Output.CHUNKS):
            writer = self.writers.get(output)
            if writer is not None:
                for line in batch.lines.get(output, ()):
                    writer.write_line(line)
        if self.df is not None and batch.df is not None:
            self.df.merge(batch.df)
        self.documents += batch.documents

    # ------------------------------------------------------------------ the set's three endings
    def pause(self, line: int, offset: int) -> tuple[Checkpoint, list[str]]:
        """Out of time: save the unsent tails and counts in a new carry object; the checkpoint of the next run
        (resuming at ``line``/``offset``), and the previous carry to drop once that run is queued."""
        cp = self.cp
        tails = {o: bytes(w.buffer) for o, w in self.writers.items()}
        if self.df is not None:
            tails[Output.DF] = self.df.dumps()
        carry_key = self.place.carry(self.ref.etag, cp.run + 1)
        body = b"".join(tails.get(o, b"") for o in Output)
        self.s3.put_object(Bucket=self.place.bucket, Key=carry_key, Body=body)
        states = self._states()
        for output, state in states.items():
            state.tail_bytes = len(tails.get(output, b""))
        nxt = replace(
            cp, run=cp.run + 1, line=line, offset=offset, documents=cp.documents + self.documents, carry_key=carry_key,
            outputs=states,
        )  # fmt: skip
        return nxt, [cp.carry_key] if cp.carry_key else []

    def commit(self) -> Status:
        """Publish the set: the vectors first, with the condition run 1 saw (WRITTEN); a lost race discards the
        set and re-reads the output (SUPERSEDED by a newer event's output, else RESTART). Then each other output
        is published unless a newer event's stands, or, when this run has none, an earlier one is removed."""
        bucket, seq = self.place.bucket, self.ref.sequencer
        vectors, seen = self.writers[Output.VECTORS], self.cp.state(Output.VECTORS).seen
        try:
            vectors.commit(seen)
        except Exception as exc:
            if not s3cond.lost_race(exc, seen):
                raise
            self.discard()
            current = s3cond.head(self.s3, bucket, vectors.key)
            return Status.SUPERSEDED if current is not None and current.newer_than(seq) else Status.RESTART
        for output in (Output.ERRORS, Output.CHUNKS, Output.DF):
            writer, seen = self._final(output), self.cp.state(output).seen
            if writer is not None:
                published = s3cond.publish_unless_newer(
                    writer.commit, self.s3, bucket=bucket, key=writer.key, sequencer=seq, seen=seen
                )
                if not published:
                    writer.abort()
            elif seen is not None or output is Output.ERRORS:  # a retry after the object was fixed leaves no stale file
                s3cond.delete_unless_newer(self.s3, bucket, self.place.output(output), seq)
        self.writers.pop(Output.CHUNKS, None)  # published: nothing of the set is left to abort
        self.cp = replace(self.cp, outputs={o: replace(s, upload_id=None) for o, s in self.cp.outputs.items()})
        self.discard()
        return Status.WRITTEN

    def _final(self, output: Output) -> JsonLinesWriter | None:
        """The writer to publish for ``output`` at commit: errors only when there are some; df from the counts."""
        if output is Output.ERRORS:
            return self.writers[Output.ERRORS] if self.errors else None
        if output is Output.DF:
            return None if self.df is None else self._writer(Output.DF, tail=self.df.dumps() + b"\n")
        return self.writers.get(output)

    def discard(self) -> None:
        """Drop everything unpublished: this run's and the checkpoint's multipart uploads (already gone is fine),
        and the carry object. Valid before ``open``: then the checkpoint's alone."""
        states = self._states()
        for output in (o for o in Output if o.multipart):
            upload_id = states[output].upload_id if output in states else None
            if upload_id:
                try:
                    key = self.place.output(output)
                    self.s3.abort_multipart_upload(Bucket=self.place.bucket, Key=key, UploadId=upload_id)
                except Exception as exc:
                    if not (s3cond.is_no_upload(exc) or s3cond.is_not_found(exc)):
                        raise
        drop_carry(self.s3, self.place.bucket, self.cp.carry_key)

    def abort_new(self) -> None:
        """A retried failure: drop only the uploads this run started (the checkpoint's stay for the retry)."""
        for output, writer in self.writers.items():
            if output.multipart and writer.upload_id and writer.upload_id != self.cp.state(output).upload_id:
                writer.abort()

    def _states(self) -> dict[Output, OutputState]:
        """Each output's state as it stands now: the checkpoint's, with the writers' uploads and counts."""
        states = {o: replace(s, parts=list(s.parts)) for o, s in self.cp.outputs.items()}
        for output, writer in self.writers.items():
            state = states.setdefault(output, OutputState())
            if output.multipart:
                state.upload_id, state.parts = writer.upload_id, list(writer.parts)
            if output.capped:
                state.kept, state.total = writer.kept, writer.total
        return states
