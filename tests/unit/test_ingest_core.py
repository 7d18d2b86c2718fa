"""The ingest core's pure pieces, without S3: event ordering, S3's error vocabulary, content types, line
reading, the batch cut rule and records, part cutting, and the states a run moves through."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handler.ingest import entry as ingest
from handler.ingest import s3cond
from handler.ingest import tasks as events
from handler.ingest.states import Checkpoint, ObjectRef, Outcome, Status
from handler.ingest.writer import take_part
from splade_expander import batches
from splade_expander.batches import Batch, dumps_line, max_doc_bytes, records, resume_point
from splade_expander.documents import Document, DocumentError, layout_of, open_stream, read_documents
from splade_expander.errors import ObjectFailedError
from splade_expander.outputs import Output, OutputState, chosen, output_name, split_carry


def client_error(code: str, operation: str = "PutObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [("0055AED6DCD90281E5", "0055AED6DCD90281E6", -1), ("0055AED6DCD90281E5", "0055aed6dcd90281e5", 0),
     ("0055AED6DCD9028", "0055AED6DCD90281", -1), ("0055AED6DCD90281", "0055AED6DCD9028", 1),
     ("0055AED6DCD902810", "0055AED6DCD90281", 0), ("AB", None, 0), (None, "AB", 0), ("0A", "09", 1)],
)  # fmt: skip
def test_sequencers_compare_as_hex_right_padded(a, b, order) -> None:
    """S3 sequencers of one key compare as hex strings, the shorter right-padded with zeros; unknown is equal."""
    assert s3cond.sequencer_order(a, b) == order


def test_error_codes_are_classified_once() -> None:
    """not found, no upload, precondition/conflict and denied come from one table; anything else is none."""
    assert all(s3cond.is_not_found(client_error(c)) for c in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"))
    assert s3cond.is_no_upload(client_error("NoSuchUpload")) and not s3cond.is_not_found(client_error("NoSuchUpload"))
    codes = ("412", "PreconditionFailed", "ConditionalRequestConflict")
    assert all(s3cond.is_precondition(client_error(c)) for c in codes)
    assert all(s3cond.is_denied(client_error(c)) for c in ("403", "AccessDenied"))
    assert s3cond.error_code(client_error("SlowDown")) == "SlowDown" and s3cond.error_code(ValueError("x")) == ""
    slow = client_error("SlowDown")
    assert not any(f(slow) for f in (s3cond.is_not_found, s3cond.is_precondition, s3cond.is_denied))


def test_if_match_on_a_missing_key_is_a_lost_race_even_where_moto_ignores_it() -> None:
    """S3 answers If-Match on a key that no longer exists with 404 NoSuchKey: for a conditional commit that is a
    lost race like 412. moto ignores If-Match on CompleteMultipartUpload, so the multipart case is checked here on
    the classification itself (the single-PUT case runs against moto in test_ingest.py)."""
    gone = client_error("NoSuchKey", "CompleteMultipartUpload")
    assert s3cond.lost_race(gone, '"etag-seen-at-start"')
    assert not s3cond.lost_race(gone, None)  # If-None-Match: a 404 there is something else
    assert s3cond.lost_race(client_error("PreconditionFailed", "CompleteMultipartUpload"), None)
    assert s3cond.lost_race(client_error("ConditionalRequestConflict", "CompleteMultipartUpload"), '"e"')
    assert not s3cond.lost_race(client_error("NoSuchUpload", "CompleteMultipartUpload"), '"e"')
    assert not s3cond.lost_race(client_error("InternalError", "CompleteMultipartUpload"), '"e"')


def test_existing_output_is_newer_only_by_sequencer() -> None:
    """An output is newer than an event only when its recorded sequencer is higher."""
    out = s3cond.Existing('"e"', "0055AED6DCD90281E6", "src")
    assert out.newer_than("0055AED6DCD90281E5") and not out.newer_than("0055AED6DCD90281E6")
    assert not out.newer_than(None) and not s3cond.Existing('"e"', None, None).newer_than("00")


@pytest.mark.parametrize(
    ("key", "content_type", "fmt"),
    [("a.jsonl", None, "jsonl"), ("a.ndjson.gz", None, "jsonl"), ("a.txt", None, "text"), ("a.MD", None, "text"),
     ("a.txt.gz", None, "text"), ("a", "text/plain; charset=utf-8", "text"),
     ("a", "application/x-ndjson", "unsupported"), ("a.png", None, "unsupported"),
     ("a.pdf", "application/pdf", "unsupported")],
)  # fmt: skip
def test_content_format_by_suffix_then_content_type(key, content_type, fmt) -> None:
    """A key's suffix (before .gz) decides its format; without a known suffix, a text/* Content-Type is text."""
    assert layout_of(key, content_type) == fmt


def read(body: bytes, key: str = "k.jsonl", **kw) -> list:  # type: ignore[type-arg]
    stream = open_stream(io.BytesIO(body), key, 1 << 30)
    return list(read_documents(stream, key, layout_of(key, None), text_field="text", id_field="id",
                               max_doc_bytes=kw.pop("max_doc_bytes", 1 << 20), **kw))  # fmt: skip


def test_lines_are_read_with_their_numbers_offsets_and_errors() -> None:
    """JSON Lines: a document per good line with its 1-based line number and byte offset; each bad line is a
    DocumentError with its code; blank lines are skipped; a BOM on line 1 is dropped."""
    body = b'\xef\xbb\xbf{"id": 1, "text": "a"}\n\nnot json\n{"id": 2}\n{"text": "b"}\r\n'
    items = read(body)
    assert [(type(i).__name__, i.line) for i in items] == [
        ("Document", 1), ("DocumentError", 3), ("DocumentError", 4), ("Document", 5)
    ]  # fmt: skip
    assert [i.offset for i in items] == [0, 27, 36, 46]
    assert (items[0].id, items[0].text, items[3].id, items[3].text) == (1, "a", "k.jsonl#5", "b")
    assert [i.code for i in items if isinstance(i, DocumentError)] == ["invalid_json", "missing_text"]


def test_a_continuation_reads_from_its_line_and_offset_or_skips_in_gzip() -> None:
    """A ranged read starts at the checkpoint's byte offset numbering from its line; a gzip stream is read from
    the start and skips that many lines: both give the same remaining items."""
    lines = [json.dumps({"id": i, "text": f"t{i}"}).encode() for i in range(10)]
    body = b"\n".join(lines) + b"\n"
    whole = read(body)
    line, offset = resume_point(whole[4])
    ranged = read(body[offset:], first_line=line, offset=offset)
    skipped = read(gzip.compress(body), key="k.jsonl.gz", skip_lines=line)
    assert [(d.id, d.line, d.offset) for d in ranged] == [(d.id, d.line, d.offset) for d in whole[4:]]
    assert [(d.id, d.line) for d in skipped] == [(d.id, d.line) for d in whole[4:]]


def test_a_text_object_is_one_document_or_one_too_long_error() -> None:
    """A text object is one document (id: its key); one over max_doc_bytes is one text_too_long error, unread;
    a binary one fails the object."""
    (doc,) = read(b"lung disease", key="notes.txt")
    assert (doc.id, doc.text, doc.line) == ("notes.txt", "lung disease", None)
    (err,) = read(b"x" * 101, key="notes.txt", max_doc_bytes=100)
    assert (err.code, err.line) == ("text_too_long", None)
    with pytest.raises(ObjectFailedError) as failed:
        read(b"a\x00b", key="notes.txt")
    assert failed.value.code == "binary_object"


def test_the_cut_rule_is_documents_characters_or_lines() -> None:
    """A batch is full at BATCH_DOCS documents, BATCH_CHARS characters, or BATCH_ITEMS lines good or bad; each
    batch comes with the item after it, None after the last; an empty source is one empty batch."""
    docs = [Document(i, "x", i + 1, i * 10) for i in range(150)]
    cut = list(batches.batches(docs))
    assert [len(b.docs) for b, _ in cut] == [64, 64, 22]
    assert [a.line if a else None for _, a in cut] == [65, 129, None] and cut[1][0].first is docs[64]
    bad = [DocumentError(i + 1, "invalid_json", "x", i) for i in range(2500)]
    assert [len(b.bad) for b, _ in batches.batches(bad)] == [1000, 1000, 500]
    big = [Document(i, "y" * 150_000, i + 1) for i in range(7)]
    assert [len(b.docs) for b, _ in batches.batches(big)] == [3, 3, 1]
    ((empty, after),) = list(batches.batches([]))
    assert (empty.docs, empty.bad, empty.first, after) == ([], [], None, None)


def test_output_names_and_bounds() -> None:
    """Every source gives <base>.jsonl, .errors.jsonl, .chunks.jsonl and .df.json; documents are read up to the
    Expander's character bound in UTF-8 (4 bytes a character), or the object limit when unbounded."""
    assert [output_name("vectors/a.txt", o) for o in Output] == [
        "vectors/a.txt.jsonl", "vectors/a.txt.chunks.jsonl", "vectors/a.txt.errors.jsonl", "vectors/a.txt.df.json"
    ]  # fmt: skip
    assert [o for o in Output if o.multipart] == [Output.VECTORS, Output.CHUNKS] and Output.ERRORS.capped
    assert chosen(chunks=False, df=True) == (Output.VECTORS, Output.ERRORS, Output.DF)
    assert max_doc_bytes(1000, 5) == 4000 and max_doc_bytes(None, 5) == 5
    assert resume_point(Document("d", "t", 7, 120)) == (6, 120) and resume_point(Document("d", "t", None)) == (0, 0)


def test_records_of_a_batch_in_every_output() -> None:
    """A batch gives a vector record per document in order, the chunk records, the errors of bad lines and of
    documents too long in line order, and token ids when asked; the source block is the caller's."""
    from handler import runtime

    expander = runtime.expander
    batch = Batch()
    items: list[Document | DocumentError] = [
        Document("a", "lung disease", 1), DocumentError(2, "invalid_json", "bad"),
        Document("b", "x " * 300_000, 3, 40), Document("c", "asthma", 4, 60),
    ]  # fmt: skip
    for item in items:
        batch.add(item)
    out = records(expander, batch, {"path": "f.jsonl"}, fmt="indices", chunks=True, df=True)
    assert [r["id"] for r in out.vectors] == ["a", "c"] and out.documents == 2
    assert out.vectors[0]["source"] == {"path": "f.jsonl", "line": 1} and out.vectors[0]["model"] == expander.model_info
    (vec,) = expander.expand(["asthma"])
    assert out.vectors[1]["indices"] == vec.indices.tolist()
    assert [(e["source"]["line"], e["code"]) for e in out.errors] == [(2, "invalid_json"), (3, "text_too_long")]
    assert [c["id"] for c in out.chunks] == ["a", "c"] and out.chunks[0]["span"] == [0, 12]
    assert out.token_ids == expander.token_ids(["lung disease", "asthma"])


def test_parts_are_cut_at_line_ends_by_the_bytes_alone() -> None:
    """take_part cuts a part at the first line end at or past the part size, so the parts of a stream are the
    same whether it is written in one run or resumed from any run's unsent tail."""
    lines = [dumps_line({"id": i, "text": "w" * (i % 37)}) for i in range(2000)]

    def cut(stream: list[bytes], tail: bytes = b"") -> tuple[list[bytes], bytes]:
        buffer, parts = bytearray(tail), []
        for line in stream:
            buffer += line
            part = take_part(buffer, 5000)
            if part is not None:
                parts.append(part)
        return parts, bytes(buffer)

    parts, tail = cut(lines)
    assert b"".join(parts) + tail == b"".join(lines)
    assert all(len(p) >= 5000 and len(p) - len(p.splitlines(keepends=True)[-1]) < 5000 for p in parts)
    assert all(p.endswith(b"\n") for p in parts) and len(tail) < 5000
    first, carried = cut(lines[:900])  # a run paused after line 900: its tail travels in the carry object
    rest, end = cut(lines[900:], carried)
    assert (first + rest, end) == (parts, tail)


@pytest.mark.parametrize("status", list(Status))
def test_a_run_that_is_not_over_queues_the_object_and_the_rest_of_the_batch(monkeypatch, status: Status) -> None:
    """process_tasks, given an object's outcome: CONTINUED queues that object again with its checkpoint, RESTART
    queues it again from the start, and either stops the batch there (the objects after it are queued too,
    unstarted); every other status ends that object and the batch goes on to the next."""
    refs = [ObjectRef("in", f"docs/{n}.jsonl", etag=f"e{n}") for n in range(3)]
    cp = Checkpoint(run=1, line=10, offset=99)
    ran: list[str] = []

    def process_task(task: events.Task, remaining: object) -> Outcome:
        ran.append(task.ref.key)
        first = task.ref is refs[0]
        return Outcome(
            status if first else Status.WRITTEN, task.ref.key, ref=task.ref, checkpoint=cp if first else None
        )

    monkeypatch.setattr(ingest, "process_task", process_task)
    monkeypatch.setattr(ingest, "_log_outcome", lambda outcome: None)
    outcomes, left = ingest.process_tasks([events.Task(r) for r in refs], lambda: 10**9)
    if status in (Status.CONTINUED, Status.RESTART):
        assert ran == ["docs/0.jsonl"] and [o.status for o in outcomes] == [status]
        assert [t.ref for t in left] == refs
        assert [t.checkpoint for t in left] == [cp if status is Status.CONTINUED else None, None, None]
    else:
        assert ran == [r.key for r in refs] and left == []


def test_checkpoints_travel_whole_in_the_continuation_message() -> None:
    """A CONTINUED checkpoint survives the continuation message unchanged, next to an unstarted task; an outcome's
    summary is its status and counts."""
    summary = {"status": "missing", "key": "k", "documents": 0, "errors": 0}
    assert Outcome(Status.MISSING, "k").summary() == summary
    ref = ObjectRef("in", "docs/a.jsonl", etag="e1", sequencer="0A")
    vectors = OutputState(seen='"o"', upload_id="u", parts=[{"PartNumber": 1, "ETag": '"p"'}], tail_bytes=70)
    outputs = {Output.VECTORS: vectors, Output.ERRORS: OutputState(kept=3, total=5, tail_bytes=40)}
    outputs[Output.DF] = OutputState(tail_bytes=9)
    cp = Checkpoint(run=2, line=640, offset=12345, carry_key="vectors/_checkpoints/docs/a.jsonl.e1.2", outputs=outputs)
    body = events.continuation_body([events.Task(ref, cp), events.Task(ref)])
    again = events.from_message(body)
    assert [t.checkpoint for t in again] == [cp, None] and again[0].ref == ref and cp.continuing
    assert json.loads(body)["tasks"][0]["checkpoint"]["outputs"]["errors"] == {"tail_bytes": 40, "kept": 3, "total": 5}
    assert not Checkpoint().continuing


def test_a_continuation_queued_before_0_2_reads_as_the_same_checkpoint() -> None:
    """A continuation message in flight across the upgrade holds the flat per-output fields of 0.1: it reads as the
    output states (the errors' tail being what the other tails leave of the carry), and the carry splits the same."""
    flat: dict[str, Any] = {
        "run": 3, "line": 900, "offset": 5000, "upload_id": "u", "parts": [{"PartNumber": 1, "ETag": '"p"'}],
        "documents": 880, "errors_kept": 2, "errors_total": 2, "tail_bytes": 5, "carry_key": "c", "output_etag": '"o"',
        "errors_etag": None, "chunks_etag": None, "chunks_upload_id": "cu", "chunks_parts": [], "chunks_tail_bytes": 3,
        "df_etag": '"d"', "df_bytes": 4,
    }  # fmt: skip
    body = json.dumps({"splade_ingest": 1, "tasks": [{"ref": {"bucket": "in", "key": "k"}, "checkpoint": flat}]})
    (task,) = events.from_message(body)
    cp = task.checkpoint
    assert cp is not None and (cp.run, cp.line, cp.offset, cp.documents, cp.carry_key) == (3, 900, 5000, 880, "c")
    assert cp.state(Output.VECTORS) == OutputState(seen='"o"', upload_id="u", parts=flat["parts"], tail_bytes=5)
    assert cp.state(Output.CHUNKS) == OutputState(upload_id="cu", tail_bytes=3)
    assert cp.state(Output.ERRORS) == OutputState(kept=2, total=2, tail_bytes=None)
    assert cp.state(Output.DF) == OutputState(seen='"d"', tail_bytes=4)
    carry = b"VVVVVCCCerr\nerr\nDDDD"
    tails = split_carry(carry, cp.outputs)
    assert tails == {Output.VECTORS: b"VVVVV", Output.CHUNKS: b"CCC", Output.ERRORS: b"err\nerr\n", Output.DF: b"DDDD"}
