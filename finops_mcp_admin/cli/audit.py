"""`mcpadmin audit ...`: the admin audit trail, security-event queries (local logs or
CloudWatch), alarm state, and a live watch."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from ..durations import parse_past, utcnow
from ..security_events import schema
from ..security_events.schema import Source
from . import _render as render
from ._options import (
    EndpointOpt,
    NamespaceOpt,
    OutputOpt,
    ProfileOpt,
    QuietOpt,
    RegionOpt,
    ServerNameOpt,
    StoreOpt,
    aws_options,
)
from ._render import OutputFormat
from ._store import command_settings, command_store

if TYPE_CHECKING:
    from ..aws.session import AwsOptions
    from ..monitoring import QueryResult

app = typer.Typer(no_args_is_help=True, help="Audit trails, security events and alarms.")

EVENT_COLUMNS = [("ts", "TIME"), ("actor", "ACTOR"), ("action", "ACTION"), ("key_id", "KEY ID"),
                 ("name", "NAME"), ("detail", "DETAIL")]
SECURITY_COLUMNS = [(name, schema.TITLES[name]) for name in schema.LISTED]
ACCESS_COLUMNS = [(schema.TS, "TIME"), (schema.KEY_ID, "KEY ID"), (schema.KEY_NAME, "KEY NAME"),
                  (schema.RPC_METHOD, "MCP METHOD"), (schema.TOOL, "TOOL"), (schema.OUTCOME, "OUTCOME"),
                  (schema.DURATION_MS, "MS"), (schema.CLIENT_IP, "CLIENT IP")]
GROUP_COLUMNS = [("key", "KEY"), ("count", "COUNT"), ("first_seen", "FIRST SEEN"), ("last_seen", "LAST SEEN")]


class By(StrEnum):
    """Values of --by: a schema.GROUP_FIELDS key, or none."""

    ip = "ip"
    reason = "reason"
    key = "key"
    path = "path"
    none = "none"


class AccessBy(StrEnum):
    """Values of `audit access --by`."""

    key = "key"
    tool = "tool"
    ip = "ip"
    none = "none"


SinceOpt = Annotated[str, typer.Option(help="Window start, inclusive: 30m, 1h, 7d or an ISO time.")]
UntilOpt = Annotated[str | None, typer.Option(
    help="Window end, exclusive: a duration back from now or an ISO time [default: now].")]
SourceOpt = Annotated[Source | None, typer.Option(
    help="local JSON-lines files or CloudWatch Logs [default: whichever of log file and log group "
         "is configured; exit 5 if neither].")]
LogFileOpt = Annotated[list[str] | None, typer.Option(
    "--log-file", help="Security-event log (its rotations .1, .2.gz… are read too); repeatable "
                       "[default: MCPADMIN_LOG_FILE, log_file in the config file].")]
LogGroupOpt = Annotated[str | None, typer.Option(
    help="CloudWatch Logs group of the server [default: MCPADMIN_LOG_GROUP, log_group in the "
         "config file].")]
ByOpt = Annotated[By, typer.Option(help="Group counts by this field, or none to list the events.")]
FailAboveOpt = Annotated[int | None, typer.Option(help="Exit 1 when more than N events match (for cron).")]
PageSizeOpt = Annotated[int, typer.Option(min=1, max=10_000, help="CloudWatch events per page.")]
def _event_names() -> list[str]:
    return sorted(schema.EVENTS)  # completed by the static completion scripts


EventOpt = Annotated[list[str] | None, typer.Option(
    autocompletion=_event_names, help="Event type(s) [default: auth_failure].")]


@app.command()
def events(
    since: SinceOpt = "24h", store: StoreOpt = None, namespace: NamespaceOpt = None,
    server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """The admin audit trail from the store: who created, rotated, revoked or imported what.

    \b
    Example: mcpadmin audit events --since 7d -o json
    """
    start = parse_past(since, utcnow())
    with command_store(store, namespace, server_name, create=False) as (s, _):
        trail = s.audit_events(since=start)
    render.rows([e.to_public() for e in trail], EVENT_COLUMNS, output, quiet_field="key_id", quiet=quiet)


class _Configured(NamedTuple):
    source: Source
    log_files: tuple[str, ...]
    log_group: str | None


def _configured(source: Source | None, log_file: list[str] | None, log_group: str | None) -> _Configured:
    """The source to read and its files or group: flags, else the environment and config file."""
    from ..event_source import choose_source

    settings = command_settings(log_files=log_file, log_group=log_group)
    return _Configured(choose_source(settings, source), settings.log_files, settings.log_group)


def _query(kinds: frozenset[str], since: str, until: str | None, configured: _Configured,
           aws: AwsOptions,
           page_size: int, by: str | None, fail_above: int | None) -> QueryResult:
    """Run one security-event query over the configured source (failures, cors, access)."""
    from ..monitoring import Query, run
    from ..security_events.records import Window

    return run(Query(kinds, Window.parse(since, until, utcnow()), source=configured.source,
                     log_files=configured.log_files, log_group=configured.log_group, aws=aws,
                     page_size=page_size, by=by, fail_above=fail_above))


def _group(by: By | AccessBy) -> str | None:
    return None if by.value == "none" else by.value


def _show(result: QueryResult, output: OutputFormat, quiet: bool, by: By | AccessBy,
          columns: list[tuple[str, str]] = SECURITY_COLUMNS) -> None:
    """The events or their groups on stdout (-q: the client IPs or the group values), what was
    read on stderr. A group's value is labelled with what it is (`ip`, `reason`, `tool`…)."""
    if result.events is not None:
        render.rows(result.events, columns, output, quiet_field=schema.CLIENT_IP, quiet=quiet)
    else:
        rows = [{by.value: g.pop("key"), **g} for g in (g.to_public() for g in result.groups or [])]
        render.rows(rows, [(by.value, by.value.upper()), *GROUP_COLUMNS[1:]], output,
                    quiet_field=by.value, quiet=quiet)
    query, stats = result.query, result.stats
    if stats.malformed:
        render.note(f"warning: {stats.malformed} malformed line(s) skipped", quiet)
    unit = "file" if query.source is Source.local else "page"
    render.note(f"{result.total} {'/'.join(sorted(query.kinds))} event(s) from {stats.lines} line(s) in "
                f"{stats.files or stats.pages} {unit}(s)", quiet)


@app.command()
def failures(
    since: SinceOpt = "1h", until: UntilOpt = None, source: SourceOpt = None,
    log_file: LogFileOpt = None, log_group: LogGroupOpt = None, by: ByOpt = By.ip,
    event: EventOpt = None, fail_above: FailAboveOpt = None, region: RegionOpt = None,
    profile: ProfileOpt = None, endpoint_url: EndpointOpt = None, page_size: PageSizeOpt = 10_000,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Authentication failures in a window (since inclusive, until exclusive), grouped.

    \b
    Example: mcpadmin audit failures --since 10m --log-file /var/log/mcp/events.jsonl --fail-above 5 -q || notify
    """  # noqa: E501 (the example stays one line a user can copy)
    kinds = frozenset(event or [schema.AUTH_FAILURE])
    result = _query(kinds, since, until, _configured(source, log_file, log_group),
                    aws_options(region, profile, endpoint_url), page_size, _group(by), fail_above)
    _show(result, output, quiet, by)
    result.check()


@app.command()
def cors(
    since: SinceOpt = "1h", until: UntilOpt = None, source: SourceOpt = None,
    log_file: LogFileOpt = None, log_group: LogGroupOpt = None, by: ByOpt = By.ip,
    fail_above: FailAboveOpt = None, region: RegionOpt = None, profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None, page_size: PageSizeOpt = 10_000,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Refused cross-origin requests (cors_rejected, R23.3), like `audit failures`.

    \b
    Example: mcpadmin audit cors --since 24h --source cloudwatch --log-group /mcp/prod --by path
    """
    result = _query(frozenset([schema.CORS_REJECTED]), since, until, _configured(source, log_file, log_group),
                    aws_options(region, profile, endpoint_url), page_size, _group(by), fail_above)
    _show(result, output, quiet, by)
    result.check()


@app.command()
def access(
    since: SinceOpt = "1d", until: UntilOpt = None, source: SourceOpt = None,
    log_file: LogFileOpt = None, log_group: LogGroupOpt = None,
    by: Annotated[AccessBy, typer.Option(help="Group counts by this field, or none to list the calls.")]
    = AccessBy.key,
    fail_above: FailAboveOpt = None, region: RegionOpt = None, profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None, page_size: PageSizeOpt = 10_000,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """The access trail: who called which MCP method or tool (tool_call, method_call events).

    \b
    Example: mcpadmin audit access --since 1d --by tool --log-file /var/log/mcp/events.jsonl
    """
    result = _query(schema.ACCESS_EVENTS, since, until, _configured(source, log_file, log_group),
                    aws_options(region, profile, endpoint_url), page_size, _group(by), fail_above)
    _show(result, output, quiet, by, ACCESS_COLUMNS)
    result.check()


@app.command()
def alarms(
    stack: Annotated[str | None, typer.Option(help="Only alarms of this stack (name prefix).")] = None,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """State of the CloudWatch alarms and of the SNS subscriptions they notify (R23.2, R23.5).

    \b
    Example: mcpadmin audit alarms --stack mcp-prod
    """
    from ..aws.alarms import alarm_report

    report = alarm_report(aws_options(region, profile, endpoint_url), stack)
    render.rows(report.rows, [("alarm", "ALARM"), ("state", "STATE"), ("metric", "METRIC"),
                              ("threshold", "THRESHOLD"), ("subscriptions", "SUBSCRIPTIONS")], output,
                quiet_field="alarm", quiet=quiet)
    for line in report.warnings:
        render.note(f"warning: {line}")
    report.check()


@app.command()
def watch(
    since: Annotated[str, typer.Option(help="Also show events this far back before following.")] = "5m",
    source: SourceOpt = None,
    log_file: Annotated[str | None, typer.Option(
        help="Security-event log to follow [default: MCPADMIN_LOG_FILE, log_file in the config "
             "file].")] = None,
    log_group: LogGroupOpt = None, event: EventOpt = None,
    poll: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
) -> None:
    """Follow the log and print failures as they happen, with a running count per IP (Ctrl-C ends).

    \b
    Example: mcpadmin audit watch --log-file /var/log/mcp/events.jsonl
    """
    from .. import monitoring as core
    from ..security_events.records import Window

    configured = _configured(source, [log_file] if log_file else None, log_group)
    watched = core.Query(frozenset(event or [schema.AUTH_FAILURE]), Window.parse(since, None, utcnow()),
                         source=configured.source, log_files=configured.log_files[:1],
                         log_group=configured.log_group,
                         aws=aws_options(region, profile, endpoint_url))
    for item, count in core.watch(watched, poll):
        sys.stdout.write(f"{item.get(schema.TS)}  {item.get(schema.EVENT)}  {item.get(schema.REASON)}  "
                         f"ip={item.get(schema.CLIENT_IP)} (#{count})  key={item.get(schema.KEY_ID) or '-'}  "
                         f"{item.get(schema.PATH)}\n")
        sys.stdout.flush()
