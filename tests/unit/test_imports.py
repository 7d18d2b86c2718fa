"""The import rules of docs/architecture.md ("Parts and the arrows between them"), checked on every module's
imports as the code writes them: top-level, inside functions and under TYPE_CHECKING alike.

The parts: the library (``splade_expander``), the function (``handler``), the local tools (``splade_tools``), the
converter (``splade_convert``), and around them devkit, the development tooling (``scripts/``) and the tests.
Allowed arrows: function -> library, tools -> library, converter -> library (its special-token rules), devkit /
tooling / tests -> any; nothing -> devkit or tooling; no circles between modules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from devkit import ROOT

PARTS = {  # part -> the folders or files it holds (the longer path wins)
    "library": ("splade_expander",),
    "client": ("splade_client",),
    "adapters": ("splade_adapters",),
    "function": ("handler",),
    "tools": ("splade_tools",),
    "converter": ("splade_convert",),
    "devkit": ("devkit",),
    "tooling": ("scripts",),
    "tests": ("tests",),
}  # fmt: skip
ANY = set(PARTS)
ALLOWED = {
    "library": {"library"},
    "client": {"client", "library"},
    "adapters": {"adapters", "client", "library"},
    "function": {"function", "library"},
    "tools": {"tools", "library"},
    "converter": {
        "converter",
        "library",
    },  # the library's special-token rules, defined once (splade_expander/specials.py)
    "devkit": ANY,
    "tooling": ANY,
    "tests": ANY,
}
# Arrows the next issues remove, each named by what removes it; the test fails when one is no longer there, so the
# list cannot outlive its reason.
PENDING: dict[tuple[str, str], str] = {}
PENDING_CIRCLES: dict[frozenset[str], str] = {}
# What the value types may never load, directly or through the library's own modules (the client imports them).
RUNTIMES = ("onnxruntime", "tokenizers")
LAMBDA_ONLY = ("aws_lambda_powertools", "boto3", "botocore")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    found = {}
    for top in ("splade_expander", "handler", "splade_tools", "splade_convert", "devkit", "scripts", "tests"):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = our_modules()


def part_of(module: str) -> str:
    path = MODULES[module].relative_to(ROOT).as_posix()
    best = max((p for ps in PARTS.values() for p in ps if path == p or path.startswith(p + "/")), key=len)
    return next(part for part, paths in PARTS.items() if best in paths)


def run_at_import(tree: ast.Module) -> Iterator[ast.AST]:
    """The nodes that run when the module is imported: not function bodies, not ``if TYPE_CHECKING:`` blocks."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def imports(module: str, at_import: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of ``module`` (``at_import``: only those that run when it is
    imported); ``from pkg import name`` gives ``pkg.name`` when that is a module of ours, else ``pkg``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in run_at_import(tree) if at_import else ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


def own(target: str) -> str | None:
    """The module of ours ``target`` names (itself or the package it is in), or None for a third-party one."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


@cache
def arrows(at_import: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _ in imports(module, at_import):
            hit = own(target)
            if hit is not None and hit != module:
                graph[module].add(hit)
    return graph


def test_every_import_follows_the_allowed_arrows() -> None:
    """No module imports a part its own part may not reach (function -> tools, library -> function, anything of
    the product -> devkit or tooling, the converter -> the library...), with each exception named and still real."""
    broken, seen_pending = [], set()
    for module in sorted(MODULES):
        source = part_of(module)
        for target, line in imports(module):
            hit = own(target)
            if hit is None or part_of(hit) in ALLOWED[source]:
                continue
            if (module, hit) in PENDING:
                seen_pending.add((module, hit))
                continue
            broken.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {source} -> {part_of(hit)} ({hit})")
    assert broken == []
    assert seen_pending == set(PENDING), "an exception no longer needed: drop it from PENDING"


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    """No circle of imports anywhere, type-checking and function-level imports included (a package's __init__
    handing names on counts as importing them)."""
    found = [c for c in circles(arrows()) if frozenset(c) not in PENDING_CIRCLES]
    assert found == []
    assert {frozenset(c) for c in circles(arrows())} >= set(PENDING_CIRCLES), "a circle is gone: drop it"


def closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def third_party(modules: set[str], at_import: bool = False) -> set[str]:
    return {t.partition(".")[0] for m in modules for t, _ in imports(m, at_import) if own(t) is None}


@pytest.mark.parametrize("module", ["splade_expander.vectors", "splade_expander.errors", "splade_expander"])
def test_the_value_types_load_no_model_runtime(module: str) -> None:
    """Importing SparseVector, Chunk or the errors (or the package's face, whose Expander loads on first use)
    loads neither onnxruntime nor tokenizers, through no import of theirs or of the library modules they import:
    a client can take them without a model runtime."""
    reached = closure(module, arrows(at_import=True))
    assert third_party(reached, at_import=True).isdisjoint(RUNTIMES), sorted(reached)
    assert "splade_expander.expander" in closure(module, arrows()) or module != "splade_expander"


def test_the_value_types_really_import_without_onnxruntime() -> None:
    """The same, in a fresh interpreter: after ``from splade_expander import SparseVector``, neither runtime
    module is in sys.modules; ``splade_expander.Expander`` then loads them."""
    import subprocess
    import sys

    code = (
        "import sys; from splade_expander import SparseVector, InvalidRequestError; "
        "loaded = lambda: sorted(m for m in ('onnxruntime', 'tokenizers') if m in sys.modules); print(loaded()); "
        "from splade_expander import Expander; print(loaded())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split("\n")[:2] == ["[]", "['onnxruntime', 'tokenizers']"], out.stderr


def test_the_library_knows_nothing_of_lambda() -> None:
    """No library module imports Powertools, boto3 or botocore, or reads the function's environment: the library
    takes explicit arguments (its settings module only declares how a program reads them)."""
    library = {m for m in MODULES if part_of(m) == "library"}
    assert third_party(library).isdisjoint(LAMBDA_ONLY), sorted(third_party(library) & set(LAMBDA_ONLY))
    readers = [m for m in library if re.search(r"os\.environ|getenv", MODULES[m].read_text())]
    assert readers == ["splade_expander.settings"]


def test_the_architecture_page_lists_the_parts_the_test_checks() -> None:
    """docs/architecture.md's table of parts names the same folders, and its arrows are this test's."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page.split("## Parts and the arrows between them", 1)[1].split("\n## ", 1)[0]
    for part, paths in PARTS.items():
        row = next((line for line in section.splitlines() if line.startswith(f"| {part} |")), None)
        assert row is not None, part
        assert all(f"`{p}" in row for p in paths), (part, row)
        allowed = sorted(ALLOWED[part] - {part}) if ALLOWED[part] != ANY else ["any"]
        assert row.split("|")[3].strip() == (", ".join(allowed) or "nothing"), (part, row)
