"""Each configuration variable is declared once (handler/config.py); everything else is derived or checked here:
the template's function environment, local-env.json, the local emulator's environment, and the route list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit import ROOT
from devkit.aws import load_template
from devkit.emulator import FUNCTION_ENV, POWERTOOLS_ENV
from handler.config import Settings
from handler.http.routes import ROUTES, allowed_methods
from splade_expander.defaults import MODEL_DIR as PACKAGE_MODEL_DIR

T = load_template()
GLOBAL_ENV: dict[str, Any] = T["Globals"]["Function"]["Environment"]["Variables"]
INGEST_ENV: dict[str, Any] = T["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
API_ENV: dict[str, Any] = T["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]


def _is_library(name: str) -> bool:
    return name.startswith(("POWERTOOLS_", "AWS_"))


def _template_default(value: Any) -> str:
    """A template variable's value when deployed with default parameters: a literal, or a parameter's default."""
    if isinstance(value, dict) and "Ref" in value:
        return str(T["Parameters"][value["Ref"]].get("Default", ""))
    assert not isinstance(value, dict), value  # only literals and parameters set our variables
    return str(value)


def test_settings_defaults_come_from_an_empty_environment() -> None:
    """An empty environment gives exactly the declared defaults."""
    assert Settings.from_env({}) == Settings()
    assert Settings().model_dir == PACKAGE_MODEL_DIR and Settings().output_prefix == "vectors/"


def test_settings_parse_every_type_and_ignore_blanks() -> None:
    """Integers, strings, paths and comma lists are parsed and stripped; a blank value keeps the default, except
    that a blank OUTPUT_PREFIX means no prefix, and a prefix gets its trailing slash."""
    settings = Settings.from_env(
        {
            "ORT_THREADS": " 2 ",
            "MAX_TEXTS": "",
            "MODEL_DIR": "/opt/model",
            "ALLOWED_ORIGINS": "https://a.example, ,https://b.example ",
            "OUTPUT_PREFIX": "out",
            "OUTPUT_FORMAT": "terms",
            "TEXT_FIELD": "  ",
        }
    )
    assert settings.threads == 2 and settings.max_texts == 64 and settings.model_dir == Path("/opt/model")
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.output_prefix == "out/" and settings.output_format == "terms" and settings.text_field == "text"
    assert Settings.from_env({"OUTPUT_PREFIX": ""}).output_prefix == ""
    assert Settings.from_env({"OUTPUT_PREFIX": "a/b/"}).output_prefix == "a/b/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ORT_THREADS": "two"}, "ORT_THREADS='two' is not an integer"),
        ({"ORT_THREADS": "65"}, "ORT_THREADS=65 must be in [0, 64]"),
        ({"WINDOW_TOKENS": "8"}, "WINDOW_TOKENS=8 must be in [16, 512]"),
        ({"MAX_BODY_BYTES": "100"}, "MAX_BODY_BYTES=100 must be >= 1024"),
        ({"MAX_TEXTS": "0"}, "MAX_TEXTS=0 must be >= 1"),
        ({"OUTPUT_FORMAT": "dense"}, "OUTPUT_FORMAT='dense' must be indices, terms or both"),
    ],
)
def test_a_malformed_variable_fails_naming_it(env: dict[str, str], message: str) -> None:
    """A bad value is a ValueError naming the variable and its bound (in Lambda the init phase fails loudly)."""
    with pytest.raises(ValueError, match="environment variable " + message.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_env(env)


def test_the_template_sets_exactly_the_declared_variables_with_their_defaults() -> None:
    """The functions' environment (Globals plus each function's own) holds every deployed Settings variable and no
    other of ours, each with the declared default under default parameters."""
    ours = {k: v for k, v in {**GLOBAL_ENV, **INGEST_ENV, **API_ENV}.items() if not _is_library(k)}
    declared = Settings.variables(deployed_only=True)
    assert sorted(ours) == sorted(declared)
    resources = {"OUTPUT_BUCKET", "INGEST_QUEUE_URL", "API_KEY_SECRET_ID"}  # the stack's own (next tests)
    env = {**GLOBAL_ENV, **INGEST_ENV, **API_ENV}
    template_defaults = {k: _template_default(v) for k, v in env.items() if k in declared.keys() - resources}
    assert template_defaults == {k: v for k, v in declared.items() if k not in resources}
    assert "MODEL_DIR" not in ours  # the model ships in the zip at the package default


def test_output_bucket_and_queue_are_the_stacks_own() -> None:
    """The two variables without a usable default point at the stack's resources."""
    assert INGEST_ENV["OUTPUT_BUCKET"] == {"Ref": "OutputBucket"}
    assert INGEST_ENV["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}


def test_the_api_key_secret_is_set_only_with_apikey_auth() -> None:
    """API_KEY_SECRET_ID is the stack's key secret with ApiAuth=apikey, and empty (no key check) otherwise; only
    the API function has it."""
    assert API_ENV["API_KEY_SECRET_ID"] == {"Fn::If": ["UseApiKey", {"Ref": "ApiKeySecret"}, ""]}
    assert "API_KEY_SECRET_ID" not in INGEST_ENV and "API_KEY_SECRET_ID" not in GLOBAL_ENV
    assert Settings().api_key_secret_id == ""


def test_library_variables_match_the_local_environment() -> None:
    """The powertools variables the local emulator sets are the template's (tracing off by default)."""
    template = {k: v for k, v in GLOBAL_ENV.items() if k.startswith("POWERTOOLS_")}
    assert sorted(template) == sorted(POWERTOOLS_ENV)
    assert template["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingOn", "false", "true"]}
    assert {k: v for k, v in template.items() if isinstance(v, str)} == {
        k: v for k, v in POWERTOOLS_ENV.items() if k != "POWERTOOLS_TRACE_DISABLED"
    }
    assert POWERTOOLS_ENV["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert T["Parameters"]["EnableTracing"]["Default"] == "false"


def test_the_emulator_environment_is_derived_from_the_declarations() -> None:
    """`make invoke`'s function environment is the declared defaults, the local output bucket and powertools."""
    ours = {k: v for k, v in FUNCTION_ENV.items() if not _is_library(k)}
    assert ours == {**Settings.variables(deployed_only=True), "OUTPUT_BUCKET": "splade-output"}


def test_local_env_json_sets_only_declared_variables() -> None:
    """`sam local`'s --env-vars file names only variables the functions have (sam ignores unknown ones silently)."""
    parameters = json.loads((ROOT / "local-env.json").read_text())["Parameters"]
    known = set(Settings.variables()) | set(POWERTOOLS_ENV)
    assert parameters and set(parameters) <= known, set(parameters) - known


def test_the_template_routes_exactly_the_declared_routes() -> None:
    """The HTTP API's events are ROUTES (plus the $default catch-all), so no route exists in one place only."""
    events = T["Resources"]["ApiFunction"]["Properties"]["Events"]
    routed = sorted(
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in events.values()
        if e["Type"] == "HttpApi" and "Path" in e["Properties"]
    )
    assert routed == sorted((r.method, r.path) for r in ROUTES)
    assert [e for e in events.values() if e["Type"] == "HttpApi" and "Path" not in e["Properties"]]  # $default
    assert allowed_methods("/v1/expand") == ("POST",) and allowed_methods("/v1/nothing") == ()


def test_the_configuration_page_documents_every_variable_with_its_default() -> None:
    """docs/deploy.md has a row per declared variable, whose default column shows exactly the declared default (a
    row naming two variables, `A / B`, gives their defaults in the same order)."""
    rows: dict[str, str] = {}
    for line in (ROOT / "docs" / "deploy.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            names = cells[0].replace("`", "").split(" / ")
            defaults = cells[1].replace("`", "").split(" / ")
            rows |= dict(zip(names, defaults, strict=True)) if len(defaults) == len(names) else dict.fromkeys(names, "")
    for name, default in Settings.variables().items():
        assert name in rows, name
        if default and name != "MODEL_DIR":
            assert rows[name] == default, (name, rows[name], default)


def test_make_help_lists_every_target() -> None:
    """Every .PHONY target of the Makefile has a line in `make help` (descriptions live next to the targets)."""
    import re
    import subprocess

    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)\n", makefile, re.S | re.M)
    assert phony
    targets = set(phony[1].replace("\\\n", " ").split())
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {name for line in shown.splitlines() for name in line.split("  ")[0].removeprefix("make ").split()}
    assert targets <= listed, targets - listed
    assert len(targets) >= 25
