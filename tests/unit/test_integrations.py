"""The shipped engine bodies (integrations/) and the tool that fills them: every file is JSON, every placeholder is
filled or the fill is refused, and the engines' own templates pass through untouched."""

from __future__ import annotations

import json

import pytest

from devkit import ROOT
from splade_tools import integrations

SHIPPED = sorted((ROOT / "integrations").glob("*/*.json"))


def test_every_shipped_body_is_json_with_named_placeholders() -> None:
    """Each file parses; its placeholders are UPPER_CASE names; OpenSearch and Elasticsearch have their files."""
    assert {p.parent.name for p in SHIPPED} == {"opensearch", "elasticsearch"} and len(SHIPPED) >= 15
    for path in SHIPPED:
        body = json.loads(path.read_text())
        assert all(n.isupper() for n in integrations.placeholders(body)), path


def test_fill_refuses_missing_and_unused_values_and_keeps_engine_templates() -> None:
    """A missing value and an unused one are both named; ${parameters.input}, ${credential.secretArn.api_key},
    ${input} and ${api_key} are the engines' and stay; |json makes a JSON value of text, plain stays text."""
    body = {"a": "{{URL}}v1/expand", "n": "{{N|json}}", "s": "{{N}}", "t": "${parameters.input} ${api_key}"}
    filled = integrations.fill(body, {"URL": "https://x/", "N": "4"})
    assert filled == {"a": "https://x/v1/expand", "n": 4, "s": "4", "t": "${parameters.input} ${api_key}"}
    with pytest.raises(ValueError, match=r"missing: \['N'\]; values not used: \['X'\]"):
        integrations.fill(body, {"URL": "u", "X": "1"})
    assert integrations.fill({"q": "{{T|json}}"}, {"T": {"lung": 1.5}}) == {"q": {"lung": 1.5}}


def test_the_command_prints_a_filled_body_and_fails_on_a_gap(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m splade_tools.integrations FILE NAME=value ... prints the body; a missing value exits 2, naming it."""
    path = ROOT / "integrations" / "opensearch" / "query-tokens.json"
    assert integrations.main([str(path), 'QUERY_TOKENS={"e.g": 1.2}']) == 0
    assert json.loads(capsys.readouterr().out) == {
        "query": {"neural_sparse": {"splade": {"query_tokens": {"e.g": 1.2}}}}
    }
    assert integrations.main([str(path)]) == 2
    assert "QUERY_TOKENS" in capsys.readouterr().err
