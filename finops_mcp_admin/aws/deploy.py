"""`stack deploy` as one flow: validate, create a change set, show it, confirm, execute, wait,
report the outputs. What is shown and how the question is asked belong to a DeployView (the CLI
supplies one); the decisions (refuse, stop, fail) are made here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CheckFailed, InvalidInput
from . import cloudformation as cfn
from .session import AwsOptions, client


class DeployView(Protocol):
    """What a deploy shows, and the one question it asks."""

    def findings(self, errors: list[cfn.Finding]) -> None:
        """The validation errors that stop the deploy."""

    def changes(self, plan: cfn.Plan) -> None:
        """The change set, before it is executed."""

    def confirm(self, plan: cfn.Plan) -> bool:
        """Whether to execute the change set (asked only on a terminal without --yes)."""

    def status(self, status: str) -> None:
        """The stack's status, each time it changes."""

    def failures(self, failures: list[tuple[str, str, str]]) -> None:
        """The failed resources (logical id, status, reason) of a failed execution."""

    def outputs(self, outputs: list[dict[str, Any]]) -> None:
        """The stack's outputs after a successful execution."""

    def note(self, text: str) -> None:
        """A message (nothing to change, change set left unexecuted)."""


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy, where, and how much to do without asking."""

    stack: str
    template_path: str | None = None  # None: the shipped template
    params: tuple[str, ...] = ()  # Key=Value
    aws: AwsOptions = field(default_factory=AwsOptions)
    execute: bool = True  # False: create the change set and stop
    assume_yes: bool = False  # --yes
    interactive: bool = False  # stdin is a terminal, so the view may ask


def _validated(request: DeployRequest, view: DeployView) -> tuple[str, dict[str, str]]:
    """(template text, parameters), or CheckFailed when the template has errors."""
    text, label = cfn.read_template(request.template_path)
    params = cfn.parse_params(list(request.params))  # before the slow validation: a typo fails fast
    regions = [request.aws.region] if request.aws.region else None
    errors = [f for f in cfn.validate(text, regions) if f.severity == "error"]
    if errors:
        view.findings(errors)
        raise CheckFailed(f"{label}: {len(errors)} validation error(s): not deploying")
    return text, params


def _approved(request: DeployRequest, plan: cfn.Plan, view: DeployView) -> None:
    """Returns when the change set may run; refuses without --yes off a terminal."""
    if request.assume_yes:
        return
    if not request.interactive:
        raise InvalidInput(f"refusing to execute change set {plan.change_set} without --yes "
                           "when stdin is not a terminal")
    if not view.confirm(plan):
        raise CheckFailed(f"not executed; change set {plan.change_set} left for review")


def deploy(request: DeployRequest, view: DeployView) -> None:
    """Validate, plan, confirm, execute and wait; CheckFailed when the stack does not end complete."""
    text, params = _validated(request, view)
    cf = client("cloudformation", request.aws)
    plan = cfn.plan(cf, request.stack, text, params)
    if plan.no_changes:
        view.note(f"stack {request.stack}: no changes to deploy")
        return
    view.changes(plan)
    if not request.execute:
        view.note(f"change set {plan.change_set} created and not executed")
        return
    _approved(request, plan, view)
    result = cfn.execute(cf, plan, on_status=view.status)
    if not result.ok:
        view.failures(result.failures)
        reason = result.reason or (result.failures[0][2] if result.failures else "see the events above")
        raise CheckFailed(f"stack {request.stack} ended {result.status}: {reason}")
    view.outputs(result.outputs)
