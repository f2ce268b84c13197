"""The hardened stack: the shipped template, validate (cfn-lint + our E91xx rules), plan a change
set, execute it, describe the stack. The whole deploy flow is aws/deploy.py.

cfn-lint (≈0.9 s to import) and boto3 are imported only inside the functions that use them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, CheckFailed, InvalidInput
from .session import AwsOptions, aws_errors, client

RULES_DIR = Path(__file__).parent / "rules"
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_BAD = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "DELETE_FAILED", "UPDATE_FAILED",
                "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED"}


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


def stack_exists(cf: Any, stack: str) -> bool:
    """True when a live (not deleted) stack has this name."""
    from botocore.exceptions import ClientError

    try:
        stacks = cf.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] not in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS")


def parse_params(values: list[str]) -> dict[str, str]:
    """--param K=V, repeated."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"invalid --param {value!r}: use Key=Value")
        out[key] = val
    return out


def plan(cf: Any, stack: str, template: str, params: dict[str, str],
         poll: float = 1.0, timeout: float = 300.0) -> Plan:
    """Create a change set and wait until it is ready (or empty)."""
    with aws_errors(f"stack {stack}"):
        exists = stack_exists(cf, stack)
        name = f"mcpadmin-{uuid.uuid4().hex[:12]}"
        cf.create_change_set(
            StackName=stack, ChangeSetName=name, TemplateBody=template,
            ChangeSetType="UPDATE" if exists else "CREATE",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        deadline = time.monotonic() + timeout
        while True:
            described = cf.describe_change_set(StackName=stack, ChangeSetName=name)
            status = described.get("Status")
            if status == "CREATE_COMPLETE":
                break
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if "didn't contain changes" in reason or "No updates" in reason:
                    cf.delete_change_set(StackName=stack, ChangeSetName=name)
                    return Plan(stack, None, no_changes=True)
                raise CheckFailed(f"change set failed: {reason}")
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"change set {name} not ready after {timeout:.0f}s")
            time.sleep(poll)
        changes = []
        for item in described.get("Changes", []):
            rc = item.get("ResourceChange", {})
            changes.append(Change(rc.get("Action", "?"), rc.get("LogicalResourceId", "?"),
                                  rc.get("ResourceType", "?"), rc.get("Replacement")))
        if not changes and exists:
            cf.delete_change_set(StackName=stack, ChangeSetName=name)
            return Plan(stack, None, no_changes=True)
        return Plan(stack, name, changes)


@dataclass(frozen=True)
class DeployResult:
    """How an execution ended."""

    status: str
    reason: str | None
    failures: list[tuple[str, str, str]]  # (logical id, status, reason)
    outputs: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return self.status in TERMINAL_OK


def execute(cf: Any, deploy_plan: Plan, on_status: Callable[[str], None] | None = None,
            poll: float = 2.0, timeout: float = 3600.0) -> DeployResult:
    """Execute the change set and wait for a terminal stack status."""
    stack = deploy_plan.stack
    with aws_errors(f"stack {stack}"):
        cf.execute_change_set(StackName=stack, ChangeSetName=deploy_plan.change_set)
        deadline, last = time.monotonic() + timeout, None
        while True:
            described = cf.describe_stacks(StackName=stack)["Stacks"][0]
            status = described["StackStatus"]
            if status != last and on_status is not None:
                on_status(status)
            last = status
            if status in TERMINAL_OK or status in TERMINAL_BAD:
                break
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"stack {stack} still {status} after {timeout:.0f}s")
            time.sleep(poll)
        failures = []
        if status not in TERMINAL_OK:
            for event in cf.describe_stack_events(StackName=stack).get("StackEvents", []):
                if event.get("ResourceStatus", "").endswith("FAILED"):
                    failures.append((event.get("LogicalResourceId", "?"), event["ResourceStatus"],
                                     event.get("ResourceStatusReason", "")))
        return DeployResult(status, described.get("StackStatusReason"), failures,
                            described.get("Outputs", []))


def describe(opts: AwsOptions, stack: str) -> dict[str, Any]:
    """The stack's description (NotFound if there is none)."""
    cf = client("cloudformation", opts)
    with aws_errors(f"stack {stack}"):
        return dict(cf.describe_stacks(StackName=stack)["Stacks"][0])

