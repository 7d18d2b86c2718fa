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
from pathlib import Path
from typing import Any

from splade_expander.batches import batches, max_doc_bytes
from splade_expander.formats import FORMATS as OUTPUT_FORMATS
from splade_expander.outputs import Lines
from splade_expander.prune import Prune
from splade_expander.settings import ExpanderSettings
from splade_expander.windows import max_text_chars

from .cli_run import DEFAULTS, RunManifest, TerminatedError, interrupt_point, raise_on_sigterm, settle, start_pool
from .jobs import Job, find_inputs, items
from .progress import Progress, plural
from .worker import MAX_FILE_BYTES, Options, expand_batch, start_worker

__all__ = ["Job", "Options", "Progress", "expand_files", "find_inputs", "main"]


def _df_vocab(options: Options) -> int | None:
    """--df: the model's vocabulary size, which the document frequencies count over (None without --df)."""
    if not options.df:
        return None
    from tokenizers import Tokenizer

    model_dir = options.model_dir or ExpanderSettings.from_env().model_dir
    return int(Tokenizer.from_file(str(model_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True))


def expand_files(
    inputs: list[tuple[Path, str]],
    out: Path,
    options: Options,
    *, workers: int, resume: bool, progress: Progress, record: RunManifest,
) -> None:  # fmt: skip
    """Expand every input into ``out``, counting into ``progress`` (which the caller reads, interrupted or not)."""
    vocab_size = _df_vocab(options)
    jobs = [Job(path, rel, out / rel, vocab_size) for path, rel in inputs]
    sizes = {job.rel: job.path.stat().st_size for job in jobs}
    progress.total = max(sum(sizes.values()), 1)
    done_bytes = 0
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = start_pool(context, workers, start_worker, (options, True)) if workers > 1 else None
    if pool is None:
        start_worker(options)
    pending: deque[tuple[Job, Any, Any]] = deque()

    def drain(limit: int) -> None:
        nonlocal done_bytes
        while len(pending) > limit:
            job, result, after = pending.popleft()
            lines: Lines = result.get() if pool else result  # outputs.Lines
            job.write(lines, after)
            offset = sizes[job.rel] if after is None else min(after.offset, sizes[job.rel])
            progress.update(lines.documents, lines.errors, done_bytes + offset)

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
            for batch, after in () if job.done else batches(items(job, options)):
                work = (
                    pool.apply_async(expand_batch, (batch, job.rel, options))
                    if pool
                    else expand_batch(batch, job.rel, options)
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
    settings = ExpanderSettings.from_env()
    given = {name: getattr(args, name) for name in DEFAULTS}
    if given["model_dir"] is not None:
        given["model_dir"] = str(given["model_dir"].resolve())
    recorded = RunManifest.load(args.out)
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
    record = RunManifest(chosen, sha, recorded.files if (recorded and args.resume) else {})
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
