"""The hardened stack: the shipped template, validate (cfn-lint + our E91xx rules), plan a change
set (or discard it), describe the stack. Executing is aws/operation.py; the whole deploy flow is
aws/deploy.py.

cfn-lint (≈0.9 s to import) and boto3 are imported only inside the functions that use them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, CheckFailed, InvalidInput
from .session import AwsOptions, aws_errors, client

RULES_DIR = Path(__file__).parent / "rules"


def shipped_template() -> str:
    """The template shipped as package data."""
    return resources.files("finops_mcp_admin.templates").joinpath("mcp-server.yaml").read_text()


def read_template(path: str | None) -> tuple[str, str]:
    """(text, label) of the given template, or of the shipped one."""
    if path is None:
        return shipped_template(), "mcp-server.yaml (shipped)"
    try:
        return Path(path).read_text(), path
    except OSError as exc:
        raise InvalidInput(f"cannot read template {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Finding:
    """One problem in a template."""

    rule: str
    severity: str
    resource: str | None
    line: int | None
    message: str

    def to_public(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "resource": self.resource,
                "line": self.line, "message": self.message}


def validate(text: str, regions: list[str] | None = None) -> list[Finding]:
    """cfn-lint's own rules plus ours; errors and warnings (informational findings dropped)."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(text, config=ManualArgs(regions=regions or ["us-east-1"],
                                           append_rules=[str(RULES_DIR)]))
    findings = []
    for m in matches:
        severity = m.rule.severity
        if severity == "informational":
            continue
        path = list(getattr(m, "path", None) or [])
        resource = path[1] if len(path) > 1 and path[0] == "Resources" else None
        findings.append(Finding(m.rule.id, severity, resource, getattr(m, "linenumber", None), m.message))
    return sorted(findings, key=lambda f: (f.line or 0, f.rule))


@dataclass(frozen=True)
class Validation:
    """A template read and validated."""

    text: str
    label: str  # the path, or "mcp-server.yaml (shipped)"
    findings: list[Finding]


def validate_template(path: str | None, region: str | None = None) -> Validation:
    """Read the given (or the shipped) template and validate it for `region` [default: us-east-1]."""
    text, label = read_template(path)
    return Validation(text, label, validate(text, [region] if region else None))


@dataclass(frozen=True)
class Change:
    """One row of a change set."""

    action: str
    logical_id: str
    resource_type: str
    replacement: str | None

    def to_public(self) -> dict[str, Any]:
        return {"action": self.action, "logical_id": self.logical_id,
                "resource_type": self.resource_type, "replacement": self.replacement}


@dataclass
class Plan:
    """A created change set (or the news that there is nothing to change)."""

    stack: str
    change_set: str | None
    changes: list[Change] = field(default_factory=list)
    no_changes: bool = False
    stack_id: str | None = None


def stack_state(cf: Any, stack: str) -> dict[str, Any] | None:
    """The live stack of this name (its description), None when there is none."""
    from botocore.exceptions import ClientError

    try:
        stacks = cf.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return dict(stacks[0]) if stacks and stacks[0]["StackStatus"] != "DELETE_COMPLETE" else None


def previous_values(state: dict[str, Any] | None) -> dict[str, str]:
    """The parameter values the stack was last deployed with (none for a stack never created)."""
    if state is None or state["StackStatus"] in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"):
        return {}
    return {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in state.get("Parameters") or []}


@dataclass(frozen=True)
class ChangeSetRequest:
    """What a change set is made of."""

    stack: str
    template: str
    parameters: list[dict[str, Any]]  # ParameterKey + ParameterValue or UsePreviousValue
    capabilities: list[str]
    create: bool  # CREATE (a new stack) or UPDATE


#: Seconds between two looks at a change set being created (the waiter's default is 30).
CHANGE_SET_POLL = 2.0


def _no_changes(reason: str) -> bool:
    return "didn't contain changes" in reason or "No updates" in reason


def plan(cf: Any, request: ChangeSetRequest, timeout: float = 600.0) -> Plan:
    """Create a change set and wait until it is ready; a Plan with no_changes (and the change set
    deleted) when CloudFormation finds nothing to do. Any other failure deletes the change set."""
    from botocore.exceptions import ClientError, WaiterError

    stack, name = request.stack, f"mcpadmin-{uuid.uuid4().hex[:12]}"
    with aws_errors(f"stack {stack}"):
        try:
            created = cf.create_change_set(
                StackName=stack, ChangeSetName=name, TemplateBody=request.template,
                ChangeSetType="CREATE" if request.create else "UPDATE", Parameters=request.parameters,
                Capabilities=request.capabilities)
        except ClientError as exc:  # UpdateStack's answer (moto gives it to CreateChangeSet too)
            if _no_changes(str(exc)):
                return Plan(stack, None, no_changes=True)
            raise
        try:
            attempts = max(1, int(timeout / CHANGE_SET_POLL))
            cf.get_waiter("change_set_create_complete").wait(
                StackName=stack, ChangeSetName=name,
                WaiterConfig={"Delay": CHANGE_SET_POLL, "MaxAttempts": attempts})
        except WaiterError:
            described = cf.describe_change_set(StackName=stack, ChangeSetName=name)
            if described.get("Status") != "FAILED":
                raise BackendUnavailable(f"change set {name} not ready after {timeout:.0f}s") from None
            reason = str(described.get("StatusReason", ""))
            cf.delete_change_set(StackName=stack, ChangeSetName=name)
            if _no_changes(reason):
                return Plan(stack, None, no_changes=True, stack_id=created.get("StackId"))
            raise CheckFailed(f"change set failed: {reason}") from None
        return Plan(stack, name, changes_of(cf, stack, name), stack_id=created.get("StackId"))


def changes_of(cf: Any, stack: str, change_set: str) -> list[Change]:
    """Every row of a change set (all pages)."""
    changes = []
    for page in cf.get_paginator("describe_change_set").paginate(StackName=stack, ChangeSetName=change_set):
        for item in page.get("Changes", []):
            rc = item.get("ResourceChange", {})
            changes.append(Change(rc.get("Action", "?"), rc.get("LogicalResourceId", "?"),
                                  rc.get("ResourceType", "?"), rc.get("Replacement")))
    return changes


def discard(cf: Any, plan: Plan, created_stack: bool) -> None:
    """Delete the change set, and the empty REVIEW_IN_PROGRESS stack it created."""
    with aws_errors(f"stack {plan.stack}"):
        if plan.change_set:
            cf.delete_change_set(StackName=plan.stack_id or plan.stack, ChangeSetName=plan.change_set)
        if created_stack:
            cf.delete_stack(StackName=plan.stack_id or plan.stack)


def describe(opts: AwsOptions, stack: str) -> dict[str, Any]:
    """The stack's description (NotFound if there is none)."""
    cf = client("cloudformation", opts)
    with aws_errors(f"stack {stack}"):
        return dict(cf.describe_stacks(StackName=stack)["Stacks"][0])

