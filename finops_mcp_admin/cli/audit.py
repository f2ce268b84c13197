"""`mcpadmin audit ...`: the admin audit trail, security-event queries (local logs or
CloudWatch), alarm state, and a live watch."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import load_settings
from ..durations import parse_past, utcnow
from ..errors import CheckFailed, InvalidInput
from ..store import open_store
from . import _render as render
from ._options import (EndpointOpt, NamespaceOpt, OutputOpt, ProfileOpt, QuietOpt, RegionOpt,
                       StoreOpt, aws_client)
from ._render import OutputFormat

app = typer.Typer(no_args_is_help=True, help="Audit trails, security events and alarms.")

EVENT_COLUMNS = [("ts", "TIME"), ("actor", "ACTOR"), ("action", "ACTION"), ("key_id", "KEY ID"),
                 ("name", "NAME"), ("detail", "DETAIL")]
SECURITY_COLUMNS = [("ts", "TIME"), ("event", "EVENT"), ("reason", "REASON"), ("client_ip", "CLIENT IP"),
                    ("key_id", "KEY ID"), ("path", "PATH"), ("origin", "ORIGIN")]
GROUP_COLUMNS = [("key", "KEY"), ("count", "COUNT"), ("first_seen", "FIRST SEEN"), ("last_seen", "LAST SEEN")]


class Source(str, Enum):
    local = "local"
    cloudwatch = "cloudwatch"


class By(str, Enum):
    ip = "ip"
    reason = "reason"
    key = "key"
    path = "path"
    none = "none"


SinceOpt = Annotated[str, typer.Option(help="Window start, inclusive: 30m, 1h, 7d or an ISO time.")]
UntilOpt = Annotated[str | None, typer.Option(help="Window end, exclusive: a duration back from now or an ISO time [default: now].")]
SourceOpt = Annotated[Source, typer.Option(help="local JSON-lines files or CloudWatch Logs.")]
LogFileOpt = Annotated[list[str] | None, typer.Option("--log-file", help="Security-event log (its rotations .1, .2.gz… are read too); repeatable.")]
LogGroupOpt = Annotated[str | None, typer.Option(envvar="MCPADMIN_LOG_GROUP", help="CloudWatch Logs group of the server.")]
ByOpt = Annotated[By, typer.Option(help="Group counts by this field, or none to list the events.")]
FailAboveOpt = Annotated[int | None, typer.Option(help="Exit 1 when more than N events match (for cron).")]
PageSizeOpt = Annotated[int, typer.Option(min=1, max=10_000, help="CloudWatch events per page.")]


@app.command()
def events(
    since: SinceOpt = "24h", store: StoreOpt = None, namespace: NamespaceOpt = None,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """The admin audit trail from the store: who created, rotated, revoked or imported what.

    \b
    Example: mcpadmin audit events --since 7d -o json
    """
    start = parse_past(since, utcnow())
    with open_store(load_settings(store, namespace)) as s:
        trail = s.audit_events(since=start)
    render.rows([e.to_public() for e in trail], EVENT_COLUMNS, output)


def _query(event: str, since: str, until: str | None, source: Source, log_file: list[str] | None,
           log_group: str | None, by: By, event_filter: list[str] | None, fail_above: int | None,
           region: str | None, profile: str | None, endpoint_url: str | None, page_size: int,
           output: OutputFormat, quiet: bool) -> None:
    """The one implementation behind `audit failures` and `audit cors`."""
    from .. import audit as core

    now = utcnow()
    window = core.Window(parse_past(since, now), parse_past(until, now) if until else None)
    kinds = set(event_filter or [event])
    stats = core.ReadStats()
    if source is Source.local:
        if not log_file:
            raise InvalidInput("--source local needs --log-file PATH")
        stream = core.read_local(log_file, kinds, window, stats)
    else:
        if not log_group:
            raise InvalidInput("--source cloudwatch needs --log-group NAME")
        from ..aws.cloudformation import aws_errors

        logs = aws_client("logs", region, profile, endpoint_url)
        with aws_errors(f"log group {log_group}"):
            core.check_group_exists(logs, log_group)
        stream = _guarded(core.read_cloudwatch(logs, log_group, kinds, window, stats, page_size),
                          f"log group {log_group}")
    if by is By.none:
        rows = list(stream)
        total = len(rows)
        if not quiet:
            render.rows(rows, SECURITY_COLUMNS, output)
    else:
        groups = core.aggregate(stream, by.value)
        total = sum(g.count for g in groups)
        if not quiet:
            render.rows([g.to_public() for g in groups], GROUP_COLUMNS, output)
    if stats.malformed:
        render.note(f"warning: {stats.malformed} malformed line(s) skipped", quiet)
    render.note(f"{total} {'/'.join(sorted(kinds))} event(s) from {stats.lines} line(s) in "
                f"{stats.files or stats.pages} {'file' if source is Source.local else 'page'}(s)", quiet)
    if fail_above is not None and total > fail_above:
        raise CheckFailed(f"{total} events > --fail-above {fail_above}")


def _guarded(stream: Any, what: str) -> Any:
    from ..aws.cloudformation import aws_errors

    with aws_errors(what):
        yield from stream


@app.command()
def failures(
    since: SinceOpt = "1h", until: UntilOpt = None, source: SourceOpt = Source.local,
    log_file: LogFileOpt = None, log_group: LogGroupOpt = None, by: ByOpt = By.ip,
    event: Annotated[list[str] | None, typer.Option(help="Event type(s) [default: auth_failure].")] = None,
    fail_above: FailAboveOpt = None, region: RegionOpt = None, profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None, page_size: PageSizeOpt = 10_000,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Authentication failures in a window (since inclusive, until exclusive), grouped.

    \b
    Example: mcpadmin audit failures --since 10m --log-file /var/log/mcp/events.jsonl --fail-above 5 -q || notify
    """
    _query("auth_failure", since, until, source, log_file, log_group, by, event, fail_above,
           region, profile, endpoint_url, page_size, output, quiet)


@app.command()
def cors(
    since: SinceOpt = "1h", until: UntilOpt = None, source: SourceOpt = Source.local,
    log_file: LogFileOpt = None, log_group: LogGroupOpt = None, by: ByOpt = By.ip,
    fail_above: FailAboveOpt = None, region: RegionOpt = None, profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None, page_size: PageSizeOpt = 10_000,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Refused cross-origin requests (cors_rejected, R23.3), like `audit failures`.

    \b
    Example: mcpadmin audit cors --since 24h --source cloudwatch --log-group /mcp/prod --by path
    """
    _query("cors_rejected", since, until, source, log_file, log_group, by, None, fail_above,
           region, profile, endpoint_url, page_size, output, quiet)


@app.command()
def alarms(
    stack: Annotated[str | None, typer.Option(help="Only alarms of this stack (name prefix).")] = None,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """State of the CloudWatch alarms and of the SNS subscriptions they notify (R23.2, R23.5).

    \b
    Example: mcpadmin audit alarms --stack mcp-prod
    """
    from ..aws.cloudformation import aws_errors

    cw = aws_client("cloudwatch", region, profile, endpoint_url)
    sns = aws_client("sns", region, profile, endpoint_url)
    rows, warnings = [], []
    with aws_errors("CloudWatch alarms"):
        kwargs = {"AlarmNamePrefix": f"{stack}-"} if stack else {}
        alarms_found = [a for page in cw.get_paginator("describe_alarms").paginate(**kwargs)
                        for a in page.get("MetricAlarms", [])]
        topics: dict[str, list[dict]] = {}
        for alarm in alarms_found:
            for arn in alarm.get("AlarmActions", []):
                if arn.startswith("arn:aws:sns:") and arn not in topics:
                    topics[arn] = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
    for alarm in alarms_found:
        subs = [s for arn in alarm.get("AlarmActions", []) for s in topics.get(arn, [])]
        confirmed = [s for s in subs if s.get("SubscriptionArn", "").startswith("arn:")]
        rows.append({"alarm": alarm["AlarmName"], "state": alarm.get("StateValue"),
                     "metric": f"{alarm.get('Namespace')}/{alarm.get('MetricName')}",
                     "threshold": alarm.get("Threshold"), "reason": alarm.get("StateReason"),
                     "subscriptions": f"{len(confirmed)} confirmed / {len(subs)}"})
        if not alarm.get("AlarmActions"):
            warnings.append(f"alarm {alarm['AlarmName']} notifies nobody (no alarm actions)")
        elif not confirmed:
            warnings.append(f"alarm {alarm['AlarmName']}: its SNS topic has no confirmed subscription; "
                            "nobody will be alerted (R23.5)")
    render.rows(rows, [("alarm", "ALARM"), ("state", "STATE"), ("metric", "METRIC"),
                       ("threshold", "THRESHOLD"), ("subscriptions", "SUBSCRIPTIONS")], output)
    for line in warnings:
        render.note(f"warning: {line}")
    if not alarms_found:
        raise CheckFailed(f"no CloudWatch alarms{' for stack ' + stack if stack else ''}")


@app.command()
def watch(
    since: Annotated[str, typer.Option(help="Also show events this far back before following.")] = "5m",
    source: SourceOpt = Source.local, log_file: Annotated[str | None, typer.Option(help="Security-event log to follow.")] = None,
    log_group: LogGroupOpt = None, event: Annotated[list[str] | None, typer.Option(help="Event type(s) [default: auth_failure].")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
) -> None:
    """Follow the log and print failures as they happen, with a running count per IP (Ctrl-C ends).

    \b
    Example: mcpadmin audit watch --log-file /var/log/mcp/events.jsonl
    """
    from .. import audit as core

    kinds = set(event or ["auth_failure"])
    start = parse_past(since, utcnow())
    counts: dict[str, int] = {}

    def show(item: dict) -> None:
        ip = str(item.get("client_ip"))
        counts[ip] = counts.get(ip, 0) + 1
        sys.stdout.write(f"{item.get('ts')}  {item.get('event')}  {item.get('reason')}  ip={ip} "
                         f"(#{counts[ip]})  key={item.get('key_id') or '-'}  {item.get('path')}\n")
        sys.stdout.flush()

    window = core.Window(start)
    if source is Source.local:
        if not log_file:
            raise InvalidInput("--source local needs --log-file PATH")
        stats = core.ReadStats()
        for line in core.Follower(Path(log_file), poll).lines(from_start=True):
            item = core.parse_line(line, stats) if line.strip() else None
            if item and item.get("event") in kinds and window.contains(str(item.get("ts", ""))):
                show(item)
    else:
        if not log_group:
            raise InvalidInput("--source cloudwatch needs --log-group NAME")
        import time as _time

        from ..aws.cloudformation import aws_errors

        from datetime import timedelta

        logs = aws_client("logs", region, profile, endpoint_url)
        seen: dict[str, str] = {}  # event identity -> ts, kept only for the overlap
        overlap = timedelta(seconds=30)  # late-arriving events: re-read a short tail each poll
        with aws_errors(f"log group {log_group}"):
            core.check_group_exists(logs, log_group)
            while True:
                newest = window.since
                for item in core.read_cloudwatch(logs, log_group, kinds, window, core.ReadStats()):
                    ident = f"{item.get('ts')}|{item.get('client_ip')}|{item.get('correlation_id')}"
                    if ident not in seen:
                        seen[ident] = str(item.get("ts"))
                        show(item)
                    when = core.parse_time(str(item.get("ts", "")))
                    if when is not None and (newest is None or when > newest):
                        newest = when
                if newest is not None:
                    window = core.Window(newest - overlap)
                    floor = core.canonical(newest - overlap)
                    seen = {k: ts for k, ts in seen.items() if ts >= floor}
                _time.sleep(poll)
