"""splade-expand's run state without worker pools: which options a run uses (cli_run.settle), the run manifest, and
the order in which a file's progress record and outputs appear (so every interrupt is resumable)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splade_expander.outputs import Output
from splade_tools import cli, cli_run, jobs
from splade_tools.cli_run import DEFAULTS, RunManifest, flag, settle

BOTH = {**DEFAULTS, "format": "both", "chunks": True}
NOT_GIVEN = dict.fromkeys(DEFAULTS)
OUT = Path("vectors")


def test_a_new_run_takes_what_was_given_and_the_defaults() -> None:
    """Without a record, given options win and the rest are the defaults."""
    assert settle({**NOT_GIVEN, "format": "terms"}, None, resume=False, has_output=False, out=OUT) == {
        **DEFAULTS,
        "format": "terms",
    }


def test_resume_takes_the_recorded_options_and_accepts_matching_ones() -> None:
    """A bare --resume continues with the recorded options; repeating one of them is fine."""
    record = RunManifest(BOTH)
    assert settle(NOT_GIVEN, record, resume=True, has_output=True, out=OUT) == BOTH
    assert settle({**NOT_GIVEN, "format": "both"}, record, resume=True, has_output=True, out=OUT) == BOTH


def test_a_conflict_with_an_option_the_resumed_run_left_out_names_the_default_not_none() -> None:
    """--resume --model-dir m over a run that used the default model: "no --model-dir (the default)", never
    "--model-dir None"."""
    with pytest.raises(SystemExit) as info:
        settle({**NOT_GIVEN, "model_dir": "/m"}, RunManifest(DEFAULTS), resume=True, has_output=True, out=OUT)
    assert "--model-dir /m (the run being resumed used no --model-dir (the default))" in str(info.value)
    assert "None" not in str(info.value)


def test_resume_refuses_a_conflicting_option_naming_both_values() -> None:
    """--resume --format indices --no-chunks over a `--format both --chunks` run names each conflict."""
    given = {**NOT_GIVEN, "format": "indices", "chunks": False}
    with pytest.raises(SystemExit) as info:
        settle(given, RunManifest(BOTH), resume=True, has_output=True, out=OUT)
    message = str(info.value)
    assert "--format indices (the run being resumed used --format both)" in message
    assert "--no-chunks (the run being resumed used --chunks)" in message


def test_a_new_run_over_output_made_with_other_options_is_refused() -> None:
    """Output made with other options is never mixed with a new run's; an empty directory or the same options
    are fine."""
    with pytest.raises(SystemExit, match="holds output made with --format both --chunks, not --format indices"):
        settle(NOT_GIVEN, RunManifest(BOTH), resume=False, has_output=True, out=OUT)
    assert settle(NOT_GIVEN, RunManifest(BOTH), resume=False, has_output=False, out=OUT) == DEFAULTS
    assert settle(
        {**NOT_GIVEN, "format": "both", "chunks": True}, RunManifest(BOTH), resume=False, has_output=True, out=OUT
    )


def test_flags_are_spelled_as_the_command_line_takes_them() -> None:
    """Booleans as --x / --no-x, values after their flag, an empty value quoted."""
    assert [flag("df", True), flag("df", False), flag("format", "both"), flag("prune_type", "")] == [
        "--df",
        "--no-df",
        "--format both",
        "--prune-type ''",
    ]


def test_the_run_record_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Saved atomically (no .tmp left), loaded back with its options and per-file counts and signatures."""
    record = RunManifest(BOTH, "abc")
    record.finished("a.jsonl", 10, 2, {"size": 100, "mtime_ns": 5})
    record.save(tmp_path)
    assert RunManifest.load(tmp_path) == record
    assert sorted(p.name for p in tmp_path.iterdir()) == [".splade-expand.json"]
    assert RunManifest.load(tmp_path / "nothing") is None


def test_a_file_gets_its_progress_record_before_any_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped at the first interrupt point of a fresh file, the progress record exists and no output does; an
    output without a progress record means the file finished, so --resume skips it."""
    src = tmp_path / "docs.txt"
    src.write_text("lung disease")

    def stop() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "interrupt_point", stop)
    job = cli.Job(src, "docs.txt", tmp_path / "out" / "docs.txt")
    with pytest.raises(KeyboardInterrupt):
        job.open(resume=False)
    assert job.progress.exists() and not list((tmp_path / "out").glob("*.jsonl"))
    job.progress.unlink()
    job.output(".jsonl").write_text("")
    assert cli.Job(src, "docs.txt", tmp_path / "out" / "docs.txt").open(resume=True) is False


def test_workers_ignore_ctrl_c_and_stop_signals_reach_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """quiet_worker: SIGINT ignored (the parent reports the interrupt), SIGTERM the default (a silent end)."""
    import signal

    calls: dict[int, object] = {}
    monkeypatch.setattr(signal, "signal", calls.__setitem__)
    monkeypatch.setattr(signal, "pthread_sigmask", lambda how, mask: set())
    monkeypatch.setattr(cli_run, "_set_parent_death_signal", lambda: None)  # not on the test process itself
    cli_run.quiet_worker()
    assert calls == {signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_DFL}


def test_a_worker_whose_parent_died_before_its_start_exits(tmp_path: Path) -> None:
    """A pool worker forked just before its parent is SIGKILLed runs quiet_worker after the parent is gone, so
    no death signal will ever come: it exits at once instead of waiting for tasks forever (which kept the killed
    run's stdout and stderr open and hung whoever read them)."""
    code = (
        "import multiprocessing, os, sys, time\n"
        "from splade_tools import cli_run\n"
        "cli_run._parent['pid'] = os.getpid()\n"
        "def worker():\n"
        "    time.sleep(1.0)  # the parent dies meanwhile\n"
        "    cli_run.quiet_worker()\n"
        "    time.sleep(60)  # what a pool worker does: wait for tasks\n"
        "child = multiprocessing.get_context('fork').Process(target=worker)\n"
        "child.start()\n"
        "print(child.pid, flush=True)\n"
        "os._exit(9)  # the parent dies without running anything (as SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited; its reaper may be slow


def test_a_progress_record_from_before_0_2_resumes_at_its_sizes(tmp_path: Path) -> None:
    """A file interrupted under 0.1 has its sizes by suffix in the progress record: --resume reads them as the
    output states and truncates each file back to its size (bytes written after the record are dropped)."""
    src = tmp_path / "docs.txt"
    src.write_text("lung disease")
    out = tmp_path / "out" / "docs.txt"
    out.parent.mkdir()
    job = cli.Job(src, "docs.txt", out)
    for suffix, body in ((".jsonl", b"0123456789tail"), (".errors.jsonl", b"e1\n"), (".chunks.jsonl", b"")):
        job.output(suffix).write_bytes(body)
    record = {"source": job.signature(), "line": 3, "offset": 40, "done": False, "documents": 2, "errors": 1}
    record["sizes"] = {".jsonl": 10, ".errors.jsonl": 3, ".chunks.jsonl": 0}
    job.progress.write_text(json.dumps(record))
    assert job.open(resume=True)
    assert (job.line, job.offset, job.documents, job.errors) == (3, 40, 2, 1)
    sizes = {o: s.size for o, s in job.outputs.states.items()}
    assert sizes == {Output.VECTORS: 10, Output.CHUNKS: 0, Output.ERRORS: 3}
    job.outputs.commit()
    assert job.output(".jsonl").read_bytes() == b"0123456789" and not job.output(".chunks.jsonl").exists()
