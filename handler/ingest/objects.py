"""One S3 object event -> its outputs: the state machine of states.py, step by step.

- The object is read only as the event's version: ``If-Match`` on its ETag (the version id when no ETag is
  known). A newer object answers 412 and the event is SUPERSEDED; a missing one answers 404 (MISSING).
- The outputs carry the source's ETag, version id and event sequencer as metadata, and are published with a
  condition (s3cond.py), so an older run that races a newer one cannot win. An event whose sequencer is below
  the output's is SUPERSEDED.
- An object one invocation cannot finish is checkpointed and CONTINUED by the next run (run_outputs.py holds the
  run's outputs and the carry object); consumers still see one ``<prefix><key>.jsonl``.
The documents themselves are cut into batches and turned into records by batches.py, as ``splade-expand`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from splade_expander.batches import Batch, batches, max_doc_bytes, records, resume_point
from splade_expander.documents import DocumentError, Layout, is_gzip, layout_of, open_stream, read_documents
from splade_expander.errors import ObjectFailedError
from splade_expander.outputs import Lines, Output, OutputState, chosen, serialize

from .. import runtime
from . import s3cond
from .run_outputs import Place, RunOutputs, metadata
from .states import Checkpoint, ObjectRef, Outcome, Status
from .writer import JsonLinesWriter

MIN_TIME_MS = 1000  # without a queue to continue on, abort the object when this little time is left


def source_block(ref: ObjectRef) -> dict[str, Any]:
    """The ``source`` of every record of the object (the CLI's is ``{"path"}``)."""
    return {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "etag": ref.etag or ""}


class Objects:
    """Runs object events against one S3 client (created lazily by ingest.py with its retry settings)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.settings = runtime.settings

    def _place(self, ref: ObjectRef) -> Place:
        return Place(self.settings.output_bucket, self.settings.output_prefix, ref.key)

    def _head(self, place: Place, name: str) -> s3cond.Existing | None:
        return s3cond.head(self.s3, place.bucket, place.output(name))

    # ------------------------------------------------------------------ REMOVE
    def remove(self, ref: ObjectRef) -> Outcome:
        """The source was deleted: DELETED its outputs, unless a newer object (or event's output) exists."""
        try:
            self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
            return Outcome(Status.SUPERSEDED, ref.key, reason="a newer object exists under the key")
        except Exception as exc:
            if s3cond.is_denied(exc):
                raise ObjectFailedError(f"access denied to s3://{ref.bucket}/{ref.key}", code="access_denied") from None
            if not s3cond.is_not_found(exc):
                raise
        place = self._place(ref)
        removed = [s3cond.delete_unless_newer(self.s3, place.bucket, place.output(o), ref.sequencer) for o in Output]
        if not any(removed) and self._head(place, "vectors") is not None:
            return Outcome(Status.SUPERSEDED, ref.key, reason="the output comes from a newer event")
        return Outcome(Status.DELETED, ref.key, documents=0, errors=0)

    # ------------------------------------------------------------------ START
    def start(self, ref: ObjectRef) -> Checkpoint | Outcome:
        """Before the first run: an older event than the output's is SUPERSEDED; note what each output is."""
        place = self._place(ref)
        seen = {output: self._head(place, output) for output in Output}
        vectors = seen[Output.VECTORS]
        if vectors is not None and vectors.newer_than(ref.sequencer):
            return Outcome(Status.SUPERSEDED, ref.key, reason="the output comes from a newer event")
        return Checkpoint(outputs={o: OutputState(seen=found.etag if found else None) for o, found in seen.items()})

    # ------------------------------------------------------------------ RUN
    def expand(self, ref: ObjectRef, cp: Checkpoint, remaining: Callable[[], int], can_continue: bool) -> Outcome:
        """One run over the object from ``cp``. Transient failures raise (the checkpoint stays for the retry)."""
        place = self._place(ref)
        settings = self.settings
        outputs = RunOutputs(self.s3, place, ref, cp, chosen(chunks=settings.output_chunks, df=settings.output_df))
        if cp.continuing and not self._continuable(place, cp):
            done = self._head(place, Output.VECTORS)
            this_event = (ref.etag or "", ref.sequencer or None)
            if done is not None and (done.source_etag, done.sequencer) == this_event:
                return Outcome(Status.SKIPPED, ref.key, reason="another delivery of this continuation finished it")
            outputs.discard()
            return Outcome(Status.RESTART, ref.key, ref=ref, reason="the checkpoint's state is gone; starting over")
        try:
            if cp.run >= settings.max_object_runs:  # a chain that never ends: stop it, publish nothing, say so
                raise too_many_runs(ref, cp.run)
            if ref.size is not None and ref.size > settings.max_object_bytes:
                raise too_large(f"{ref.size} bytes exceed")
            response = self._get_source(ref, cp, ranged=not is_gzip(ref.key))
            if isinstance(response, Outcome):
                outputs.discard()
                return response
            try:
                etag = s3cond.bare_etag(response.get("ETag"))
                ref = replace(ref, etag=ref.etag or etag, version_id=ref.version_id or response.get("VersionId"))
                layout = self._layout(ref, cp, response)
                outputs.open(ref, runtime.expander.vocab_size if settings.output_df else None)
                return self._run(ref, cp, response, layout, outputs, remaining=remaining, can_continue=can_continue)
            finally:  # on every path, a stream stopped early gives its connection back
                response["Body"].close()
        except Exception as exc:
            if not (isinstance(exc, ObjectFailedError) and exc.permanent):
                outputs.abort_new()  # retried: the checkpoint's uploads and carry stay for the retry
                raise
            outputs.discard()
            return self._record_failure(ref, place, cp, exc)

    def _continuable(self, place: Place, cp: Checkpoint) -> bool:
        """The checkpoint's carry object and multipart uploads still exist (a redelivered continuation may find
        them gone: another delivery finished the object, or the state expired)."""
        try:
            if cp.carry_key:
                self.s3.head_object(Bucket=place.bucket, Key=cp.carry_key)
            for output, state in cp.outputs.items():
                if state.upload_id:
                    key = place.output(output)
                    self.s3.list_parts(Bucket=place.bucket, Key=key, UploadId=state.upload_id, MaxParts=1)
        except Exception as exc:
            if s3cond.is_not_found(exc) or s3cond.is_no_upload(exc):
                return False
            raise
        return True

    def _get_source(self, ref: ObjectRef, cp: Checkpoint, ranged: bool) -> dict[str, Any] | Outcome:
        args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.etag:  # held bare (ObjectRef), whichever form the event gave
            args["IfMatch"] = s3cond.quoted_etag(ref.etag)
        elif ref.version_id:
            args["VersionId"] = ref.version_id
        if ranged and cp.offset:
            args["Range"] = f"bytes={cp.offset}-"
        try:
            return dict(self.s3.get_object(**args))
        except Exception as exc:
            if s3cond.is_precondition(exc):
                return Outcome(Status.SUPERSEDED, ref.key, reason="the object changed since the event (ETag differs)")
            if s3cond.is_not_found(exc):
                return Outcome(Status.MISSING, ref.key, code="missing_object", reason="the object no longer exists")
            if s3cond.is_denied(exc):
                raise ObjectFailedError(
                    f"access denied to s3://{ref.bucket}/{ref.key} (the function needs s3:GetObject and "
                    "s3:ListBucket: without ListBucket S3 answers a missing key with 403)",
                    code="access_denied",
                ) from None
            raise

    def _layout(self, ref: ObjectRef, cp: Checkpoint, response: dict[str, Any]) -> Layout:
        """The object's Layout; a permanent failure for one that is too large or of another type."""
        if not cp.continuing and int(response.get("ContentLength") or 0) > self.settings.max_object_bytes:
            raise too_large("the object exceeds")
        layout = layout_of(ref.key, response.get("ContentType"))
        if layout is Layout.UNSUPPORTED:
            raise ObjectFailedError(
                f"unsupported object type for {ref.key!r} (use .txt, .md, text/*, .jsonl, .ndjson, .gz)",
                code="unsupported_type",
            )
        return layout

    def _run(
        self, ref: ObjectRef, cp: Checkpoint, response: dict[str, Any], layout: Layout, outputs: RunOutputs, *,
        remaining: Callable[[], int], can_continue: bool,
    ) -> Outcome:  # fmt: skip
        """Batches from the checkpoint's line to the end (WRITTEN), or until time runs out (CONTINUED)."""
        start = time.perf_counter()
        settings, expander = self.settings, runtime.expander
        ranged = not is_gzip(ref.key)
        items = read_documents(
            open_stream(response["Body"], ref.key, settings.max_object_bytes), ref.key, layout,
            text_field=settings.text_field, id_field=settings.id_field,
            max_doc_bytes=max_doc_bytes(expander.max_chars, settings.max_object_bytes),
            first_line=cp.line if ranged else 0, offset=cp.offset if ranged else 0, skip_lines=0 if ranged else cp.line,
        )  # fmt: skip
        source = source_block(ref)
        resumable = can_continue and layout is Layout.JSONL
        margin = settings.ingest_time_margin_ms if resumable else MIN_TIME_MS
        for batch, _ in batches(items):
            # the time left is checked before every batch: a full one needs the margin, the last one less
            if batch.first is not None and remaining() < (margin if batch.full else MIN_TIME_MS):
                if not resumable:  # the caller's retry starts over: expand() drops this run's uploads
                    why = "the function is about to time out; the object will be retried"
                    raise ObjectFailedError(why, code="timeout")
                nxt, stale = outputs.pause(*resume_point(batch.first))
                return Outcome(
                    Status.CONTINUED, ref.key, documents=nxt.documents, errors=outputs.errors, ref=ref, checkpoint=nxt,
                    stale=stale,
                )  # fmt: skip
            outputs.write(self._lines(batch, source))
        status = outputs.commit()
        if status is Status.SUPERSEDED:
            return Outcome(status, ref.key, reason="a newer event's output was published meanwhile")
        if status is Status.RESTART:
            return Outcome(status, ref.key, ref=ref, reason="the output changed while this run wrote it")
        return Outcome(
            Status.WRITTEN, ref.key, output=outputs.place.output(Output.VECTORS),
            documents=cp.documents + outputs.documents, errors=outputs.errors,
            seconds=round(time.perf_counter() - start, 3),
        )  # fmt: skip

    def _lines(self, batch: Batch, source: dict[str, Any]) -> Lines:
        settings, expander = self.settings, runtime.expander
        out = records(
            expander, batch, source, fmt=settings.output_format, prune=settings.prune,
            chunks=settings.output_chunks, df=settings.output_df,
        )  # fmt: skip
        return serialize(out, expander.vocab_size if settings.output_df else None)

    # ------------------------------------------------------------------ FAILED
    def _record_failure(self, ref: ObjectRef, place: Place, cp: Checkpoint, exc: ObjectFailedError) -> Outcome:
        """A permanent failure (the run's state already discarded): one object-level record in the errors file,
        no stale outputs left behind."""
        errors = JsonLinesWriter(self.s3, place.bucket, place.output(Output.ERRORS), metadata(ref))
        errors.write(DocumentError(None, exc.code, exc.message).record(source_block(ref)))
        published = s3cond.publish_unless_newer(
            errors.commit,
            self.s3,
            bucket=place.bucket,
            key=errors.key,
            sequencer=ref.sequencer,
            seen=cp.state(Output.ERRORS).seen,
        )
        if not published:
            return Outcome(Status.SUPERSEDED, ref.key, reason="the output comes from a newer event")
        for output in (Output.VECTORS, Output.CHUNKS, Output.DF):
            s3cond.delete_unless_newer(self.s3, place.bucket, place.output(output), ref.sequencer)
        return Outcome(Status.FAILED, ref.key, code=exc.code, reason=exc.message, errors=1)


def too_many_runs(ref: ObjectRef, runs: int) -> ObjectFailedError:
    limit = runtime.settings.max_object_runs
    return ObjectFailedError(
        f"s3://{ref.bucket}/{ref.key} took {runs} runs without finishing, MAX_OBJECT_RUNS ({limit}): its partial "
        "output was discarded; split the object or raise IngestTimeout (docs/ingest.md)",
        code="too_many_runs",
    )


def too_large(what: str) -> ObjectFailedError:
    limit = runtime.settings.max_object_bytes
    return ObjectFailedError(f"{what} MAX_OBJECT_BYTES ({limit})", code="object_too_large")
