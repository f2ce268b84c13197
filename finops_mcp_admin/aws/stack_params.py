"""A deploy's parameters, read and checked against the template before AWS is asked anything
(as `rain deploy` does): unknown names, missing required values, AllowedPattern, AllowedValues,
Min/MaxLength and Min/MaxValue; the --parameters-file formats; the IAM capability the template
needs. A value CloudFormation would refuse after minutes of change-set work fails here at once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

# Resource types that make CloudFormation ask for an IAM capability, and the property that names
# the resource (a custom name needs CAPABILITY_NAMED_IAM: CloudFormation docs, "Acknowledging IAM
# resources in CloudFormation templates").
_IAM_NAMES = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
              "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
              "AWS::IAM::InstanceProfile": "InstanceProfileName",
              "AWS::IAM::Policy": None, "AWS::IAM::AccessKey": None, "AWS::IAM::UserToGroupAddition": None}
_SHOWN = 60  # longest value quoted in an error


def template_document(text: str) -> dict[str, Any]:
    """The template as a dict (YAML with the CloudFormation short tags, or JSON)."""
    from cfnlint.decode.cfn_yaml import loads

    try:
        document = loads(text)
    except Exception as exc:  # cfn-lint raises its own and yaml's errors
        raise InvalidInput(f"template is not valid YAML or JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise InvalidInput("template is not a mapping")
    return document


def capabilities(document: Mapping[str, Any]) -> list[str]:
    """Only the capability the template needs: CAPABILITY_NAMED_IAM when an IAM resource has a
    custom name, CAPABILITY_IAM for other IAM resources, none without IAM resources; plus
    CAPABILITY_AUTO_EXPAND for a template with a Transform."""
    needed: list[str] = []
    iam = [r for r in (document.get("Resources") or {}).values()
           if isinstance(r, dict) and r.get("Type") in _IAM_NAMES]
    if any((prop := _IAM_NAMES[r["Type"]]) and prop in (r.get("Properties") or {}) for r in iam):
        needed.append("CAPABILITY_NAMED_IAM")
    elif iam:
        needed.append("CAPABILITY_IAM")
    if document.get("Transform"):
        needed.append("CAPABILITY_AUTO_EXPAND")
    return needed


@dataclass(frozen=True)
class Declared:
    """One parameter as the template declares it."""

    name: str
    spec: Mapping[str, Any]

    @property
    def required(self) -> bool:
        return "Default" not in self.spec

    @property
    def default(self) -> str:
        return _as_text(self.spec.get("Default", ""))

    @property
    def secret(self) -> bool:
        return str(self.spec.get("NoEcho", "")).lower() == "true"


def declared(document: Mapping[str, Any]) -> dict[str, Declared]:
    """The template's parameters by name."""
    specs = document.get("Parameters") or {}
    return {name: Declared(name, spec if isinstance(spec, dict) else {}) for name, spec in specs.items()}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _shown(param: Declared, value: str) -> str:
    if param.secret:
        return f"--param {param.name}=(hidden)"
    quoted = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return f"--param {param.name}={quoted!r}"


def _violation(param: Declared, value: str) -> str | None:
    """Why CloudFormation would refuse this value, or None."""
    spec, kind = param.spec, str(param.spec.get("Type", "String"))
    is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
    items = value.split(",") if is_list and value else [value]
    allowed = [_as_text(v) for v in spec.get("AllowedValues") or []]
    if allowed and any(item not in allowed for item in items):
        return f"must be one of {', '.join(allowed)}"
    pattern = spec.get("AllowedPattern")
    if isinstance(pattern, str) and not all(_full_match(pattern, item) for item in items):
        return str(spec.get("ConstraintDescription") or f"must match {pattern}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"must be at least {spec['MinLength']} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"must be at most {spec['MaxLength']} characters"
    if kind == "Number":
        return _number_violation(spec, value)
    return None


def _full_match(pattern: str, value: str) -> bool:
    # CloudFormation matches the whole value (Java regex). A pattern Python cannot compile is left
    # to CloudFormation rather than refused here.
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return True


def _number_violation(spec: Mapping[str, Any], value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number"
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return f"must be at least {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return f"must be at most {spec['MaxValue']}"
    return None


def check_given(params: Mapping[str, Declared], given: Mapping[str, str]) -> None:
    """InvalidInput naming the first given parameter the template does not declare, or whose value
    breaks its constraints."""
    for name, value in given.items():
        param = params.get(name)
        if param is None:
            raise InvalidInput(f"unknown parameter {name}: the template declares "
                               f"{', '.join(sorted(params)) or 'no parameters'}")
        why = _violation(param, value)
        if why:
            raise InvalidInput(f"invalid {_shown(param, value)}: {why}")


def check_required(params: Mapping[str, Declared], given: Mapping[str, str], previous: set[str],
                   filled_in: set[str]) -> None:
    """InvalidInput naming the first parameter with no Default, no value given and no previous
    value (`filled_in`: parameters the deploy finds by itself, such as S3PrefixListId)."""
    for name, param in params.items():
        if param.required and name not in given and name not in previous and name not in filled_in:
            raise InvalidInput(f"missing required parameter {name} (no default in the template): "
                               f"--param {name}=...")


def parameter_list(params: Mapping[str, Declared], given: Mapping[str, str],
                   previous: set[str]) -> list[dict[str, Any]]:
    """The Parameters of a change set: the given values, UsePreviousValue for the others the stack
    already has (an update keeps them, as `aws cloudformation deploy` does), the template default
    for the rest."""
    out: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
    out += [{"ParameterKey": name, "UsePreviousValue": True}
            for name in params if name not in given and name in previous]
    return out


def parse_params(values: list[str]) -> dict[str, str]:
    """--param K=V, repeated."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"invalid --param {value!r}: use Key=Value")
        out[key] = val
    return out


def read_parameters_file(path: str) -> dict[str, str]:
    """--parameters-file: JSON as the aws CLI writes it (a list of {ParameterKey, ParameterValue}),
    or a JSON or YAML mapping of name to value. An entry with UsePreviousValue is left out (the
    deploy keeps previous values of every parameter not given)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read parameters file {path}: {exc.strerror}") from None
    data = _load(path, text)
    if isinstance(data, list):
        return _from_list(path, data)
    if isinstance(data, dict):
        bad = [k for k, v in data.items() if not isinstance(k, str) or isinstance(v, dict | list)]
        if bad:
            raise InvalidInput(f"parameters file {path}: {bad[0]!s} must map to a single value")
        return {k: _as_text(v) for k, v in data.items() if v is not None}
    raise InvalidInput(f"parameters file {path}: expected a mapping or a list of ParameterKey/ParameterValue")


def _load(path: str, text: str) -> Any:
    """JSON, or YAML (read with cfn-lint's loader, already needed to read templates)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    from cfnlint.decode.cfn_yaml import loads

    try:
        return loads(text)
    except Exception as exc:  # yaml's scanner and parser errors, cfn-lint's own
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"parameters file {path} is neither JSON nor YAML: {first}") from None


def _from_list(path: str, data: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("ParameterKey"), str):
            raise InvalidInput(f"parameters file {path}: entry {i + 1} has no ParameterKey")
        if item.get("UsePreviousValue") is True:
            continue
        if "ParameterValue" not in item:
            raise InvalidInput(f"parameters file {path}: {item['ParameterKey']} has no ParameterValue")
        out[item["ParameterKey"]] = _as_text(item["ParameterValue"])
    return out
