"""``splade-expand``: local files -> the same JSON Lines as S3 ingest, on every core, resumable.

    splade-expand corpus/ notes.md.gz -o vectors/ [--resume] [--workers N] [--format both] [--chunks]

Each input file (.txt .md .markdown .text .rst .jsonl .ndjson, optionally .gz; a directory is walked) gives
``<out>/<relative path>.jsonl`` (a vector per document), ``.errors.jsonl`` (one record per bad line, when there
are some) and ``.chunks.jsonl`` (``--chunks``). Records are ingest's, with ``source: {"path", "line"}``.

Documents go to ``--workers`` processes (default: one per CPU), each with its own ONNX Runtime session at one
thread: on 2 cores that is faster than one process at two threads (``make bench``). Results are written in
input order. ``<out>/<relative path>.progress.json`` is written before a file's outputs are created, and after each
batch records the input line and the size of each output, so ``--resume`` after an interruption truncates the
outputs to that point and goes on: no line is duplicated or lost. A finished file has no progress file and is
skipped by ``--resume``. The run's options live in ``<out>/.splade-expand.json`` (cli_run.py): ``--resume`` takes
them from there. Ctrl-C prints one line and exits 130.

The Lambda handler never imports this module.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .batches import SUFFIXES as OUTPUT_SUFFIXES
from .batches import Batch, Item, batches, max_doc_bytes, output_name, records, resume_point
from .cli_run import (
    DEFAULTS,
    RunRecord,
    TerminatedError,
    interrupt_point,
    quiet_worker,
    raise_on_sigterm,
    settle,
    start_pool,
)
from .config import Settings
from .docfreq import DocFreq
from .documents import DocumentError, content_kind, is_gzip, open_stream, read_documents
from .errors import ObjectFailedError
from .expander import max_text_chars
from .formats import FORMATS as OUTPUT_FORMATS
from .output import dumps_line
from .prune import Prune

FILE_OUTPUTS = ("vectors", "errors", "chunks")  # written batch by batch; df at the end
SUFFIXES = tuple(OUTPUT_SUFFIXES[name] for name in FILE_OUTPUTS)
MAX_FILE_BYTES = 1 << 40  # no size limit locally (the S3 path has MAX_OBJECT_BYTES)


@dataclass(frozen=True)
class Options:
    fmt: str = "indices"
    prune: Prune | None = None
    chunks: bool = False
    text_field: str = "text"
    id_field: str = "id"
    model_dir: Path | None = None
    threads: int = 1
    max_doc_bytes: int = MAX_FILE_BYTES  # a text file over this is one document too long (MAX_WINDOWS), unread
    df: bool = False  # also count document frequencies: <file>.df.json, as ingest's OUTPUT_DF (make idf DF=OUT)


# ------------------------------------------------------------------------------------------------ workers
_worker: dict[str, Any] = {}  # this process's Expander, loaded once by _start_worker


def _start_worker(options: Options, worker: bool = False) -> None:
    from .expander import Expander

    if worker:
        quiet_worker()

    chosen = Settings.from_env().expander_options() | {"threads": options.threads}  # the CLI reads the shell's
    if options.model_dir is not None:
        chosen["model_dir"] = options.model_dir
    _worker["expander"] = Expander(**chosen)


@dataclass
class Lines:
    """One batch's output, serialized in the worker (the parent only writes bytes)."""

    vectors: bytes = b""
    chunks: bytes = b""
    errors: bytes = b""
    documents: int = 0
    error_count: int = 0
    df: dict[int, int] = field(default_factory=dict)  # --df: vocabulary id -> documents of the batch with it


def _expand(batch: Batch, rel: str, options: Options) -> Lines:
    """A batch -> its ingest records (batches.py), serialized: vectors, chunks and errors."""
    expander = _worker["expander"]
    out = records(
        expander, batch, {"path": rel}, fmt=options.fmt, prune=options.prune, chunks=options.chunks, df=options.df
    )
    lines = Lines(documents=out.documents, error_count=len(out.errors))
    lines.vectors, lines.chunks, lines.errors = (
        b"".join(map(dumps_line, r)) for r in (out.vectors, out.chunks, out.errors)
    )
    if options.df:
        counts = DocFreq(expander.vocab_size)
        counts.add(out.token_ids)
        lines.df = {int(i): int(counts.counts[i]) for i in counts.counts.nonzero()[0]}
    return lines


# ------------------------------------------------------------------------------------------------ one input file
@dataclass
class Job:
    """One input file and its outputs; ``line``/``offset``: how far its outputs are complete."""

    path: Path
    rel: str
    out: Path
    line: int = 0
    offset: int = 0
    documents: int = 0
    errors: int = 0
    sizes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUFFIXES, 0))
    files: dict[str, IO[bytes]] = field(default_factory=dict)
    df: DocFreq | None = None  # --df: the counts so far (kept in the progress record)
    done: bool = False  # every batch is written (the progress record says so); only finish() is left

    @property
    def progress(self) -> Path:
        return self.out.with_name(self.out.name + ".progress.json")

    def output(self, suffix: str) -> Path:
        return self.out.with_name(self.out.name + suffix)

    def named(self, name: str) -> Path:
        """The output ``name`` (vectors, errors, chunks, df) of this file, as batches.py names it."""
        return self.out.with_name(output_name(self.out.name, name))

    def signature(self) -> dict[str, int]:
        stat = self.path.stat()
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def open(self, resume: bool, finished: dict[str, Any] | None = None) -> bool:
        """Open the outputs (truncated to the recorded progress on ``resume``); False: already finished and
        unchanged (``finished``: the run record's entry; equal size and mtime count as unchanged, rsync's quick
        check). A file starting over gets its progress record before any output is created or truncated, so an
        interrupt anywhere leaves either a progress record (resumable) or no output at all (started again)."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        resumed = False
        if resume and self.progress.exists():
            state = json.loads(self.progress.read_text())
            if state.get("source") != self.signature():
                say(f"{self.rel} changed since the interrupted run (size or mtime): expanding it again")
            else:
                self.line, self.offset, self.done = state["line"], state["offset"], bool(state.get("done"))
                self.documents, self.errors, self.sizes = state["documents"], state["errors"], state["sizes"]
                if self.df is not None and state.get("df"):
                    self.df = DocFreq.from_json(state["df"])
                resumed = True
        elif resume and self.output(".jsonl").exists():  # outputs without a progress record: finished
            if finished is None or finished.get("source", self.signature()) == self.signature():
                return False
            say(f"{self.rel} changed since it finished (size or mtime): expanding it again")
        if not resumed:
            self._save_progress()
            interrupt_point()
        if not self.done:
            self.named("df").unlink(missing_ok=True)  # an earlier run's counts are not this run's
        for suffix in SUFFIXES:
            target = self.output(suffix)
            handle = target.open("r+b" if target.exists() else "w+b")
            handle.truncate(self.sizes[suffix])
            handle.seek(self.sizes[suffix])
            self.files[suffix] = handle
            interrupt_point()
        return True

    def _save_progress(self) -> None:
        state = {"source": self.signature(), "line": self.line, "offset": self.offset, "done": self.done}
        state |= {"documents": self.documents, "errors": self.errors, "sizes": self.sizes}
        if self.df is not None:
            state["df"] = self.df.to_json()
        temp = self.progress.with_name(self.progress.name + ".tmp")
        temp.write_text(json.dumps(state))
        os.replace(temp, self.progress)

    def write(self, lines: Lines, after: Item | None) -> None:
        """One batch, in input order; then the progress record (after the bytes are in the files): the outputs
        are complete up to ``after``, the first item of the next batch (None: the end of the file)."""
        self.files[".errors.jsonl"].write(lines.errors)
        interrupt_point()
        self.files[".jsonl"].write(lines.vectors)
        interrupt_point()
        self.files[".chunks.jsonl"].write(lines.chunks)
        self.documents += lines.documents
        self.errors += lines.error_count
        if self.df is not None:
            self.df.documents += lines.documents
            for index, n in lines.df.items():
                self.df.counts[index] += n
        if after is not None:
            self.line, self.offset = resume_point(after)
        for suffix, handle in self.files.items():
            handle.flush()
            self.sizes[suffix] = handle.tell()
        self.done = after is None
        interrupt_point()
        self._save_progress()
        interrupt_point()

    def finish(self, record: RunRecord, root: Path) -> None:
        """The document frequencies, empty side files removed, the counts into the run record, and only then the
        progress record removed (an interrupt before that finishes the file again on --resume)."""
        if self.df is not None:
            self.named("df").write_bytes(self.df.dumps() + b"\n")
            interrupt_point()
        for suffix, handle in self.files.items():
            handle.close()
            if suffix != ".jsonl" and self.sizes[suffix] == 0:
                self.output(suffix).unlink()
                interrupt_point()
        record.finished(self.rel, self.documents, self.errors, self.signature())
        record.save(root)
        interrupt_point()
        self.progress.unlink(missing_ok=True)


def _items(job: Job, options: Options) -> Iterator[Item]:
    content = content_kind(job.rel, None)
    if content == "unsupported":
        return
    raw = job.path.open("rb")
    ranged = not is_gzip(job.rel) and job.line > 0
    if ranged:
        raw.seek(job.offset)
    stream = open_stream(raw, job.rel, MAX_FILE_BYTES)
    try:
        yield from read_documents(
            stream,
            job.rel,
            content,
            text_field=options.text_field,
            id_field=options.id_field,
            max_doc_bytes=options.max_doc_bytes,
            first_line=job.line if ranged else 0,
            offset=job.offset if ranged else 0,
            skip_lines=0 if ranged else job.line,
        )
    except ObjectFailedError as exc:
        yield DocumentError(None, exc.code, exc.message)
    finally:
        raw.close()


# ------------------------------------------------------------------------------------------------ driver
def find_inputs(paths: list[Path], out: Path) -> list[tuple[Path, str]]:
    """(file, relative name) for each input: a directory's supported files, sorted; a file by its name."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = file.relative_to(path).as_posix()
                if content_kind(rel, None) != "unsupported" and out.resolve() not in file.resolve().parents:
                    found.append((file, rel))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise SystemExit(f"splade-expand: {path}: no such file or directory")
    return found


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def say(message: str) -> None:
    """One line on stderr about the run (what a resume redoes, say)."""
    print(f"splade-expand: {message}", file=sys.stderr)


class Progress:
    """One status line on stderr (docs, error records, docs/s, ETA by input bytes), redrawn at most 4 times a
    second. The counts include what earlier runs of a resumed run wrote; the rate and the ETA count only this
    run's documents and bytes."""

    def __init__(self, total_bytes: int, enabled: bool) -> None:
        self.total, self.enabled, self.start, self.shown = max(total_bytes, 1), enabled, time.monotonic(), 0.0
        self.docs = self.errors = self.done_bytes = 0
        self.earlier_docs = self.earlier_bytes = 0  # what earlier runs of a resumed run did
        self.files_done = self.files_with_errors = 0

    def file_done(self, errors: int) -> None:
        self.files_done += 1
        self.files_with_errors += errors > 0

    def summary(self) -> str:
        errors = plural(self.errors, "error record")
        if self.files_with_errors:
            errors += f" in {plural(self.files_with_errors, 'file')}"
        return f"{plural(self.docs, 'document')}, {errors}"

    def update(self, docs: int, errors: int, done_bytes: int, force: bool = False, earlier: bool = False) -> None:
        """Add ``docs`` and ``errors``; ``done_bytes``: input bytes finished so far; ``earlier``: these were done
        by an earlier run (a resume), so they count in the totals and not in this run's rate."""
        self.docs += docs
        self.errors += errors
        if earlier:
            self.earlier_docs += docs
            self.earlier_bytes += max(done_bytes - self.done_bytes, 0)
        self.done_bytes = done_bytes
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.25 and not force):
            return
        self.shown = now
        elapsed = max(now - self.start, 1e-9)
        share = min(self.done_bytes / self.total, 1.0)
        this_run = self.done_bytes - self.earlier_bytes
        eta = f"{elapsed * (self.total - self.done_bytes) / this_run:.0f} s" if this_run > 0 else "?"
        bar = "#" * int(share * 30)
        sys.stderr.write(
            f"\r[{bar:<30}] {share:4.0%} {plural(self.docs, 'doc')}, {plural(self.errors, 'error record')}, "
            f"{(self.docs - self.earlier_docs) / elapsed:.0f} docs/s, ETA {eta} "
        )
        sys.stderr.flush()


def _empty_counts(options: Options) -> DocFreq | None:
    """--df: a file's document frequencies start empty, over the model's vocabulary (None without --df)."""
    if not options.df:
        return None
    from tokenizers import Tokenizer

    model_dir = options.model_dir or Settings.from_env().model_dir
    return DocFreq(Tokenizer.from_file(str(model_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True))


def expand_files(
    inputs: list[tuple[Path, str]],
    out: Path,
    options: Options,
    *,
    workers: int,
    resume: bool,
    progress: Progress,
    record: RunRecord,
) -> None:
    """Expand every input into ``out``, counting into ``progress`` (which the caller reads, interrupted or not)."""
    jobs = [Job(path, rel, out / rel, df=_empty_counts(options)) for path, rel in inputs]
    sizes = {job.rel: job.path.stat().st_size for job in jobs}
    progress.total = max(sum(sizes.values()), 1)
    done_bytes = 0
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = start_pool(context, workers, _start_worker, (options, True)) if workers > 1 else None
    if pool is None:
        _start_worker(options)
    pending: deque[tuple[Job, Any, Any]] = deque()

    def drain(limit: int) -> None:
        nonlocal done_bytes
        while len(pending) > limit:
            job, result, after = pending.popleft()
            lines: Lines = result.get() if pool else result
            job.write(lines, after)
            offset = sizes[job.rel] if after is None else min(after.offset, sizes[job.rel])
            progress.update(lines.documents, lines.error_count, done_bytes + offset)

    try:
        for job in jobs:
            interrupt_point()
            if not job.open(resume, record.files.get(job.rel)):
                done_bytes += sizes[job.rel]
                counts = record.files.get(job.rel, {"documents": 0, "errors": 0})
                progress.update(counts["documents"], counts["errors"], done_bytes, earlier=True)
                progress.file_done(counts["errors"])
                continue
            resumed_bytes = min(job.offset, sizes[job.rel]) if job.line else 0
            # what an earlier run wrote of this file: counted, but not in this run's rate
            progress.update(job.documents, job.errors, done_bytes + resumed_bytes, earlier=True)
            for batch, after in () if job.done else batches(_items(job, options)):
                work = (
                    pool.apply_async(_expand, (batch, job.rel, options)) if pool else _expand(batch, job.rel, options)
                )
                pending.append((job, work, after))
                drain(2 * workers)
            drain(0)
            job.finish(record, out)
            progress.file_done(job.errors)
            done_bytes += sizes[job.rel]
        progress.update(0, 0, done_bytes, force=True)
    finally:
        if pool is not None:
            pool.terminate()
        if progress.enabled:
            sys.stderr.write("\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splade-expand", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="files or directories (.txt .md .jsonl .ndjson, .gz)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run with its options; skip finished files"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPUs)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per process (default 1)")
    # The options the output depends on default to None ("not given"): cli_run.settle fills them in.
    boolean = argparse.BooleanOptionalAction
    parser.add_argument("--format", choices=OUTPUT_FORMATS, help="as OUTPUT_FORMAT (default indices)")
    parser.add_argument("--chunks", action=boolean, help="also write <file>.chunks.jsonl (as OUTPUT_CHUNKS)")
    parser.add_argument("--df", action=boolean, help="also write <file>.df.json (as OUTPUT_DF; make idf DF=OUT)")
    parser.add_argument("--prune-type", help="top_k, max_ratio, abs_value or alpha_mass")
    parser.add_argument("--prune-value", type=float)
    parser.add_argument("--text-field", help="default: text")
    parser.add_argument("--id-field", help="default: id")
    parser.add_argument("--model-dir", type=Path, help="default: $MODEL_DIR or the bundled model")
    parser.add_argument("--progress", action=boolean, default=None, help="default: on a TTY")
    return parser


def _model_sha256(model_dir: Path) -> str:
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(manifest.get("model_sha256") or manifest.get("sha256") or "")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be >= 1")
    settings = Settings.from_env()
    given = {name: getattr(args, name) for name in DEFAULTS}
    if given["model_dir"] is not None:
        given["model_dir"] = str(given["model_dir"].resolve())
    recorded = RunRecord.load(args.out)
    has_output = args.out.is_dir() and any(args.out.rglob("*.jsonl"))
    chosen = settle(given, recorded, resume=args.resume, has_output=has_output, out=args.out)
    try:
        prune = (
            Prune.parse({"type": chosen["prune_type"], "value": chosen["prune_value"]})
            if chosen["prune_type"]
            else None
        )
    except ValueError as exc:
        parser.error(f"--prune-type / --prune-value: {exc}")
    model_dir = Path(chosen["model_dir"]) if chosen["model_dir"] else settings.model_dir
    sha = _model_sha256(model_dir)
    if args.resume and recorded is not None and recorded.model_sha256 and sha != recorded.model_sha256:
        raise SystemExit(
            f"splade-expand: the model in {model_dir} (sha256 {sha[:12]}) is not the one the run being resumed used "
            f"({recorded.model_sha256[:12]}): write to another directory"
        )
    doc_bytes = max_doc_bytes(max_text_chars(settings.max_windows, settings.window_tokens), MAX_FILE_BYTES)
    fields = (chosen["format"], prune, chosen["chunks"], chosen["text_field"], chosen["id_field"])
    options = Options(*fields, model_dir, args.threads, doc_bytes, chosen["df"])
    inputs = find_inputs(args.inputs, args.out)
    record = RunRecord(chosen, sha, recorded.files if (recorded and args.resume) else {})
    record.save(args.out)  # before the first file starts: a resume of this run finds its options
    progress = Progress(1, sys.stderr.isatty() if args.progress is None else args.progress)
    start = time.perf_counter()
    raise_on_sigterm()
    try:
        expand_files(
            inputs, args.out, options, workers=args.workers, resume=args.resume, progress=progress, record=record
        )
    except (KeyboardInterrupt, TerminatedError) as exc:
        print(
            f"splade-expand: interrupted after {progress.summary()}, {progress.files_done} of "
            f"{plural(len(inputs), 'file')} done; rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    seconds = time.perf_counter() - start
    print(
        f"splade-expand: {progress.summary()}, from {plural(len(inputs), 'file')} in {seconds:.1f} s", file=sys.stderr
    )
    if os.environ.get("SPLADE_EXPAND_INTERRUPT_AT") == "count":
        from .cli_run import passed

        print(f"splade-expand: {passed['points']} interrupt points", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
