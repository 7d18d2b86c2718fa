"""What ``sam deploy`` hands CloudFormation: template.yaml after the SAM transform (``samtranslator``, as the
``AWS::Serverless-2016-10-31`` transform runs it), for one set of parameter values, then evaluated as CloudFormation
would for one stack: parameters, pseudo parameters, conditions and intrinsic functions resolved, resources whose
condition is false dropped, and the template's ``Rules`` checked.

    stack = Deployed({"EnableSnapStart": "true"}, Stack(name="Splade-Prod"))
    stack.resources["ApiFunctionVersion..."]["Properties"]["Description"]

Learned translating it (samtranslator 1.115): the translator fills in only ``AWS::Region`` and ``AWS::Partition``
(``AWS::StackName`` and ``AWS::StackId`` are substituted here); parameter values arrive as strings, as CloudFormation
passes them (YAML defaults are ints, which ``Fn::Sub`` rejects); ``CodeUri`` must be the S3 URI ``sam package``
writes. A resource's ``Ref`` / ``GetAtt`` that only exists after creation stays a placeholder ``<Name.Attr>``.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ROOT

TEMPLATE = ROOT / "template.yaml"
NO_VALUE = object()


@dataclass(frozen=True)
class Stack:
    """The stack a template is deployed as: the pseudo parameters CloudFormation supplies."""

    name: str = "splade-expander"
    region: str = "us-east-1"
    account: str = "123456789012"
    uuid: str = "51af3dc0-da77-11e4-872e-1234567db123"

    @property
    def stack_id(self) -> str:
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.name}/{self.uuid}"

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.name,
            "AWS::StackId": self.stack_id,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }


def source_template(image: bool = False) -> dict[str, Any]:
    """template.yaml parsed (``image``: as scripts/template_image.py rewrites it for a container image)."""
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    if image:
        from scripts.template_image import image_template

        return image_template(parsed)
    return parsed


def parameter_values(overrides: dict[str, str] | None = None, template: dict[str, Any] | None = None) -> dict[str, str]:
    """Every parameter's value as CloudFormation passes it (a string): its default, or the override. Values are
    checked against the parameter's constraints, as CloudFormation does before it runs the transform."""
    params = (template or source_template())["Parameters"]
    unknown = set(overrides or {}) - set(params)
    if unknown:
        raise KeyError(f"no such parameters: {sorted(unknown)}")
    values = {name: str(spec.get("Default", "")) for name, spec in params.items()}
    values.update(overrides or {})
    for name, value in values.items():
        _check_parameter(name, params[name], value)
    return values


def _check_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        raise ValueError(f"parameter {name}={value!r} is not one of {allowed}")
    if spec["Type"] == "Number":
        number = float(value)
        if ("MinValue" in spec and number < spec["MinValue"]) or ("MaxValue" in spec and number > spec["MaxValue"]):
            raise ValueError(f"parameter {name}={value} is outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]")
    if "MaxLength" in spec and len(value) > spec["MaxLength"]:
        raise ValueError(f"parameter {name} is longer than {spec['MaxLength']} characters")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise ValueError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")


class _ManagedPolicies:
    """The managed policy names SAM may attach, as the translator's policy loader would fetch them from IAM."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
            "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        }


def translate(values: dict[str, str], stack: Stack, code_uri: str, image: bool = False) -> dict[str, Any]:
    """template.yaml through the SAM transform, with ``values`` and the code packaged at ``code_uri`` (``image``:
    the container-image template, whose code is the ``ImageUri`` parameter)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = source_template(image)
    if not image:
        template["Globals"]["Function"]["CodeUri"] = code_uri  # what `sam package` writes
    given = {**values, "AWS::Region": stack.region, "AWS::Partition": "aws"}
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=stack.region))
    out: dict[str, Any] = translator.translate(template, given, get_managed_policy_map=_ManagedPolicies().load)
    return out


class Deployed:
    """template.yaml as CloudFormation would create it for ``overrides`` (parameter name -> string value)."""

    def __init__(
        self, overrides: dict[str, str] | None = None, stack: Stack | None = None, code_uri: str = "",
        image: bool = False,
    ) -> None:  # fmt: skip
        self.stack = stack or Stack()
        if image:  # an ImageUri as `docker push` to ECR gives it, unless the test names one
            overrides = {
                "ImageUri": f"{self.stack.account}.dkr.ecr.{self.stack.region}.amazonaws.com/splade:1",
                **(overrides or {}),
            }
        self.values = parameter_values(overrides, source_template(image))
        uri = code_uri or "s3://sam-artifacts/0123456789abcdef"
        self.template = translate(self.values, self.stack, uri, image)
        raw = self.template["Resources"]
        self._names = {**self.values, **self.stack.pseudo()}
        self._raw = raw
        self.conditions: dict[str, bool] = {}
        for name in self.template.get("Conditions", {}):
            self._condition(name)
        self.resources: dict[str, Any] = {}
        for name, resource in raw.items():
            if "Condition" in resource and not self.conditions[resource["Condition"]]:
                continue
            self.resources[name] = {k: v for k, v in resource.items() if k != "Properties"}
            self.resources[name]["Properties"] = self.resolve(resource.get("Properties", {}))

    # -- evaluation -------------------------------------------------------------------------------------------
    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def physical(self, logical: str) -> str:
        """What ``Ref`` of a resource gives: a bucket's explicit name, else a placeholder ``<Logical>``."""
        resource = self._raw[logical]
        if resource["Type"] == "AWS::S3::Bucket" and "BucketName" in resource.get("Properties", {}):
            return str(self.resolve(resource["Properties"]["BucketName"]))
        return f"<{logical}>"

    def get_att(self, logical: str, attribute: str) -> str:
        resource = self._raw[logical]
        if resource["Type"] == "AWS::S3::Bucket" and attribute == "Arn" and "BucketName" in resource["Properties"]:
            return f"arn:aws:s3:::{self.physical(logical)}"
        return f"<{logical}.{attribute}>"

    def _lookup(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        if name in self._raw:
            return self.physical(name)
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self.get_att(logical, attribute)
        raise KeyError(f"unresolvable reference {name!r}")

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated; ``AWS::NoValue`` removes its key or item."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self._lookup(arg)
            if key == "Condition":
                return self._condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def _function(self, name: str, arg: Any) -> Any:
        if name == "If":
            condition, yes, no = arg
            return self.resolve(yes if self._condition(condition) else no)
        if name == "GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(logical, attribute)
        if name == "Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if key.startswith("!"):
                    return "${" + key[1:] + "}"
                return str(local[key] if key in local else self._lookup(key))

            return re.sub(r"\$\{([^}]+)\}", sub, text)
        args = self.resolve(arg)
        if name == "Join":
            return args[0].join(str(a) for a in args[1])
        if name == "Split":
            return args[1].split(args[0])
        if name == "Select":
            return args[1][int(args[0])]
        if name == "FindInMap":
            return self.template["Mappings"][str(args[0])][str(args[1])][args[2]]
        if name == "Equals":
            return str(args[0]) == str(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "Contains":
            return str(args[1]) in [str(a) for a in args[0]]
        raise NotImplementedError(f"Fn::{name}")

    # -- views ------------------------------------------------------------------------------------------------
    def rule_failures(self) -> list[str]:
        """The AssertDescription of every ``Rules`` assertion that fails for these values (CloudFormation then
        refuses the stack before creating anything)."""
        failures = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            failures += [a["AssertDescription"] for a in rule["Assertions"] if not self.resolve(a["Assert"])]
        return failures

    def of_type(self, type_name: str) -> dict[str, Any]:
        return {name: r for name, r in self.resources.items() if r["Type"] == type_name}

    def version(self, function: str = "ApiFunction") -> tuple[str, str]:
        """The logical id and resolved description of the function's published version."""
        ((logical, resource),) = (
            (n, r) for n, r in self.of_type("AWS::Lambda::Version").items() if n.startswith(function + "Version")
        )
        return logical, resource["Properties"].get("Description", "")

    def statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of a role's inline policies, resolved."""
        props = self.resources[role]["Properties"]
        return [s for policy in props.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]

    def write(self, path: Path) -> Path:
        """The translated template as JSON, with these values as the parameters' defaults (for cfn-lint)."""
        template = copy.deepcopy(self.template)
        for name, value in self.values.items():
            spec = template["Parameters"][name]
            spec["Default"] = int(value) if spec["Type"] == "Number" else value
        path.write_text(json.dumps(template, indent=1))
        return path


def lint(paths: list[Path]) -> dict[str, list[str]]:
    """cfn-lint's findings per file, from one cfn-lint run over all of them."""
    # W1028 (an unreachable Fn::If branch): SAM writes an HttpApi event of a conditional function (the CORS
    # preflight route) into the API body as Fn::If on the function's condition nested in another on the same
    # condition; the inner else-branch is SAM's, unreachable by construction, and absent from template.yaml.
    cmd = [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", "--ignore-checks", "W1028", "--",
           *map(str, paths)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode and not result.stdout.strip():
        raise RuntimeError(f"cfn-lint failed: {result.stderr.strip()}")
    findings: dict[str, list[str]] = {str(p): [] for p in paths}
    for line in result.stdout.splitlines():
        if line.strip():
            findings[line.split(":", 1)[0]].append(line)
    return findings
