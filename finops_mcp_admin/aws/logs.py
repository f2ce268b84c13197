"""Security events from CloudWatch Logs: read a window (every page, throttling retried with
back-off), follow a group live, and check that a group exists.

The JSON filter pattern selects events server-side (fast on AWS); the records are checked
client-side too, since some back-ends ignore filter patterns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Set
from datetime import timedelta
from typing import Any

from ..errors import NotFound
from ..security_events import schema
from ..security_events.records import ReadStats, Window, parse_line
from .session import error_code

#: Late-arriving events: `follow` re-reads this much of the past on every poll.
FOLLOW_OVERLAP = timedelta(seconds=30)


def check_group_exists(logs: Any, group: str) -> None:
    """NotFound unless the log group exists (a clear error before paging through nothing)."""
    page = logs.describe_log_groups(logGroupNamePrefix=group)
    if not any(g.get("logGroupName") == group for g in page.get("logGroups", [])):
        raise NotFound(f"no log group {group}")


def _filter_args(group: str, kinds: Set[str], window: Window, page_size: int) -> dict[str, Any]:
    pattern = " || ".join(f'$.{schema.EVENT} = "{kind}"' for kind in sorted(kinds))
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": "{ " + pattern + " }",
                              "limit": page_size}
    if window.since:
        kwargs["startTime"] = int(window.since.timestamp() * 1000)
    if window.until:
        kwargs["endTime"] = int(window.until.timestamp() * 1000)
    return kwargs


def _page(logs: Any, group: str, kwargs: dict[str, Any], sleep: Callable[[float], None],
          max_retries: int) -> dict[str, Any]:
    """One FilterLogEvents page; throttling retried with exponential back-off."""
    from botocore.exceptions import ClientError

    attempt = 0
    while True:
        try:
            return dict(logs.filter_log_events(**kwargs))
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                raise NotFound(f"no log group {group}") from None
            if code in ("ThrottlingException", "Throttling") and attempt < max_retries:
                sleep(min(0.2 * 2 ** attempt, 5.0))
                attempt += 1
                continue
            raise


def read_cloudwatch(logs: Any, group: str, kinds: Set[str], window: Window, stats: ReadStats,
                    page_size: int = 10_000, sleep: Callable[[float], None] = time.sleep,
                    max_retries: int = 6) -> Iterator[dict[str, Any]]:
    """Matching events from a CloudWatch Logs group, every page followed."""
    kwargs = _filter_args(group, kinds, window, page_size)
    token = None
    while True:
        page = _page(logs, group, {**kwargs, **({"nextToken": token} if token else {})}, sleep, max_retries)
        stats.pages += 1
        for item in page.get("events", []):
            stats.lines += 1
            event = parse_line(item.get("message", ""), stats)
            if event is not None and window.accepts(event, kinds):
                stats.matched += 1
                yield event
        new_token = page.get("nextToken")
        if not new_token or new_token == token:
            return
        token = new_token


def follow_cloudwatch(logs: Any, group: str, kinds: Set[str], window: Window,
                      poll: float) -> Iterator[dict[str, Any]]:
    """New matching events of a log group as they arrive, forever: each poll re-reads from the
    newest event seen minus FOLLOW_OVERLAP, and events already shown are skipped."""
    check_group_exists(logs, group)
    seen: dict[str, str] = {}  # event identity -> ts, kept only for the overlap
    while True:
        newest = window.since
        for event in read_cloudwatch(logs, group, kinds, window, ReadStats()):
            ident = f"{event.get(schema.TS)}|{event.get(schema.CLIENT_IP)}|{event.get(schema.CORRELATION_ID)}"
            if ident not in seen:
                seen[ident] = str(event.get(schema.TS))
                yield event
            when = schema.parse_ts(str(event.get(schema.TS, "")))
            if when is not None and (newest is None or when > newest):
                newest = when
        if newest is not None:
            window = Window(newest - FOLLOW_OVERLAP)
            floor = schema.format_ts(newest - FOLLOW_OVERLAP)
            seen = {k: ts for k, ts in seen.items() if ts >= floor}
        time.sleep(poll)
