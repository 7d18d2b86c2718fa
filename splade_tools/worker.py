"""splade-expand's workers: the options a run's output depends on, and a batch -> its serialized records in a
worker process (each loads its own Expander once, at one thread by default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splade_expander.batches import Batch, records
from splade_expander.outputs import Lines, serialize
from splade_expander.prune import Prune
from splade_expander.settings import ExpanderSettings

from .cli_run import quiet_worker

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


_worker: dict[str, Any] = {}  # this process's Expander, loaded once by start_worker


def start_worker(options: Options, worker: bool = False) -> None:
    from splade_expander.expander import Expander

    if worker:
        quiet_worker()

    chosen = ExpanderSettings.from_env().expander_options() | {"threads": options.threads}  # the CLI reads the shell's
    if options.model_dir is not None:
        chosen["model_dir"] = options.model_dir
    _worker["expander"] = Expander(**chosen)


def expand_batch(batch: Batch, rel: str, options: Options) -> Lines:
    """A batch -> its ingest records (batches.py), serialized for every output (outputs.serialize)."""
    expander = _worker["expander"]
    out = records(
        expander, batch, {"path": rel}, fmt=options.fmt, prune=options.prune, chunks=options.chunks, df=options.df
    )
    return serialize(out, expander.vocab_size if options.df else None)
