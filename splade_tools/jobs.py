"""One input file of splade-expand and its outputs (vectors, errors, chunks, df), resumable through its progress
record; which files a run takes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from splade_expander.batches import SUFFIXES as OUTPUT_SUFFIXES
from splade_expander.batches import Item, output_name, resume_point
from splade_expander.docfreq import DocFreq
from splade_expander.documents import DocumentError, Layout, is_gzip, layout_of, open_stream, read_documents
from splade_expander.errors import ObjectFailedError

from .cli_run import RunManifest, interrupt_point
from .progress import say
from .worker import MAX_FILE_BYTES, Lines, Options

FILE_OUTPUTS = ("vectors", "errors", "chunks")  # written batch by batch; df at the end
SUFFIXES = tuple(OUTPUT_SUFFIXES[name] for name in FILE_OUTPUTS)


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
        unchanged (``finished``: the run manifest's entry; equal size and mtime count as unchanged, rsync's quick
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

    def finish(self, record: RunManifest, root: Path) -> None:
        """The document frequencies, empty side files removed, the counts into the run manifest, and only then the
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


def items(job: Job, options: Options) -> Iterator[Item]:
    layout = layout_of(job.rel, None)
    if layout is Layout.UNSUPPORTED:
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
            layout,
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


def find_inputs(paths: list[Path], out: Path) -> list[tuple[Path, str]]:
    """(file, relative name) for each input: a directory's supported files, sorted; a file by its name."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = file.relative_to(path).as_posix()
                if layout_of(rel, None) is not Layout.UNSUPPORTED and out.resolve() not in file.resolve().parents:
                    found.append((file, rel))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise SystemExit(f"splade-expand: {path}: no such file or directory")
    return found
