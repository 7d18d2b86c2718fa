"""`pip install .` gives the library and a working `splade-expand`: the wheel built from this checkout, installed
into a fresh venv (its dependencies taken from the dev venv, so the test needs no index), declares its runtime
dependencies and ships the library, the tools and the function, never devkit or scripts."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from devkit import MODEL_DIR, ROOT
from devkit.apishim import api
from devkit.aws import ApiKeyWorld
from devkit.emulator import Emulator

pytestmark = pytest.mark.integration
PATH_ONLY = {"PATH": "/usr/bin:/bin"}
KEY = "k-" + "w" * 38


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
    assert tops == {"splade_expander", "splade_client", "splade_adapters", "splade_tools", "splade_convert", "handler"}
    assert "Provides-Extra: client" in meta
    for extra, wanted in {"langchain": {"langchain-core", "langchain-qdrant", "langchain-milvus"},
                          "llamaindex": {"llama-index-core"}, "haystack": {"haystack-ai"}}.items():  # fmt: skip
        assert f"Provides-Extra: {extra}" in meta
        assert {r.split(";")[0].split(">")[0] for r in requires if f'extra == "{extra}"' in r} == wanted
    assert {r.split(";")[0].split(">")[0] for r in requires if 'extra == "client"' in r} == {"botocore", "httpx"}
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
    bare = run(
        [python, "-c", "import splade_expander as s; s.Expander()"], tmp_path, {**PATH_ONLY, "HOME": str(tmp_path)}
    )
    assert bare.returncode == 1 and "ModelAssetsError: could not find model.onnx" in bare.stderr
    last = bare.stderr.splitlines()[-1]
    assert "splade-convert --bundled" in last and "`make model`" in last and "MODEL_DIR" in last


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


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def test_the_bundled_model_command_and_the_python_page_run_from_the_wheel(venv: Path, tmp_path: Path) -> None:
    """`splade-convert --bundled` (installed) fetches the pinned weights and builds the same model.onnx, byte for
    byte, as `make model`, into ~/.cache/splade-expander/model; then every python snippet of docs/python.md runs
    with the installed packages: the client ones against the real function under the runtime emulator behind the
    API shim (SigV4 checked from AWS's spec; the API key against a local Secrets Manager), the library one and the
    four framework ones (langchain-qdrant, langchain-milvus, llama-index Qdrant, qdrant-haystack) on the bundled
    model."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**PATH_ONLY, "HOME": str(home)}
    built = run([venv / "bin" / "splade-convert", "--bundled"], tmp_path, env)
    assert built.returncode == 0, built.stderr[-2000:]
    made = home / ".cache" / "splade-expander" / "model"
    assert (made / "model.onnx").read_bytes() == (MODEL_DIR / "model.onnx").read_bytes()
    blocks = python_blocks(ROOT / "docs" / "python.md")
    assert len(blocks) == 8
    keyed = ApiKeyWorld(KEY)
    try:
        with Emulator(keyed.function_env()) as emu, api(emu, auth="iam", secrets={"AKIDDOCS": "docs-secret"}) as iam, \
                api(emu, auth="none", source="function_url") as url:  # fmt: skip
            env.update({
                "SPLADE_API_URL": iam.url, "SPLADE_FUNCTION_URL": url.url, "SPLADE_API_KEY": KEY,
                "AWS_ACCESS_KEY_ID": "AKIDDOCS", "AWS_SECRET_ACCESS_KEY": "docs-secret",
                "AWS_DEFAULT_REGION": "us-east-1",
            })  # fmt: skip
            outputs = []
            for block in blocks:
                ran = run([venv / "bin" / "python", "-c", block], tmp_path, env)
                assert ran.returncode == 0, (block, ran.stderr[-2000:])
                outputs.append(ran.stdout)
            assert len(iam.refused) == 0 and len(iam.calls) >= 4 and len(url.calls) >= 2
    finally:
        keyed.close()
    assert outputs[0].startswith("2 [") and outputs[2].strip() == "100"
    assert "'reset': " in outputs[1] and "'chronic': " in outputs[3]
    assert [o.strip().splitlines()[-1] for o in outputs[4:]] == ["COPD is a chronic lung disease"] * 4
