"""One S3 object event -> its output objects: expand a created object (in one run or several), or remove the
outputs of a deleted one. Ordering and idempotency live here.

- The object is read only as the event's version: ``If-Match`` on its ETag (the version id when no ETag is
  known). A newer object answers 412 and the event is *superseded*; a missing one answers 404 and is skipped.
- The output carries the source's ETag, version id and event sequencer as metadata, and is published with a
  conditional write (``If-Match`` the output seen at the start, ``If-None-Match: *`` when there was none), so an
  older run that races a newer one cannot win. An event whose sequencer is below the output's is superseded.
- An object one invocation cannot finish is checkpointed (lines done, byte offset, the multipart upload's parts,
  the unsent tail) and continued by the next run; consumers still see one ``<prefix><key>.jsonl``.

Over 300 lines on purpose: the start, run, pause, commit and discard of one object share one state machine (the
checkpoint and the conditional writes), and each step's failure handling refers to the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import runtime
from .docfreq import DocFreq
from .documents import (
    BATCH_CHARS,
    BATCH_DOCS,
    Document,
    DocumentError,
    content_format,
    expand_documents,
    is_gzip,
    open_stream,
    read_documents,
)
from .errors import ObjectFailedError
from .events import Checkpoint, ObjectRef
from .output import MAX_ERROR_RECORDS, JsonLinesWriter
from .runs import Existing, Outcome, error_code, sequencer_order

BATCH_ITEMS = 1_000  # lines per step, good or bad: the time left is checked at least this often
MIN_TIME_MS = 1000  # without a queue to continue on, abort the object when this little time is left
CHECKPOINTS = "_checkpoints/"  # under OUTPUT_PREFIX: carried state between runs of one object
OUTPUT_SUFFIXES = (".jsonl", ".errors.jsonl", ".chunks.jsonl", ".df.json")  # what one source key produces


def output_key(key: str, suffix: str) -> str:
    return f"{runtime.settings.output_prefix}{key}{suffix}"


class Objects:
    """Runs object events against one S3 client (created lazily by ingest.py with its retry settings)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.chunks: JsonLinesWriter | None = None  # OUTPUT_CHUNKS: the current object's chunks writer
        self.df: DocFreq | None = None  # OUTPUT_DF: the current object's document frequencies

    # ------------------------------------------------------------------ helpers
    def head_output(self, key: str) -> Existing | None:
        try:
            head = self.s3.head_object(Bucket=runtime.settings.output_bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        meta = head.get("Metadata") or {}
        return Existing(str(head["ETag"]), meta.get("source-sequencer") or None, meta.get("source-etag") or None)

    @staticmethod
    def is_newer(existing: Existing | None, ref: ObjectRef) -> bool:
        """The output comes from a later event of the key than ``ref``."""
        return existing is not None and sequencer_order(existing.sequencer, ref.sequencer) > 0

    def _metadata(self, ref: ObjectRef) -> dict[str, str]:
        meta = {"source-etag": (ref.etag or "").strip('"'), "source-sequencer": ref.sequencer or ""}
        if ref.version_id:
            meta["source-version-id"] = ref.version_id
        return meta

    def _source_block(self, ref: ObjectRef) -> dict[str, Any]:
        etag = (ref.etag or "").strip('"')
        return {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "etag": etag}

    def _errors_writer(self, ref: ObjectRef, cp: Checkpoint, body: bytes = b"") -> JsonLinesWriter:
        return JsonLinesWriter(
            self.s3,
            runtime.settings.output_bucket,
            output_key(ref.key, ".errors.jsonl"),
            self._metadata(ref),
            tail=body,
            max_records=MAX_ERROR_RECORDS,
            kept=cp.errors_kept,
            total=cp.errors_total,
        )

    def _chunks_writer(self, ref: ObjectRef, cp: Checkpoint, tail: bytes = b"") -> JsonLinesWriter | None:
        """OUTPUT_CHUNKS: the ``.chunks.jsonl`` writer (its own multipart upload, carried like the vectors')."""
        if not runtime.settings.output_chunks:
            return None
        key = output_key(ref.key, ".chunks.jsonl")
        bucket = runtime.settings.output_bucket
        meta = self._metadata(ref)
        return JsonLinesWriter(
            self.s3, bucket, key, meta, upload_id=cp.chunks_upload_id, parts=cp.chunks_parts, tail=tail
        )

    def _publish_side_file(self, writer: JsonLinesWriter, ref: ObjectRef, seen: str | None) -> bool:
        """Publish a side file (errors, chunks, df) unless a newer event's output got there first; False when
        superseded."""
        for _ in range(3):
            try:
                writer.commit(seen)
                return True
            except Exception as exc:
                if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise
            current = self.head_output(writer.key)
            if self.is_newer(current, ref):
                return False
            seen = current.etag if current else None
        raise ObjectFailedError(f"{writer.key} keeps changing under concurrent writers", code="commit_conflict")

    def _delete_unless_newer(self, key: str, ref: ObjectRef) -> bool:
        current = self.head_output(key)
        if current is None or self.is_newer(current, ref):
            return False
        self.s3.delete_object(Bucket=runtime.settings.output_bucket, Key=key)
        return True

    # ------------------------------------------------------------------ removed
    def remove(self, ref: ObjectRef) -> Outcome:
        """The source was deleted: remove its outputs, unless a newer object (or a newer event's output) exists."""
        try:
            self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
            return Outcome("superseded", ref.key, reason="a newer object exists under the key")
        except Exception as exc:
            code = error_code(exc)
            if code in ("403", "AccessDenied"):
                raise ObjectFailedError(f"access denied to s3://{ref.bucket}/{ref.key}", code="access_denied") from None
            if code not in ("404", "NoSuchKey", "NotFound"):
                raise
        removed = [self._delete_unless_newer(output_key(ref.key, s), ref) for s in OUTPUT_SUFFIXES]
        if not any(removed) and self.head_output(output_key(ref.key, ".jsonl")) is not None:
            return Outcome("superseded", ref.key, reason="the output comes from a newer event")
        return Outcome("deleted", ref.key, documents=0, errors=0)

    # ------------------------------------------------------------------ created
    def start(self, ref: ObjectRef) -> Checkpoint | Outcome:
        """Before the first run: an older event than the output's is superseded; remember what the output is."""
        current = self.head_output(output_key(ref.key, ".jsonl"))
        if self.is_newer(current, ref):
            return Outcome("superseded", ref.key, reason="the output comes from a newer event")
        errors = self.head_output(output_key(ref.key, ".errors.jsonl"))
        chunks = self.head_output(output_key(ref.key, ".chunks.jsonl"))
        df = self.head_output(output_key(ref.key, ".df.json"))
        return Checkpoint(
            output_etag=current.etag if current else None,
            errors_etag=errors.etag if errors else None,
            chunks_etag=chunks.etag if chunks else None,
            df_etag=df.etag if df else None,
        )

    def _continuable(self, ref: ObjectRef, cp: Checkpoint) -> bool:
        """The checkpoint's carry object and multipart upload still exist (a redelivered continuation may find
        them gone: another delivery finished the object, or the state expired)."""
        try:
            if cp.carry_key:
                self.s3.head_object(Bucket=runtime.settings.output_bucket, Key=cp.carry_key)
            for suffix, upload_id in ((".jsonl", cp.upload_id), (".chunks.jsonl", cp.chunks_upload_id)):
                if upload_id:
                    key = output_key(ref.key, suffix)
                    bucket = runtime.settings.output_bucket
                    self.s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchUpload"):
                return False
            raise
        return True

    def _get_source(self, ref: ObjectRef, cp: Checkpoint, ranged: bool) -> dict[str, Any] | Outcome:
        args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.etag:  # events carry the ETag bare (notifications) or quoted (ListObjectsV2 items)
            args["IfMatch"] = ref.etag if ref.etag.startswith('"') else f'"{ref.etag}"'
        elif ref.version_id:
            args["VersionId"] = ref.version_id
        if ranged and cp.offset:
            args["Range"] = f"bytes={cp.offset}-"
        try:
            return dict(self.s3.get_object(**args))
        except Exception as exc:
            code = error_code(exc)
            if code in ("PreconditionFailed", "412"):
                return Outcome("superseded", ref.key, reason="the object changed since the event (ETag differs)")
            if code in ("NoSuchKey", "404", "NoSuchVersion"):
                return Outcome("missing", ref.key, code="missing_object", reason="the object no longer exists")
            if code in ("AccessDenied", "403"):
                raise ObjectFailedError(
                    f"access denied to s3://{ref.bucket}/{ref.key} (the function needs s3:GetObject and "
                    "s3:ListBucket: without ListBucket S3 answers a missing key with 403)",
                    code="access_denied",
                ) from None
            raise

    def expand(self, ref: ObjectRef, cp: Checkpoint, remaining: Callable[[], int], can_continue: bool) -> Outcome:
        """One run over the object from ``cp``: written, continued (a checkpoint to send), superseded, missing,
        or failed (a permanent failure, recorded). Transient failures raise."""
        upload: JsonLinesWriter | None = None
        self.chunks, self.df = None, None
        if cp.run and not self._continuable(ref, cp):
            done = self.head_output(output_key(ref.key, ".jsonl"))
            if (
                done is not None
                and done.source_etag == (ref.etag or "").strip('"')
                and done.sequencer == (ref.sequencer or None)
            ):
                return Outcome("skipped", ref.key, reason="another delivery of this continuation finished it")
            self._discard(ref, cp)
            return Outcome("restart", ref.key, ref=ref, reason="the checkpoint's state is gone; starting over")
        try:
            if ref.size is not None and ref.size > runtime.settings.max_object_bytes:
                raise ObjectFailedError(
                    f"{ref.size} bytes exceed MAX_OBJECT_BYTES ({runtime.settings.max_object_bytes})",
                    code="object_too_large",
                )
            response = self._get_source(ref, cp, ranged=not is_gzip(ref.key))
            if isinstance(response, Outcome):
                self._discard(ref, cp)
                return response
            try:
                etag = str(response.get("ETag") or "").strip('"') or None
                ref = replace(ref, etag=ref.etag or etag, version_id=ref.version_id or response.get("VersionId"))
                upload = JsonLinesWriter(
                    self.s3,
                    runtime.settings.output_bucket,
                    output_key(ref.key, ".jsonl"),
                    self._metadata(ref),
                    upload_id=cp.upload_id,
                    parts=cp.parts,
                )
                return self._run(
                    ref, cp, response=response, upload=upload, remaining=remaining, can_continue=can_continue
                )
            finally:  # on every path, a stream stopped early gives its connection back
                response["Body"].close()
        except Exception as exc:
            if not (isinstance(exc, ObjectFailedError) and exc.permanent):
                # Retried: keep the checkpoint's upload and carry (the retry continues from them); an upload this
                # run started is dropped (a retry of run 1 starts a new one).
                for writer, kept in ((upload, cp.upload_id), (self.chunks, cp.chunks_upload_id)):
                    if writer is not None and writer.upload_id and writer.upload_id != kept:
                        writer.abort()
                raise
            if upload is not None and upload.upload_id:
                cp.upload_id = upload.upload_id
            if self.chunks is not None and self.chunks.upload_id:
                cp.chunks_upload_id = self.chunks.upload_id
            return self._record_failure(ref, cp, exc)

    def _run(
        self,
        ref: ObjectRef,
        cp: Checkpoint,
        *,
        response: dict[str, Any],
        upload: JsonLinesWriter,
        remaining: Callable[[], int],
        can_continue: bool,
    ) -> Outcome:
        start = time.perf_counter()
        if cp.run == 0 and int(response.get("ContentLength") or 0) > runtime.settings.max_object_bytes:
            raise ObjectFailedError(
                f"the object exceeds MAX_OBJECT_BYTES ({runtime.settings.max_object_bytes})", code="object_too_large"
            )
        content = content_format(ref.key, response.get("ContentType"))
        if content == "unsupported":
            raise ObjectFailedError(
                f"unsupported object type for {ref.key!r} (use .txt, .md, text/*, .jsonl, .ndjson, .gz)",
                code="unsupported_type",
            )
        carry = b""
        if cp.carry_key:
            carry = self.s3.get_object(Bucket=runtime.settings.output_bucket, Key=cp.carry_key)["Body"].read()
            upload.buffer += carry[: cp.tail_bytes]
        chunks_end = cp.tail_bytes + cp.chunks_tail_bytes
        errors_end = len(carry) - cp.df_bytes
        self.chunks = chunks = self._chunks_writer(ref, cp, carry[cp.tail_bytes : chunks_end])
        errors = self._errors_writer(ref, cp, carry[chunks_end:errors_end])
        expander = runtime.expander
        if runtime.settings.output_df:  # counts so far travel in the carry object, after the error lines
            saved = carry[errors_end:]
            self.df = DocFreq.from_json(json.loads(saved)) if saved else DocFreq(expander.vocab_size)
        ranged = not is_gzip(ref.key)
        stream = open_stream(response["Body"], ref.key, runtime.settings.max_object_bytes)
        prune = runtime.settings.prune
        max_doc_bytes = (
            expander.max_chars * 4 if expander.max_chars else runtime.settings.max_object_bytes
        )  # UTF-8 <= 4 B
        items = read_documents(
            stream,
            ref.key,
            content,
            text_field=runtime.settings.text_field,
            id_field=runtime.settings.id_field,
            max_doc_bytes=max_doc_bytes,
            first_line=cp.line if ranged else 0,
            offset=cp.offset if ranged else 0,
            skip_lines=0 if ranged else cp.line,
        )
        source, model = self._source_block(ref), runtime.expander.model_info
        pending: list[Document | DocumentError] = []
        chars = docs_pending = documents = 0
        resumable = can_continue and content == "jsonl"
        margin = runtime.settings.ingest_time_margin_ms if resumable else MIN_TIME_MS

        def flush() -> None:
            nonlocal documents
            docs = [i for i in pending if isinstance(i, Document)]
            fmt = runtime.settings.output_format
            results, too_long = expand_documents(expander, docs, fmt, prune, chunks=chunks is not None)
            bad = sorted([i for i in pending if isinstance(i, DocumentError)] + too_long, key=lambda e: e.line or 0)
            for err in bad:
                errors.write(err.record(source))
            for doc, vector, parts in results:
                upload.write({"id": doc.id, "source": {**source, "line": doc.line}, "model": model, **vector})
                if chunks is not None:
                    for part in parts:
                        chunks.write({"id": doc.id, **part})
            if self.df is not None:
                self.df.add(expander.token_ids([doc.text for doc, _, _ in results]))
            documents += len(results)

        for item in items:
            pending.append(item)
            if isinstance(item, Document):
                docs_pending += 1
                chars += len(item.text)
            if len(pending) >= BATCH_ITEMS or docs_pending >= BATCH_DOCS or chars >= BATCH_CHARS:
                if remaining() < margin:  # checked every batch of lines, valid or not
                    return self._pause(
                        ref,
                        cp,
                        upload=upload,
                        errors=errors,
                        first=pending[0],
                        documents=documents,
                        can_continue=resumable,
                    )
                flush()
                pending, chars, docs_pending = [], 0, 0
        if pending:
            if remaining() < MIN_TIME_MS:
                return self._pause(
                    ref, cp, upload=upload, errors=errors, first=pending[0], documents=documents, can_continue=resumable
                )
            flush()
        return self._commit(ref, cp, upload=upload, errors=errors, documents=cp.documents + documents, start=start)

    def _pause(
        self,
        ref: ObjectRef,
        cp: Checkpoint,
        *,
        upload: JsonLinesWriter,
        errors: JsonLinesWriter,
        first: Document | DocumentError,
        documents: int,
        can_continue: bool,
    ) -> Outcome:
        """Out of time before ``first``: checkpoint (when a queue can carry it on) or abort (the event is retried)."""
        if not can_continue:  # the caller's retry starts over: expand() drops this run's upload
            raise ObjectFailedError("the function is about to time out; the object will be retried", code="timeout")
        carry_key = (
            f"{runtime.settings.output_prefix}{CHECKPOINTS}{ref.key}.{(ref.etag or 'x').strip(chr(34))}.{cp.run + 1}"
        )
        tail = bytes(upload.buffer)
        chunks_tail = bytes(self.chunks.buffer) if self.chunks is not None else b""
        counts = self.df.dumps() if self.df is not None else b""
        body = tail + chunks_tail + bytes(errors.buffer) + counts
        self.s3.put_object(Bucket=runtime.settings.output_bucket, Key=carry_key, Body=body)
        line = (first.line or 1) - 1
        nxt = replace(
            cp,
            run=cp.run + 1,
            line=line,
            offset=first.offset,
            upload_id=upload.upload_id,
            parts=list(upload.parts),
            documents=cp.documents + documents,
            errors_kept=errors.kept,
            errors_total=errors.total,
            tail_bytes=len(tail),
            chunks_tail_bytes=len(chunks_tail),
            df_bytes=len(counts),
            chunks_upload_id=self.chunks.upload_id if self.chunks is not None else None,
            chunks_parts=list(self.chunks.parts) if self.chunks is not None else [],
            carry_key=carry_key,
        )
        stale = [cp.carry_key] if cp.carry_key else []  # deleted only after the next run is queued
        return Outcome(
            "continued", ref.key, documents=nxt.documents, errors=errors.total, ref=ref, checkpoint=nxt, stale=stale
        )

    def _commit(
        self,
        ref: ObjectRef,
        cp: Checkpoint,
        *,
        upload: JsonLinesWriter,
        errors: JsonLinesWriter,
        documents: int,
        start: float,
    ) -> Outcome:
        try:
            upload.commit(cp.output_etag)
        except Exception as exc:
            if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            cp.upload_id = upload.upload_id
            cp.chunks_upload_id = self.chunks.upload_id if self.chunks is not None else cp.chunks_upload_id
            self._discard(ref, cp)
            current = self.head_output(upload.key)
            if self.is_newer(current, ref):
                return Outcome("superseded", ref.key, reason="a newer event's output was published meanwhile")
            return Outcome("restart", ref.key, ref=ref, reason="the output changed while this run wrote it")
        self._finish_side(ref, ".chunks.jsonl", self.chunks, cp.chunks_etag)
        cp.chunks_upload_id = None
        counts = None if self.df is None else self._side_writer(ref, ".df.json", self.df.dumps())
        self._finish_side(ref, ".df.json", counts, cp.df_etag)
        self._finish_errors(ref, cp, errors)
        cp.upload_id = None  # completed
        self._discard(ref, cp)
        seconds = round(time.perf_counter() - start, 3)
        return Outcome("written", ref.key, output=upload.key, documents=documents, errors=errors.total, seconds=seconds)

    def _side_writer(self, ref: ObjectRef, suffix: str, body: bytes) -> JsonLinesWriter:
        bucket, key = runtime.settings.output_bucket, output_key(ref.key, suffix)
        return JsonLinesWriter(self.s3, bucket, key, self._metadata(ref), tail=body + b"\n")

    def _finish_side(self, ref: ObjectRef, suffix: str, writer: JsonLinesWriter | None, seen: str | None) -> None:
        """An optional output (OUTPUT_CHUNKS, OUTPUT_DF): publish what this run wrote, or remove the one an
        earlier run or setting left behind (``seen``: it existed when run 1 started)."""
        if writer is not None:
            if not self._publish_side_file(writer, ref, seen):
                writer.abort()
        elif seen is not None:
            self._delete_unless_newer(output_key(ref.key, suffix), ref)

    def _finish_errors(self, ref: ObjectRef, cp: Checkpoint, errors: JsonLinesWriter) -> None:
        if errors.total:
            self._publish_side_file(errors, ref, cp.errors_etag)
        else:  # a retry after the object was fixed must not leave stale error records behind
            self._delete_unless_newer(errors.key, ref)

    def _record_failure(self, ref: ObjectRef, cp: Checkpoint, exc: ObjectFailedError) -> Outcome:
        """A permanent failure: one object-level record in the errors file, no stale vectors left behind."""
        self._discard(ref, cp)
        errors = self._errors_writer(ref, Checkpoint())
        errors.write(DocumentError(None, exc.code, exc.message).record(self._source_block(ref)))
        if not self._publish_side_file(errors, ref, cp.errors_etag):
            return Outcome("superseded", ref.key, reason="the output comes from a newer event")
        for suffix in (".jsonl", ".chunks.jsonl", ".df.json"):
            self._delete_unless_newer(output_key(ref.key, suffix), ref)
        return Outcome("failed", ref.key, code=exc.code, reason=exc.message, errors=1)

    def _discard(self, ref: ObjectRef, cp: Checkpoint) -> None:
        """Drop a run's unpublished state: its multipart uploads and the carry object of the previous run."""
        for suffix, upload_id in ((".jsonl", cp.upload_id), (".chunks.jsonl", cp.chunks_upload_id)):
            if upload_id:
                try:
                    key = output_key(ref.key, suffix)
                    self.s3.abort_multipart_upload(Bucket=runtime.settings.output_bucket, Key=key, UploadId=upload_id)
                except Exception as exc:
                    if error_code(exc) not in ("NoSuchUpload", "404"):
                        raise
        cp.upload_id = cp.chunks_upload_id = None
        if cp.carry_key:
            self.s3.delete_object(Bucket=runtime.settings.output_bucket, Key=cp.carry_key)
            cp.carry_key = None
