"""The stack operations besides planning: ask before changing anything, execute a change set,
delete a stack, each followed event by event to its end (`stack deploy`, `stack execute`,
`stack delete`). What is shown and how the question is asked belong to a StackView (the CLI
supplies one); the decisions (refuse, stop, fail) are made here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CheckFailed, InvalidInput, NotFound
from . import cloudformation as cfn
from . import operation
from .session import AwsOptions, aws_errors, client
from .stack_events import StackEvent


class StackView(Protocol):
    """What a stack command shows, and the questions it asks."""

    def findings(self, errors: list[cfn.Finding]) -> None:
        """The validation errors that stop a deploy."""

    def changes(self, plan: cfn.Plan) -> None:
        """The change set, before it is executed."""

    def confirm(self, question: str) -> bool:
        """The answer to a yes/no question (asked only on a terminal without --yes)."""

    def event(self, event: StackEvent) -> None:
        """One event of the running operation, as it arrives."""

    def failures(self, failures: list[StackEvent]) -> None:
        """This operation's failed resources, with their reasons."""

    def outputs(self, outputs: list[dict[str, Any]]) -> None:
        """The stack's outputs after a successful execution."""

    def note(self, text: str) -> None:
        """A message (nothing to change, change set left unexecuted)."""

    def warning(self, text: str) -> None:
        """Something deployable but probably not meant (shown even with --quiet)."""


@dataclass(frozen=True)
class Consent:
    """--yes, and whether a person is there to answer (stdin is a terminal)."""

    assume_yes: bool = False
    interactive: bool = False


def approve(consent: Consent, view: StackView, question: str, refused: str, declined: str) -> None:
    """Returns when the change may go ahead. Off a terminal without --yes: InvalidInput (exit 2)
    with `refused`; a "no": CheckFailed (exit 1) with `declined`."""
    if consent.assume_yes:
        return
    if not consent.interactive:
        raise InvalidInput(refused)
    if not view.confirm(question):
        raise CheckFailed(declined)


def _finished(name: str, result: operation.OperationResult, view: StackView) -> operation.OperationResult:
    if not result.ok:
        view.failures(result.failures)
        first = result.failures[0] if result.failures else None
        reason = result.reason or (f"{first.logical_id}: {first.reason}" if first else "see the events above")
        raise CheckFailed(f"stack {name} ended {result.status}: {reason}")
    return result


def run_change_set(cf: Any, plan: cfn.Plan, create: bool, view: StackView) -> None:
    """Execute the change set, show its events, then the outputs; CheckFailed (with this
    operation's failed resources shown) when the stack does not end complete."""
    stack_id, change_set = plan.stack_id or plan.stack, plan.change_set

    def start(token: str) -> None:
        cf.execute_change_set(StackName=stack_id, ChangeSetName=change_set, ClientRequestToken=token)

    with aws_errors(f"stack {plan.stack}"):
        result = operation.follow(cf, stack_id, plan.stack, start,
                                  "stack_create_complete" if create else "stack_update_complete", view.event)
    view.outputs(_finished(plan.stack, result, view).outputs)


def delete_and_wait(cf: Any, state: dict[str, Any], view: StackView) -> None:
    """Delete the stack described by `state` and follow the deletion to its end."""
    stack_id, name = state["StackId"], state["StackName"]

    def start(token: str) -> None:
        cf.delete_stack(StackName=stack_id, ClientRequestToken=token)

    with aws_errors(f"stack {name}"):
        result = operation.follow(cf, stack_id, name, start, "stack_delete_complete", view.event)
    _finished(name, result, view)


@dataclass(frozen=True)
class StackRequest:
    """A stack by name, where, and how much to do without asking."""

    stack: str
    aws: AwsOptions = field(default_factory=AwsOptions)
    consent: Consent = field(default_factory=Consent)
    change_set: str | None = None  # stack execute --change-set


def _live_stack(cf: Any, stack: str) -> dict[str, Any]:
    with aws_errors(f"stack {stack}"):
        state = cfn.stack_state(cf, stack)
    if state is None:
        raise NotFound(f"stack {stack} does not exist")
    return state


def _ready_change_set(cf: Any, stack: str) -> str:
    """The one change set of the stack that can be executed."""
    ready = []
    with aws_errors(f"stack {stack}"):
        for page in cf.get_paginator("list_change_sets").paginate(StackName=stack):
            # moto lists every stack's change sets whatever StackName says: keep this stack's own.
            ready += [s["ChangeSetName"] for s in page.get("Summaries", [])
                      if s.get("StackName") == stack and s.get("ExecutionStatus") == "AVAILABLE"]
    if not ready:
        raise NotFound(f"stack {stack} has no change set ready to execute "
                       f"(make one with: mcpadmin stack deploy {stack} --no-execute)")
    if len(ready) > 1:
        raise InvalidInput(f"stack {stack} has {len(ready)} change sets ready ({', '.join(sorted(ready))}): "
                           "choose one with --change-set")
    return ready[0]


def execute_reviewed(request: StackRequest, view: StackView) -> None:
    """`stack execute`: show a change set made earlier (`deploy --no-execute`), confirm, run it.
    A "no" leaves it in place: it was made for review, not by this command."""
    cf = client("cloudformation", request.aws)
    state = _live_stack(cf, request.stack)
    name = request.change_set or _ready_change_set(cf, request.stack)
    with aws_errors(f"change set {name} of stack {request.stack}"):
        described = cf.describe_change_set(StackName=request.stack, ChangeSetName=name)
        changes = cfn.changes_of(cf, request.stack, name)
    plan = cfn.Plan(request.stack, name, changes, stack_id=state["StackId"])
    if described.get("ExecutionStatus") != "AVAILABLE":
        raise CheckFailed(f"change set {name} cannot be executed: it is {described.get('ExecutionStatus')} "
                          f"({described.get('StatusReason') or described.get('Status')})")
    view.changes(plan)
    approve(request.consent, view, f"Execute change set {name} ({len(plan.changes)} change(s)) on stack "
            f"{request.stack}?",
            refused=f"refusing to execute change set {name} without --yes when stdin is not a terminal",
            declined=f"not executed; change set {name} left for review")
    run_change_set(cf, plan, state["StackStatus"] == "REVIEW_IN_PROGRESS", view)


def delete_stack(request: StackRequest, view: StackView) -> None:
    """`stack delete`: confirm, delete, follow the deletion (retained resources stay)."""
    cf = client("cloudformation", request.aws)
    state = _live_stack(cf, request.stack)
    approve(request.consent, view, f"Delete stack {request.stack} ({state['StackStatus']})?",
            refused=f"refusing to delete stack {request.stack} without --yes when stdin is not a terminal",
            declined=f"not deleted: stack {request.stack} is unchanged")
    delete_and_wait(cf, state, view)
    view.note(f"stack {request.stack} deleted (resources with DeletionPolicy Retain are kept)")
