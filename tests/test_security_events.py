"""The security-event schema is one contract: what security_events/writer.py writes is what the readers'
fast path expects (canonical timestamps of schema.TS_WIDTH), and other ISO times still work."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finops_mcp_admin.security_events import schema
from finops_mcp_admin.security_events.local import read_local
from finops_mcp_admin.security_events.records import ReadStats, Window
from finops_mcp_admin.security_events.writer import SecurityEventLog


def test_the_writer_stamps_canonical_timestamps_and_the_schema_fields_in_order(tmp_path):
    log = SecurityEventLog(to_stdout=False, path=str(tmp_path / "events.jsonl"))
    log.emit(schema.AUTH_FAILURE, reason="wrong_secret", client_ip="203.0.113.7", extra="x")
    log.close()
    record = json.loads((tmp_path / "events.jsonl").read_text())
    assert schema.is_canonical(record[schema.TS]) and len(record[schema.TS]) == schema.TS_WIDTH
    assert tuple(record)[:len(schema.FIELDS)] == schema.FIELDS and record["extra"] == "x"


def test_a_local_read_finds_exactly_what_the_writer_wrote(tmp_path):
    path = tmp_path / "events.jsonl"
    log = SecurityEventLog(to_stdout=False, path=str(path))
    log.emit(schema.AUTH_FAILURE, client_ip="203.0.113.7")
    log.emit(schema.CORS_REJECTED, client_ip="198.51.100.4")
    log.close()
    stats = ReadStats()
    window = Window(datetime.now(UTC) - timedelta(minutes=1))
    found = list(read_local([str(path)], {schema.AUTH_FAILURE}, window, stats))
    assert [e[schema.CLIENT_IP] for e in found] == ["203.0.113.7"] and stats.lines == 2


def test_the_window_parses_times_that_are_not_canonical():
    since = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    window = Window(since, since + timedelta(hours=1))
    assert window.contains(schema.format_ts(since))  # since is inclusive
    assert not window.contains(schema.format_ts(since + timedelta(hours=1)))  # until is exclusive
    assert window.contains("2026-11-22T02:30:00Z") and window.contains("2026-11-22T03:30:00+01:00")
    assert not window.contains("2026-11-22T01:59:59.999999Z") and not window.contains("yesterday")


def _event_arguments() -> list[tuple[str, ast.expr]]:
    """The first argument of every event-writing call in the server and the rules."""
    package = Path(schema.__file__).resolve().parents[1]
    calls = []
    for path in [*sorted((package / "server").glob("*.py")), *sorted((package / "aws").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("emit", "_event", "_emit") and node.args):
                calls.append((f"{path.name}:{node.lineno}", node.args[0]))
    return calls


def test_every_event_the_server_writes_is_named_by_the_schema():
    calls = _event_arguments()
    assert len(calls) >= 15  # the server, the session registry, the redirect app, the rules
    for where, arg in calls:
        if isinstance(arg, ast.Name) and arg.id == "event":
            continue  # the one forwarding helper of each writer
        assert isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name), where
        assert arg.value.id == "schema" and getattr(schema, arg.attr) in schema.EVENTS, where


def test_the_schema_lists_every_event_name_it_defines():
    defined = {value for name, value in vars(schema).items()
               if name.isupper() and isinstance(value, str) and name not in
               {"TS", "EVENT", "REASON", "CLIENT_IP", "METHOD", "PATH", "KEY_ID", "ORIGIN",
                "USER_AGENT", "CORRELATION_ID", "KEY_NAME", "RPC_METHOD", "TOOL", "TOOL_SCOPE",
                "OUTCOME", "DURATION_MS"}}
    assert defined == set(schema.EVENTS)
