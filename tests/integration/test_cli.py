"""`splade-expand`: local files -> the same JSON Lines as S3 ingest, one output per input, on several processes,
resumable after a kill without a duplicated or lost line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from devkit import ROOT
from devkit.aws import ingest_object
from devkit.corpus import prose_paragraphs
from handler import runtime
from splade_expander.batches import batches
from splade_tools import cli, cli_run, jobs, worker

pytestmark = pytest.mark.integration
CLI = str(ROOT / ".venv" / "bin" / "splade-expand")


def corpus_lines(n: int) -> list[str]:
    """``n`` JSON Lines of prose (some long enough for two windows), with a bad line every 97 and blank lines."""
    prose = prose_paragraphs()
    lines = []
    for i in range(n):
        text = " ".join(prose[i % 40 : i % 40 + (4 if i % 10 == 0 else 1)])
        lines.append(json.dumps({"id": f"d{i}", "text": text}))
    for i in range(5, n, 97):
        lines[i] = '{"broken": ' if i % 2 else '{"id": "x", "text": 7}'
    lines[3] = ""
    return lines


def write_tree(root: Path, n: int = 400) -> None:
    (root / "sub").mkdir(parents=True)
    lines = corpus_lines(n)
    (root / "a.jsonl").write_text("\n".join(lines) + "\n")
    (root / "sub" / "b.ndjson.gz").write_bytes(gzip.compress(("\n".join(lines[:150]) + "\n").encode()))
    (root / "sub" / "c.md").write_text(" ".join(prose_paragraphs()[:20]))
    (root / "sub" / "image.png").write_bytes(b"\x89PNG")


def outputs(out: Path, record: bool = True) -> dict[str, bytes]:
    """Every file under ``out`` by relative path (the run manifest .splade-expand.json too, unless told not)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and (record or p.name != ".splade-expand.json")
    }


def expand(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, check=True, **kwargs)


def test_one_output_per_input_with_the_layout_of_the_tree(tmp_path: Path) -> None:
    """A directory gives `<out>/<relative path>.jsonl` per supported file (.jsonl, .ndjson.gz, .md; not .png),
    an errors file only where lines were bad, and chunks files with --chunks; no progress file is left."""
    write_tree(tmp_path / "in")
    result = expand(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--chunks", "--workers", "2")
    assert sorted(outputs(tmp_path / "out", record=False)) == [
        "a.jsonl.chunks.jsonl",
        "a.jsonl.errors.jsonl",
        "a.jsonl.jsonl",
        "sub/b.ndjson.gz.chunks.jsonl",
        "sub/b.ndjson.gz.errors.jsonl",
        "sub/b.ndjson.gz.jsonl",
        "sub/c.md.chunks.jsonl",
        "sub/c.md.jsonl",
    ]
    assert (tmp_path / "out" / ".splade-expand.json").is_file()  # the run manifest
    assert "\r" not in result.stderr and "error records in 2 files, from 3 files" in result.stderr  # no bar: no TTY
    (doc,) = [json.loads(x) for x in (tmp_path / "out" / "sub" / "c.md.jsonl").read_text().splitlines()]
    assert doc["id"] == "sub/c.md" and doc["source"] == {"path": "sub/c.md", "line": None}
    (vec,) = runtime.expander.expand([(tmp_path / "in" / "sub" / "c.md").read_text()])
    assert doc["indices"] == vec.indices.tolist()


def test_the_lines_are_s3_ingests_lines(tmp_path: Path, aws: Any) -> None:
    """The same JSONL through S3 ingest and through the CLI: every vector line and every error record is the
    same except for `source` (bucket/key/etag there, path here), with the line numbers equal."""
    body = ("\n".join(corpus_lines(300)) + "\n").encode()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.jsonl").write_bytes(body)
    expand(str(tmp_path / "in" / "docs.jsonl"), "-o", str(tmp_path / "out"), "--format", "both", "--workers", "2")
    ingested = ingest_object(aws.client("s3"), f"cli-{uuid.uuid4().hex[:6]}/docs.jsonl", body, output_format="both")
    for suffix in (".jsonl", ".errors.jsonl"):
        local = (tmp_path / "out" / f"docs.jsonl{suffix}").read_text()
        ours, theirs = [json.loads(x) for x in local.splitlines()], ingested[suffix]
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs, strict=True):
            assert a.pop("source") == {"path": "docs.jsonl", "line": b.pop("source")["line"]}
            assert a == b


def test_one_process_and_two_give_the_same_bytes(tmp_path: Path) -> None:
    """Results are written in input order whatever the number of workers."""
    write_tree(tmp_path / "in", 300)
    expand(str(tmp_path / "in"), "-o", str(tmp_path / "one"), "--workers", "1")
    expand(str(tmp_path / "in"), "-o", str(tmp_path / "two"), "--workers", "2")
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")


def mixed_corpus(root: Path) -> None:
    """Twelve one-document .txt files, a .jsonl with bad lines over four batches, a .gz of two batches."""
    (root / "notes").mkdir(parents=True)
    prose = prose_paragraphs()
    for i in range(12):
        (root / "notes" / f"n{i:02}.txt").write_text(" ".join(prose[i : i + 2]))
    lines = corpus_lines(200)
    (root / "big.jsonl").write_text("\n".join(lines) + "\n")
    (root / "small.ndjson.gz").write_bytes(gzip.compress(("\n".join(lines[:80]) + "\n").encode()))


def expand_at(point: str, *args: str) -> subprocess.CompletedProcess[str]:
    """splade-expand with SPLADE_EXPAND_INTERRUPT_AT=<point> (a signal at the n-th interrupt point, or count)."""
    env = {**os.environ, "SPLADE_EXPAND_INTERRUPT_AT": point}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, check=False, env=env)


def test_interrupted_anywhere_then_resumed_gives_the_uninterrupted_bytes(tmp_path: Path) -> None:
    """SIGINT, SIGTERM and SIGKILL at a dozen interrupt points spread over a mixed corpus (before the first batch
    ends, inside and between a file's outputs, between files, after the last batch), each followed by a bare
    `--resume` (the README's command, without the options): every output, the run manifest included, equals an
    uninterrupted run's byte for byte. SIGINT and SIGTERM print one line naming --resume, no traceback, and exit
    130 / 143; SIGKILL leaves no worker traceback."""
    mixed_corpus(tmp_path / "in")
    options = ["--format", "both", "--chunks", "--df", "--workers", "2"]
    whole = expand_at("count", str(tmp_path / "in"), "-o", str(tmp_path / "whole"), *options)
    assert whole.returncode == 0, whole.stderr
    total = int(whole.stderr.split(" interrupt points")[0].rsplit(" ", 1)[1])
    assert "286 documents, 4 error records in 2 files, from 14 files" in whole.stderr
    points = sorted({1, 2, 3, 4, 5, 7, *(total * k // 8 for k in range(1, 8)), total - 1})
    assert len(points) >= 12
    signals = ("SIGINT", "SIGKILL", "SIGTERM")
    report = {}
    for i, point in enumerate(points):
        out, name = tmp_path / f"out{point}", signals[i % 3]
        stopped = expand_at(f"{name}:{point}", str(tmp_path / "in"), "-o", str(out), *options)
        resumed = expand_at("", str(tmp_path / "in"), "-o", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr
        report[f"{name}:{point}"] = outputs(out) == outputs(tmp_path / "whole")
        assert "Traceback" not in stopped.stderr, stopped.stderr
        if name == "SIGKILL":
            assert stopped.returncode == -9 and stopped.stderr == ""
        else:
            assert stopped.returncode == {"SIGINT": 130, "SIGTERM": 143}[name], stopped.stderr
            (line,) = stopped.stderr.splitlines()
            assert line.startswith("splade-expand: interrupted after ") and "rerun with --resume" in line
        assert resumed.stderr.splitlines()[-1].startswith(whole.stderr.splitlines()[0].split(" in ")[0])
    print(report)  # the closing note quotes this
    assert report == dict.fromkeys(report, True)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "whole").rglob("*") if p.name != ".splade-expand.json"}
    expand(str(tmp_path / "in"), "-o", str(tmp_path / "whole"), "--resume")  # nothing left to do: nothing touched
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_resume_refuses_other_options_and_a_new_run_refuses_other_output(tmp_path: Path) -> None:
    """`--resume --format indices` on a `--format both` run is refused naming both values; a new run with other
    options into a directory holding output is refused; the same options, or --resume with them, are accepted."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("lung disease")
    out = str(tmp_path / "out")
    expand(str(tmp_path / "in"), "-o", out, "--format", "both", "--chunks")
    for args, message in (
        (["--resume", "--format", "indices"], "given: --format indices (the run being resumed used --format both)"),
        (["--resume", "--no-chunks"], "given: --no-chunks (the run being resumed used --chunks)"),
        (["--format", "terms"], "holds output made with --format both --chunks, not --format terms --no-chunks"),
    ):
        result = subprocess.run(
            [CLI, str(tmp_path / "in"), "-o", out, *args], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0 and message in result.stderr, result.stderr
    expand(str(tmp_path / "in"), "-o", out, "--format", "both", "--chunks")
    expand(str(tmp_path / "in"), "-o", out, "--format", "both", "--resume")


def test_resume_redoes_an_input_changed_since_it_finished_and_says_so(tmp_path: Path) -> None:
    """A finished input whose size or mtime changed is expanded again on --resume, with one line saying so: its
    outputs equal a fresh run's over the new input; an unchanged finished input is left alone. Equal size and
    mtime count as unchanged (rsync's quick check), even when the bytes differ."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_text("\n".join(corpus_lines(60)) + "\n")
    (src / "b.txt").write_text("chronic obstructive pulmonary disease")
    out = tmp_path / "out"
    expand(str(src), "-o", str(out))
    kept = (out / "b.txt.jsonl").stat().st_mtime_ns
    (src / "a.jsonl").write_text("\n".join(corpus_lines(80)) + "\n")  # 20 lines appended
    resumed = expand(str(src), "-o", str(out), "--resume")
    assert "splade-expand: a.jsonl changed since it finished (size or mtime): expanding it again" in resumed.stderr
    fresh = tmp_path / "fresh"
    expand(str(src), "-o", str(fresh))
    assert outputs(out, record=False) == outputs(fresh, record=False)
    assert (out / "b.txt.jsonl").stat().st_mtime_ns == kept and "b.txt" not in resumed.stderr
    before = (out / "a.jsonl.jsonl").read_bytes()
    stat = (src / "a.jsonl").stat()
    (src / "a.jsonl").write_text((src / "a.jsonl").read_text().replace("d1", "e1"))  # same size
    os.utime(src / "a.jsonl", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    quiet = expand(str(src), "-o", str(out), "--resume")
    assert "changed" not in quiet.stderr and (out / "a.jsonl.jsonl").read_bytes() == before


def test_resume_redoes_an_interrupted_input_that_changed(tmp_path: Path) -> None:
    """Progress is tied to the input's size and mtime: an input changed since the interruption is redone whole,
    and the run says so."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "docs.jsonl").write_text("\n".join(corpus_lines(200)) + "\n")
    out = tmp_path / "out"
    stopped = expand_at("SIGINT:6", str(src), "-o", str(out))
    assert stopped.returncode == 130 and (out / "docs.jsonl.progress.json").exists()
    (src / "docs.jsonl").write_text("\n".join(corpus_lines(50)) + "\n")
    resumed = expand(str(src), "-o", str(out), "--resume")
    assert "docs.jsonl changed since the interrupted run (size or mtime): expanding it again" in resumed.stderr
    assert len((out / "docs.jsonl.jsonl").read_text().splitlines()) == 50 - 1 - 1  # one blank, one bad line
    assert not (out / "docs.jsonl.progress.json").exists()


def test_resume_without_a_run_record_is_refused(tmp_path: Path) -> None:
    """`--resume` into a directory that holds no run manifest (a typo, say) is refused in one line naming the
    directory, and creates nothing, instead of starting a fresh run with default options."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("lung disease")
    typo = tmp_path / "typo-dir"
    result = subprocess.run(
        [CLI, str(tmp_path / "in"), "-o", str(typo), "--resume"], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and not typo.exists()
    (line,) = result.stderr.splitlines()
    assert line == (
        f"splade-expand: --resume: {typo} has no run manifest (.splade-expand.json), so there is nothing to resume; "
        "check the directory, or leave out --resume to start a run there"
    )


def test_bad_arguments_exit_with_a_usage_error(tmp_path: Path) -> None:
    """A missing input, a bad prune pair or zero workers exit with a non-zero status and say why."""
    for args, message in (
        ([str(tmp_path / "nope"), "-o", str(tmp_path)], "no such file or directory"),
        ([str(tmp_path), "-o", str(tmp_path), "--prune-type", "max_ratio", "--prune-value", "2"], "--prune-type"),
        ([str(tmp_path), "-o", str(tmp_path), "--workers", "0"], "--workers"),
    ):
        result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode != 0 and message in result.stderr


def test_the_progress_bar_shows_share_rate_and_eta(capsys) -> None:
    """On a TTY (or with --progress) one redrawn line: share of input bytes, docs, error records (singular for
    one), docs/s, ETA. On a resume, what earlier runs did counts in the totals and the share, not in the rate or
    the ETA: 400 earlier docs (40% of the bytes) and 10 new ones give about 10 docs/s over one second, not 410,
    and an ETA from this run's 10% of the bytes."""
    bar = cli.Progress(1000, enabled=True)
    bar.update(10, 1, 500, force=True)
    err = capsys.readouterr().err
    assert err.startswith("\r[###############               ]  50% 10 docs, 1 error record, ") and "ETA" in err
    resumed = cli.Progress(1000, enabled=True)
    resumed.update(400, 0, 400, earlier=True)
    resumed.start -= 1.0  # one second into this run
    resumed.update(10, 0, 500, force=True)
    line = capsys.readouterr().err.rsplit("\r", 1)[1]
    rate = int(line.split(" docs/s")[0].rsplit(" ", 1)[1])
    eta = float(line.split("ETA ")[1].split(" s")[0])
    assert "50% 410 docs, 0 error records" in line and 9 <= rate <= 11 and 4.5 <= eta <= 5.5, line
    cli.Progress(1000, enabled=False).update(10, 0, 500, force=True)
    assert capsys.readouterr().err == ""


def test_df_files_merge_into_the_idf_of_the_whole_corpus(tmp_path: Path) -> None:
    """`--df` writes `<file>.df.json` per input; `make idf DF=<out>` (scripts/idf.py --merge) over them gives the
    same idf.json as counting the inputs' documents at once."""
    import shutil
    import sys

    from devkit import MODEL_DIR

    (tmp_path / "in").mkdir()
    prose = prose_paragraphs()
    first, second = prose[:50], [" ".join(prose[50:70]), *prose[70:90]]
    (tmp_path / "in" / "one.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in first))
    (tmp_path / "in" / "two.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in second))
    expand(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--df")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.df.json")) == ["one.jsonl.df.json", "two.jsonl.df.json"]
    for name in ("whole", "merged"):
        (tmp_path / name).mkdir()
        shutil.copy2(MODEL_DIR / "tokenizer.json", tmp_path / name / "tokenizer.json")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text((tmp_path / "in" / "one.jsonl").read_text() + (tmp_path / "in" / "two.jsonl").read_text())
    script = str(ROOT / "scripts" / "idf.py")
    subprocess.run([sys.executable, script, "--data", str(corpus), "--out", str(tmp_path / "whole")], check=True)
    subprocess.run(
        [sys.executable, script, "--merge", str(tmp_path / "out"), "--out", str(tmp_path / "merged")], check=True
    )
    assert (tmp_path / "merged" / "idf.json").read_bytes() == (tmp_path / "whole" / "idf.json").read_bytes()


def test_a_kill_after_the_last_batch_but_before_finishing_writes_nothing_twice(tmp_path: Path) -> None:
    """The progress record says when every batch is written: a run stopped between the last batch and the end
    of the file's bookkeeping is finished by --resume without a batch written again."""
    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "docs.jsonl"
    src.write_text("\n".join(corpus_lines(100)) + "\n")
    expand(str(src), "-o", str(tmp_path / "whole"), "--df")
    out = tmp_path / "out"
    options = cli.Options(df=True)
    given = {**dict.fromkeys(cli_run.DEFAULTS), "df": True}  # the run manifest a real run saves before any file
    chosen = cli_run.settle(given, None, resume=False, has_output=False, out=out)
    cli_run.RunManifest(chosen, cli._model_sha256(runtime.settings.model_dir)).save(out)
    job = cli.Job(src, "docs.jsonl", out / "docs.jsonl", vocab_size=30522)
    assert job.open(resume=False)
    worker.start_worker(options)
    for batch, after in batches(jobs.items(job, options)):
        job.write(worker.expand_batch(batch, job.rel, options), after)
    for handle in job.outputs.files.values():  # "killed" here: the progress record is still there
        handle.close()
    assert json.loads((out / "docs.jsonl.progress.json").read_text())["done"] is True
    expand(str(src), "-o", str(out), "--df", "--resume")
    assert outputs(out) == outputs(tmp_path / "whole")
