"""One input file of splade-expand and its outputs, resumable through its progress record; which files a run
takes. The outputs are the local-file sink of the output model (splade_expander/outputs.py): ``LocalOutputs``
writes each output's lines to ``<out>/<relative path><suffix>``, and its states (each file's size) are the
progress record's, so ``--resume`` truncates every file back to the last record and goes on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from splade_expander.batches import Item, resume_point
from splade_expander.docfreq import DocFreq
from splade_expander.documents import DocumentError, Layout, is_gzip, layout_of, open_stream, read_documents
from splade_expander.errors import ObjectFailedError
from splade_expander.outputs import SUFFIXES, Lines, Output, OutputState, states_from_dict, states_to_dict

from .cli_run import RunManifest, interrupt_point
from .progress import say
from .worker import MAX_FILE_BYTES, Options

FILES = tuple(o for o in Output if o.streamed)  # opened at the start, batch by batch; df is written at the end


class LocalOutputs:
    """The local-file sink: one file per streamed output beside ``base`` (each file's size is its state), and
    the document frequencies written at the commit. A file of an optional output left empty is removed."""

    def __init__(self, base: Path, vocab_size: int | None) -> None:
        self.base = base
        self.states: dict[Output, OutputState] = {o: OutputState() for o in FILES}
        self.files: dict[Output, IO[bytes]] = {}
        self.df = DocFreq(vocab_size) if vocab_size is not None else None  # --df: the counts so far

    def path(self, output: Output) -> Path:
        return self.base.with_name(self.base.name + output.suffix)

    def open(self) -> None:
        """Each file truncated to its state's size (0 for a file starting over); the df file of an earlier run
        removed (its counts are not this run's)."""
        for output in FILES:
            target, size = self.path(output), self.states[output].size
            handle = target.open("r+b" if target.exists() else "w+b")
            handle.truncate(size)
            handle.seek(size)
            self.files[output] = handle
            interrupt_point()

    def write(self, batch: Lines) -> None:
        """One batch, in input order: errors, then vectors, then chunks (as ingest writes them)."""
        for output in (Output.ERRORS, Output.VECTORS, Output.CHUNKS):
            self.files[output].write(b"".join(batch.lines.get(output, ())))
            if output is not Output.CHUNKS:
                interrupt_point()
        if self.df is not None and batch.df is not None:
            self.df.merge(batch.df)

    def pause(self) -> dict[Output, OutputState]:
        """Every byte so far flushed; the states (sizes) the progress record keeps."""
        for output, handle in self.files.items():
            handle.flush()
            self.states[output].size = handle.tell()
        return self.states

    def commit(self) -> None:
        """The document frequencies written; the files closed, the empty optional ones removed."""
        if self.df is not None:
            self.path(Output.DF).write_bytes(self.df.dumps() + b"\n")
            interrupt_point()
        for output, handle in self.files.items():
            handle.close()
            if output.optional and self.states[output].size == 0:
                self.path(output).unlink()
                interrupt_point()

    def discard(self) -> None:
        """Every file of the set removed (a file starting over)."""
        for handle in self.files.values():
            handle.close()
        for output in Output:
            self.path(output).unlink(missing_ok=True)


@dataclass
class Job:
    """One input file and its outputs; ``line``/``offset``: how far its outputs are complete."""

    path: Path
    rel: str
    out: Path
    vocab_size: int | None = None  # --df: count document frequencies over this vocabulary
    line: int = 0
    offset: int = 0
    documents: int = 0
    errors: int = 0
    done: bool = False  # every batch is written (the progress record says so); only finish() is left
    outputs: LocalOutputs = field(init=False)

    def __post_init__(self) -> None:
        self.outputs = LocalOutputs(self.out, self.vocab_size)

    @property
    def progress(self) -> Path:
        return self.out.with_name(self.out.name + ".progress.json")

    def output(self, suffix: str) -> Path:
        return self.out.with_name(self.out.name + suffix)

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
                self.outputs.discard()
            else:
                self._restore(state)
                resumed = True
        elif resume and self.output(SUFFIXES[Output.VECTORS]).exists():  # outputs without a progress record: finished
            if finished is None or finished.get("source", self.signature()) == self.signature():
                return False
            say(f"{self.rel} changed since it finished (size or mtime): expanding it again")
        if not resumed:
            self._save_progress()
            interrupt_point()
        if not self.done:
            self.outputs.path(Output.DF).unlink(missing_ok=True)  # an earlier run's counts are not this run's
        self.outputs.open()
        return True

    def _restore(self, state: dict[str, Any]) -> None:
        """The progress record's position, counts and output states (``sizes`` by suffix: a record before 0.2)."""
        self.line, self.offset, self.done = state["line"], state["offset"], bool(state.get("done"))
        self.documents, self.errors = state["documents"], state["errors"]
        if "outputs" in state:
            self.outputs.states.update(states_from_dict(state["outputs"]))
        else:
            by_suffix = {o.suffix: o for o in FILES}
            for suffix, size in state["sizes"].items():
                self.outputs.states[by_suffix[suffix]].size = size
        if self.outputs.df is not None and state.get("df"):
            self.outputs.df = DocFreq.from_json(state["df"])

    def _save_progress(self) -> None:
        state = {"source": self.signature(), "line": self.line, "offset": self.offset, "done": self.done}
        state |= {"documents": self.documents, "errors": self.errors, "outputs": states_to_dict(self.outputs.states)}
        if self.outputs.df is not None:
            state["df"] = self.outputs.df.to_json()
        temp = self.progress.with_name(self.progress.name + ".tmp")
        temp.write_text(json.dumps(state))
        os.replace(temp, self.progress)

    def write(self, lines: Lines, after: Item | None) -> None:
        """One batch, in input order; then the progress record (after the bytes are in the files): the outputs
        are complete up to ``after``, the first item of the next batch (None: the end of the file)."""
        self.outputs.write(lines)
        self.documents += lines.documents
        self.errors += lines.errors
        if after is not None:
            self.line, self.offset = resume_point(after)
        self.outputs.pause()
        self.done = after is None
        interrupt_point()
        self._save_progress()
        interrupt_point()

    def finish(self, record: RunManifest, root: Path) -> None:
        """The outputs committed (df, empty side files removed), the counts into the run manifest, and only then
        the progress record removed (an interrupt before that finishes the file again on --resume)."""
        self.outputs.commit()
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
