"""Security monitoring: one Query (event kinds, window, source, grouping, threshold) answered
from local logs or CloudWatch Logs by the same aggregation, and a live watch of either source.

Behind `mcpadmin audit failures | cors | watch` (R23). It sits above both sources: the local
reader (security_events/) and CloudWatch Logs (aws/logs.py), which both read the one schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .aws.logs import check_group_exists, follow_cloudwatch, read_cloudwatch
from .aws.session import AwsOptions, aws_errors, client, guarded
from .errors import CheckFailed, InvalidInput
from .security_events import schema
from .security_events.local import follow_local, read_local
from .security_events.records import ReadStats, Window
from .security_events.schema import Source


@dataclass(frozen=True)
class Query:
    """Which events, from where, and how to summarise them."""

    kinds: frozenset[str]
    window: Window = field(default_factory=Window)
    source: Source = Source.local
    log_files: tuple[str, ...] = ()
    log_group: str | None = None
    aws: AwsOptions = field(default_factory=AwsOptions)
    page_size: int = 10_000
    by: str | None = "ip"  # a schema.GROUP_FIELDS key, or None to list the events
    fail_above: int | None = None  # CheckFailed when more events match


@dataclass
class Group:
    """Events sharing one value of the --by field."""

    key: str
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""

    def add(self, ts: str) -> None:
        """Count one more event at time `ts`."""
        self.count += 1
        if not self.first_seen or ts < self.first_seen:
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts

    def to_public(self) -> dict[str, Any]:
        """The group as an output row."""
        return {"key": self.key, "count": self.count, "first_seen": self.first_seen,
                "last_seen": self.last_seen}


def aggregate(events: Iterable[dict[str, Any]], by: str) -> list[Group]:
    """Counts per value of the field `by` names (ip, reason, key, path), busiest first."""
    field_name = schema.GROUP_FIELDS[by]
    groups: dict[str, Group] = {}
    for event in events:
        key = str(event.get(field_name) if event.get(field_name) is not None else "-")
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key)
        group.add(str(event.get(schema.TS, "")))
    return sorted(groups.values(), key=lambda g: (-g.count, g.key))


@dataclass
class QueryResult:
    """The answer: the events themselves (`by` None) or their groups, and what the read saw."""

    query: Query
    stats: ReadStats
    events: list[dict[str, Any]] | None = None
    groups: list[Group] | None = None

    @property
    def total(self) -> int:
        """How many events matched."""
        return len(self.events) if self.events is not None else sum(g.count for g in self.groups or [])

    def check(self) -> None:
        """CheckFailed when more events matched than the query's threshold allows."""
        limit = self.query.fail_above
        if limit is not None and self.total > limit:
            raise CheckFailed(f"{self.total} events > --fail-above {limit}")


def _log_files(query: Query) -> tuple[str, ...]:
    if not query.log_files:
        raise InvalidInput("--source local needs --log-file PATH")
    return query.log_files


def _log_group(query: Query) -> str:
    if not query.log_group:
        raise InvalidInput("--source cloudwatch needs --log-group NAME")
    return query.log_group


def _read(query: Query, stats: ReadStats) -> Iterator[dict[str, Any]]:
    if query.source is Source.local:
        return read_local(_log_files(query), query.kinds, query.window, stats)
    group = _log_group(query)
    logs = client("logs", query.aws)
    with aws_errors(f"log group {group}"):
        check_group_exists(logs, group)
    return guarded(read_cloudwatch(logs, group, query.kinds, query.window, stats, query.page_size),
                   f"log group {group}")


def run(query: Query) -> QueryResult:
    """Answer a query: every matching event read once, listed or grouped."""
    stats = ReadStats()
    stream = _read(query, stats)
    if query.by is None:
        return QueryResult(query, stats, events=list(stream))
    return QueryResult(query, stats, groups=aggregate(stream, query.by))


def watch(query: Query, poll: float) -> Iterator[tuple[dict[str, Any], int]]:
    """Matching events as they arrive, forever, each with the running count for its client IP
    (local: the first --log-file, read from its start; CloudWatch: from the window's start)."""
    if query.source is Source.local:
        stream = follow_local(_log_files(query)[0], query.kinds, query.window, poll)
    else:
        group = _log_group(query)
        logs = client("logs", query.aws)
        stream = guarded(follow_cloudwatch(logs, group, query.kinds, query.window, poll),
                         f"log group {group}")
    counts: dict[str, int] = {}
    for event in stream:
        ip = str(event.get(schema.CLIENT_IP))
        counts[ip] = counts.get(ip, 0) + 1
        yield event, counts[ip]
