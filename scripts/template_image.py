"""template.yaml as a container-image deployment, for models past the zip (``make image`` builds the image):

    python scripts/template_image.py > build/template-image.yaml

The same two functions, events, roles, alarms and parameters, with ``PackageType: Image`` and ``ImageUri`` (a new
parameter: the image pushed to ECR, or a local tag for ``sam local``) instead of ``CodeUri``/``Handler``/
``Runtime`` and the ``makefile`` build. Lambda SnapStart does not support container images, so the functions lose
their ``SnapStart`` property and a rule refuses ``EnableSnapStart=true`` before anything is created. The output is
JSON (CloudFormation and SAM read it as YAML too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
IMAGE_URI = {
    "Type": "String",
    "AllowedPattern": r"^\S+$",
    "Description": (
        "The function's container image: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> as pushed "
        "after `make image` (docs/deploy.md), or a local tag for sam local. Its architecture must be Architecture's."
    ),
}
NO_SNAPSTART_RULE = {
    "RuleCondition": {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]},
    "Assertions": [
        {
            "Assert": {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "false"]},
            "AssertDescription": (
                "Lambda SnapStart does not support container images: deploy the zip (template.yaml) for SnapStart, "
                "or set EnableSnapStart=false."
            ),
        }
    ],
}


def source() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


def image_template(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (parsed template.yaml) with every function packaged as the ``ImageUri`` image."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    out["Description"] = out["Description"].replace("model baked into the zip", "model baked into a container image")
    default_handler = out["Globals"]["Function"].get("Handler")
    for key in ("CodeUri", "Handler", "Runtime"):
        out["Globals"]["Function"].pop(key, None)
    out["Parameters"]["ImageUri"] = IMAGE_URI
    out["Parameters"]["EnableSnapStart"]["Description"] = (
        "Must stay false here: Lambda SnapStart does not support container images (template.yaml, the zip, has it)."
    )
    out.setdefault("Rules", {})["SnapStartNeedsTheZip"] = NO_SNAPSTART_RULE
    for resource in out["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        resource.get("Metadata", {}).pop("BuildMethod", None)
        props = resource["Properties"]
        props.pop("SnapStart", None)
        props["PackageType"] = "Image"
        props["ImageUri"] = {"Ref": "ImageUri"}
        props["ImageConfig"] = {"Command": [props.pop("Handler", default_handler)]}  # the preflight has its own
    if '"SnapStartOn"' not in json.dumps(out["Resources"]):
        out["Conditions"].pop("SnapStartOn", None)
    return out


def main() -> int:
    sys.stdout.write(json.dumps(image_template(source()), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
