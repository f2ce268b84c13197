"""Run one stack operation (execute a change set, delete a stack) and follow it to its end.

botocore's waiter decides when the operation is over (its acceptors know every terminal status);
it runs in a daemon thread (which never keeps the process alive after an error here) while this
thread hands each new event of the operation to the caller, so progress shows per resource
instead of a silent wait. boto3 clients are thread-safe."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendUnavailable
from .stack_events import OperationEvents, StackEvent, newest_event_id

#: Seconds between two looks at the stack (the waiter's Delay and the event poll).
POLL_SECONDS = 5.0
#: The longest an operation is followed (CloudFormation's own default timeout is none).
TIMEOUT_SECONDS = 3 * 3600.0
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"}


@dataclass(frozen=True)
class OperationResult:
    """How an operation ended."""

    status: str
    reason: str | None
    failures: list[StackEvent] = field(default_factory=list)
    outputs: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in TERMINAL_OK


def new_token() -> str:
    """A ClientRequestToken: CloudFormation stamps it on every event of the operation."""
    return f"mcpadmin-{uuid.uuid4()}"


def _wait(cf: Any, waiter_name: str, stack_id: str) -> None:
    from botocore.exceptions import WaiterError

    waiter = cf.get_waiter(waiter_name)
    attempts = max(1, int(TIMEOUT_SECONDS / POLL_SECONDS))
    try:
        waiter.wait(StackName=stack_id, WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": attempts})
    except WaiterError as exc:
        if "Max attempts exceeded" in str(exc):
            raise BackendUnavailable(f"stack {stack_id} not finished after {TIMEOUT_SECONDS:.0f}s") from None
        # A failure acceptor matched (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE, ...): the final
        # status is read below.


def follow(cf: Any, stack_id: str, name: str, start: Callable[[str], None], waiter_name: str,
           on_event: Callable[[StackEvent], None]) -> OperationResult:
    """Start the operation (start(token)), show its events as they come, wait for its end."""
    boundary = newest_event_id(cf, stack_id)
    token = new_token()
    start(token)
    events = OperationEvents(cf, stack_id, name, token, boundary)
    outcome: list[BaseException | None] = []

    def wait() -> None:
        try:
            _wait(cf, waiter_name, stack_id)
            outcome.append(None)
        except BaseException as exc:  # handed to the main thread, raised there
            outcome.append(exc)

    waiter = threading.Thread(target=wait, name="cfn-waiter", daemon=True)
    waiter.start()
    while waiter.is_alive():
        for event in events.poll():
            on_event(event)
        waiter.join(POLL_SECONDS)
    if outcome and outcome[0] is not None:
        raise outcome[0]
    for event in events.poll():
        on_event(event)
    described = cf.describe_stacks(StackName=stack_id)["Stacks"][0]
    status = str(described["StackStatus"])
    failures = [] if status in TERMINAL_OK else events.failures()
    return OperationResult(status, described.get("StackStatusReason"), failures,
                           described.get("Outputs", []))
