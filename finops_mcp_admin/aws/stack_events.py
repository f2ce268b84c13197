"""The events of one stack operation (one execute or delete), as `rain deploy` shows them: each
resource's events as they arrive, and at the end only this operation's failed resources.

DescribeStackEvents returns the stack's whole history, newest first. An event belongs to the
current operation when it carries the ClientRequestToken we gave the operation; events without a
token (CloudFormation leaves it empty for operations started without one, and moto never sets it)
count when they are newer than the newest event seen before the operation started. The boundary
is that event's id, not a timestamp: the local clock may be skewed against AWS's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Reasons of resources CloudFormation stopped because another one failed: not a cause.
_CANCELLED = ("Resource creation cancelled", "Resource update cancelled")


@dataclass(frozen=True)
class StackEvent:
    """One row of a stack's event history."""

    event_id: str
    timestamp: datetime | None
    logical_id: str
    resource_type: str
    status: str
    reason: str
    token: str | None

    @classmethod
    def from_aws(cls, raw: dict[str, Any]) -> StackEvent:
        return cls(str(raw.get("EventId", "")), raw.get("Timestamp"), str(raw.get("LogicalResourceId", "?")),
                   str(raw.get("ResourceType", "?")), str(raw.get("ResourceStatus", "?")),
                   str(raw.get("ResourceStatusReason") or ""), raw.get("ClientRequestToken") or None)

    @property
    def failed(self) -> bool:
        return self.status.endswith("FAILED")


def newest_event_id(cf: Any, stack: str) -> str | None:
    """The id of the stack's newest event (the boundary of the next operation), None without a
    stack."""
    from botocore.exceptions import ClientError

    try:
        events = cf.describe_stack_events(StackName=stack).get("StackEvents", [])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(events[0]["EventId"]) if events else None


class OperationEvents:
    """The events of one operation on one stack, each handed out once, oldest first."""

    def __init__(self, cf: Any, stack: str, name: str, token: str | None, boundary: str | None) -> None:
        self.cf, self.stack, self.name = cf, stack, name  # stack: its id (a deleted stack has no name)
        self.token, self.boundary = token, boundary
        self.seen: list[StackEvent] = []
        self._ids: set[str] = set()

    def _ours(self, event: StackEvent) -> bool:
        return event.token is None or event.token == self.token

    def poll(self) -> list[StackEvent]:
        """The operation's events not returned before, oldest first."""
        fresh: list[StackEvent] = []
        pages = self.cf.get_paginator("describe_stack_events").paginate(StackName=self.stack)
        for page in pages:
            done = False
            for raw in page.get("StackEvents", []):
                event = StackEvent.from_aws(raw)
                if event.event_id == self.boundary or event.event_id in self._ids:
                    done = True  # everything from here on is older
                    break
                if self._ours(event):
                    fresh.append(event)
            if done:
                break
        fresh.reverse()
        for event in fresh:
            self._ids.add(event.event_id)
        self.seen += fresh
        return fresh

    def failures(self) -> list[StackEvent]:
        """This operation's failed resources, first failure of each, causes before cancellations;
        the stack's own row is left out (its reason only says that resources failed)."""
        first: dict[str, StackEvent] = {}
        for event in self.seen:
            if event.failed and event.logical_id != self.name and event.logical_id not in first:
                first[event.logical_id] = event
        causes = [e for e in first.values() if not e.reason.startswith(_CANCELLED)]
        return causes or list(first.values())
