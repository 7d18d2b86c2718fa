"""SnapStart: a template parameter turns it on for the API function's published versions behind the `live` alias,
which the HTTP API and the Function URL invoke; a before-snapshot hook warms the model, registered with the real
`snapshot_restore_py` when the runtime provides it and skipped when it does not."""

from __future__ import annotations

import subprocess
import sys

from devkit import ROOT
from devkit.aws import load_template
from handler import runtime
from scripts import template_variant


def test_the_parameter_switches_snapstart_on_published_versions_of_the_alias() -> None:
    """EnableSnapStart (default false) drives SnapStart.ApplyOn; the function publishes to `live`; the Function
    URL and its public permission target the alias."""
    template = load_template()
    assert template["Parameters"]["EnableSnapStart"]["Default"] == "false"
    assert template["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    api = template["Resources"]["ApiFunction"]["Properties"]
    assert api["AutoPublishAlias"] == "live"
    assert api["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}}
    url = template["Resources"]["ApiFunctionUrl"]
    assert url["Properties"]["Qualifier"] == "live" and url["DependsOn"] == "ApiFunctionAliaslive"
    assert template["Resources"]["ApiFunctionUrlPublicPermission"]["Properties"]["FunctionName"] == {
        "Ref": "ApiFunction.Alias"
    }
    on = template_variant.variant((ROOT / "template.yaml").read_text(), {"EnableSnapStart": "true"})
    assert 'EnableSnapStart:\n    Type: String\n    Default: "true"' in on


def test_the_before_snapshot_hook_is_registered_and_warms_the_model() -> None:
    """In a fresh process with snapshot_restore_py installed, importing the runtime registers one before-snapshot
    hook, and running it as Lambda would expands a text."""
    code = (
        "import snapshot_restore_py as s, handler.runtime as r\n"
        "hooks = s.get_before_snapshot()\n"
        "assert r.snapshot_hooks and len(hooks) == 1 and hooks[0][0] == r.expander.warm, hooks\n"
        "for f, a, k in hooks: f(*a, **k)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "ok"  # after the init's "model loaded" log line


def test_without_the_runtime_module_nothing_is_registered(monkeypatch) -> None:
    """The offline images and local runs lack snapshot_restore_py: the import fails quietly, no hook."""
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert runtime._register_snapshot_hooks() is False
