"""`pip install .` gives the library and a working `splade-expand`: the wheel built from this checkout, installed
into a fresh venv (its dependencies taken from the dev venv, so the test needs no index), declares its runtime
dependencies and ships the library, the tools and the function, never devkit or scripts."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from devkit import MODEL_DIR, ROOT

pytestmark = pytest.mark.integration
PATH_ONLY = {"PATH": "/usr/bin:/bin"}


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env or PATH_ONLY, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run([*pip, "-w", str(out), str(ROOT)], capture_output=True, text=True, check=False, cwd=out)
    assert built.returncode == 0, built.stdout[-3000:]
    (found,) = out.glob("splade_expander-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel; numpy, onnxruntime and tokenizers come from the dev venv's site-packages (a
    plain path entry: its .pth files, the checkout's among them, are not run)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", where], capture_output=True, text=True, check=True).stdout.strip())
    (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python), "install", "-q"]
    subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    return root


def test_the_wheel_declares_its_dependencies_and_ships_only_the_product(wheel: Path) -> None:
    """Requires-Dist names the library's runtime (numpy, onnxruntime, tokenizers) and the `lambda` extra; the
    top-level packages are splade_expander, splade_tools, splade_convert and handler; the console scripts are
    splade-expand and splade-convert."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = {r.split(">")[0] for r in requires if "extra ==" not in r}
    assert runtime == {"numpy", "onnxruntime", "tokenizers"}
    assert "Provides-Extra: lambda" in meta and any(r.startswith("aws-lambda-powertools") for r in requires)
    tops = {n.split("/")[0] for n in names if "dist-info" not in n}
    assert tops == {"splade_expander", "splade_tools", "splade_convert", "handler"}
    assert "splade-expand = splade_tools.cli:main" in entry and "splade-convert = splade_convert.cli:main" in entry
    assert "Provides-Extra: convert" in meta


def test_the_installed_library_and_cli_work_outside_the_checkout(venv: Path, tmp_path: Path) -> None:
    """From a directory outside the checkout: `splade-expand --help` runs; the installed `splade_expander` (not
    the checkout's) loads the model MODEL_DIR names and expands; without a model, `Expander()` says what to run."""
    python, cli = venv / "bin" / "python", venv / "bin" / "splade-expand"
    with_model = {**PATH_ONLY, "MODEL_DIR": str(MODEL_DIR)}
    shown = run([cli, "--help"], tmp_path)
    assert shown.returncode == 0 and "usage: splade-expand" in shown.stdout, shown.stderr
    code = (
        "import os, splade_expander as s; e = s.Expander(os.environ['MODEL_DIR'])\n"
        "print(s.__file__, len(e.expand(['lung'])[0]))"
    )
    used = run([python, "-c", code], tmp_path, with_model)
    installed = next(venv.glob("lib/python*/site-packages")) / "splade_expander" / "__init__.py"
    assert used.returncode == 0 and used.stdout.split()[0] == str(installed), used.stderr
    assert int(used.stdout.split()[1]) > 0
    bare = run([python, "-c", "import splade_expander as s; s.Expander()"], tmp_path)
    assert bare.returncode == 1 and "ModelAssetsError: could not find model.onnx" in bare.stderr
    assert "`make model`" in bare.stderr.splitlines()[-1] and "MODEL_DIR" in bare.stderr.splitlines()[-1]


def test_the_old_import_still_works_and_warns(venv: Path, tmp_path: Path) -> None:
    """`from handler.expander import Expander` (before 0.2) gives the library's Expander with a DeprecationWarning
    naming the new import."""
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    from handler.expander import Expander\n"
        "import splade_expander\n"
        "print(Expander is splade_expander.Expander, [(w.category.__name__, str(w.message)) for w in seen])"
    )
    out = run([venv / "bin" / "python", "-c", code], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True [('DeprecationWarning', 'handler.expander is deprecated")
    assert "from splade_expander import Expander" in out.stdout


def test_splade_expand_from_the_wheel_writes_ingests_records(venv: Path, tmp_path: Path) -> None:
    """The installed splade-expand expands a JSONL file into the same vectors file as a checkout run would."""
    docs = tmp_path / "in" / "a.jsonl"
    docs.parent.mkdir()
    docs.write_text('{"id": "a", "text": "chronic obstructive pulmonary disease"}\n')
    env = {**PATH_ONLY, "MODEL_DIR": str(MODEL_DIR)}
    out = run([venv / "bin" / "splade-expand", docs.parent, "-o", tmp_path / "out", "--workers", "1"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    here = run([Path(sys.executable).parent / "splade-expand", docs.parent, "-o", tmp_path / "here"], tmp_path, env)
    assert here.returncode == 0, here.stderr
    assert (tmp_path / "out" / "a.jsonl.jsonl").read_bytes() == (tmp_path / "here" / "a.jsonl.jsonl").read_bytes()
