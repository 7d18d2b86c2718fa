"""``splade-expand``'s run-level record and its interrupt handling, beside the per-file progress records.

``<out>/.splade-expand.json`` holds the options a run was made with and, per finished input, its counts. It is
written before the first file starts, so ``--resume`` continues with the options of the run it resumes (an
explicitly given option that differs is refused, naming both values), a new run into a directory holding output
made with other options is refused, and the summary counts what earlier runs wrote.

``SPLADE_EXPAND_INTERRUPT_AT=<SIGNAL>:<n>`` (tests only) sends the process that signal at its n-th interrupt point,
so an interrupt can be placed deterministically; ``count`` makes the summary report how many points the run
passed.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = ".splade-expand.json"
# The options a run's output depends on, with their defaults (what an option left out means on a new run).
DEFAULTS: dict[str, Any] = {
    "format": "indices",
    "chunks": False,
    "df": False,
    "prune_type": "",
    "prune_value": 0.0,
    "text_field": "text",
    "id_field": "id",
    "model_dir": None,  # the model directory, resolved; None: $MODEL_DIR or the bundled model
}
FLAGS = {"format": "--format", "prune_type": "--prune-type", "prune_value": "--prune-value"}


def flag(name: str, value: Any) -> str:
    """How an option is spelled on the command line: ``--format both``, ``--chunks``, ``--no-df``."""
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{name.replace('_', '-')}"
    spelled = FLAGS.get(name, "--" + name.replace("_", "-"))
    if value is None:
        return f"no {spelled} (the default)"
    return f"{spelled} {value if value != '' else repr('')}"


@dataclass
class RunManifest:
    """The options of the run that owns an output directory, and the counts of its finished inputs."""

    options: dict[str, Any]
    model_sha256: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # rel -> {"documents", "errors", "source"}

    @staticmethod
    def path(out: Path) -> Path:
        return out / MANIFEST

    @classmethod
    def load(cls, out: Path) -> RunManifest | None:
        path = cls.path(out)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(data["options"], data.get("model_sha256", ""), data.get("files", {}))

    def save(self, out: Path) -> None:
        """Atomically, so an interrupt leaves the old record or the new one."""
        out.mkdir(parents=True, exist_ok=True)
        data = {"options": self.options, "model_sha256": self.model_sha256, "files": self.files}
        temp = self.path(out).with_name(MANIFEST + ".tmp")
        temp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(temp, self.path(out))

    def finished(self, rel: str, documents: int, errors: int, source: dict[str, int]) -> None:
        """``source``: the input's size and mtime when it finished (a later --resume redoes it if they differ)."""
        self.files[rel] = {"documents": documents, "errors": errors, "source": source}


def settle(
    given: dict[str, Any], recorded: RunManifest | None, *, resume: bool, has_output: bool, out: Path
) -> dict[str, Any]:
    """The options this run uses: ``given`` holds each option as the command line gave it, None when left out.
    ``--resume`` takes the recorded ones (a given one must match); a new run takes the given ones and defaults,
    and refuses a directory holding output made with other options."""
    chosen = {name: default if given.get(name) is None else given[name] for name, default in DEFAULTS.items()}
    if recorded is None:
        if resume:
            raise SystemExit(
                f"splade-expand: --resume: {out} has no run manifest ({MANIFEST}), so there is nothing to resume; "
                "check the directory, or leave out --resume to start a run there"
            )
        return chosen
    if resume:
        conflicts = [
            f"{flag(name, value)} (the run being resumed used {flag(name, recorded.options.get(name))})"
            for name, value in given.items()
            if value is not None and value != recorded.options.get(name)
        ]
        if conflicts:
            raise SystemExit(
                "splade-expand: --resume continues with the options of the run it resumes; given: "
                + "; ".join(conflicts)
                + ". Leave them out, or write to another directory."
            )
        return {**DEFAULTS, **recorded.options}
    differ = [name for name in DEFAULTS if chosen[name] != recorded.options.get(name)]
    if differ and has_output:
        theirs = " ".join(flag(n, recorded.options.get(n)) for n in differ)
        ours = " ".join(flag(n, chosen[n]) for n in differ)
        raise SystemExit(
            f"splade-expand: the output directory holds output made with {theirs}, not {ours}: continue it with "
            "--resume, run with the same options, or write to another directory"
        )
    return chosen


# ------------------------------------------------------------------------------------------------ interrupts
class TerminatedError(BaseException):  # like KeyboardInterrupt: no `except Exception` swallows it
    """SIGTERM, raised in the main thread (Ctrl-C raises KeyboardInterrupt)."""


def raise_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise TerminatedError

    signal.signal(signal.SIGTERM, handler)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


_parent: dict[str, int] = {"pid": 0}  # the process that started the pool (set before its workers fork)


def start_pool(context: Any, workers: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
    """A process pool whose workers never run the parent's SIGTERM handler: the stop signals stay blocked from the
    fork until quiet_worker has set the worker's own dispositions (one that arrives meanwhile waits, then ends the
    worker). Without this, a SIGTERM from Pool.terminate() during a worker's start could be taken by the inherited
    handler and lost, and terminate() would wait for that worker forever."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    _parent["pid"] = os.getpid()  # forked workers inherit it: quiet_worker checks the parent is still this one
    try:
        return context.Pool(workers, initializer, initargs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def quiet_worker() -> None:
    """In a worker: Ctrl-C (sent to the whole process group) is the parent's to handle, SIGTERM ends the worker
    silently, and the worker ends with its parent (Linux PR_SET_PDEATHSIG), so none leaves a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's raise_on_sigterm is inherited by fork: undo it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by start_pool until now
    _set_parent_death_signal()
    if _parent["pid"] and os.getppid() != _parent["pid"]:
        # the parent died (SIGKILL) between the fork and the line above: no death signal will come, and a worker
        # left waiting for tasks would hold the parent's stdout and stderr open forever
        os._exit(0)


def _set_parent_death_signal() -> None:
    """SIGTERM this process when its parent dies (Linux PR_SET_PDEATHSIG); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        pass


_AT = os.environ.get("SPLADE_EXPAND_INTERRUPT_AT", "")
passed = {"points": 0}  # interrupt points this process has passed


def interrupt_point() -> None:
    """A place an interrupt may fall (tests place one here with SPLADE_EXPAND_INTERRUPT_AT)."""
    passed["points"] += 1
    if ":" in _AT:
        name, n = _AT.split(":", 1)
        if passed["points"] == int(n):
            os.kill(os.getpid(), getattr(signal, name))
