"""The access trail's lines are filled into a template (server/access.py) instead of going
through `SecurityEventLog.record` and `json.dumps`: they must be the very same bytes, hostile
header values included. Fresh correlation ids are cheap but still unique UUIDv4 strings."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from finops_mcp_admin.security_events import schema
from finops_mcp_admin.security_events.writer import SecurityEventLog
from finops_mcp_admin.server._asgi import Request, correlation_id
from finops_mcp_admin.server.access import AccessCall, AccessLog, AccessMode
from finops_mcp_admin.server.auth import Principal
from finops_mcp_admin.server.scopes import ScopePolicy

HOSTILE = ["plain", 'quo"te\\back', "line\nbreak\r\n{\"event\":\"forged\"}", "tab\there",
           "caf\xe9 \xff latin-1", "x" * 1000, "\x00\x1b[31m", " ", ""]


def reference_lines(call: AccessCall, correlation: str) -> list[str]:
    """What the generic writer makes of the same call: record() then json.dumps."""
    client_ip, method, path, origin, user_agent, _ = call.facts
    common = {schema.CLIENT_IP: client_ip, schema.METHOD: method, schema.PATH: path,
              schema.KEY_ID: call.principal.key_id, schema.ORIGIN: origin,
              schema.USER_AGENT: user_agent, schema.CORRELATION_ID: correlation,
              schema.KEY_NAME: call.principal.name, schema.OUTCOME: call.final_outcome(),
              schema.DURATION_MS: round((call.ended - call.started) * 1000, 3),
              "status": call.status, "request_bytes": call.request_bytes,
              "response_bytes": call.response_bytes}
    sec, rest = divmod(call.when, 10**9)
    when = datetime.fromtimestamp(sec, UTC).replace(microsecond=rest // 1000)
    out = []
    for rpc_method, tool, scope in call.calls:
        event = schema.TOOL_CALL if tool is not None else schema.METHOD_CALL
        record = SecurityEventLog.record(event, when, **common, **{
            schema.RPC_METHOD: rpc_method, schema.TOOL: tool, schema.TOOL_SCOPE: scope})
        out.append(json.dumps(record, separators=(",", ":")) + "\n")
    return out


def make_call(text: str, *, origin: bool = True, status: int = 200) -> AccessCall:
    headers = [(b"user-agent", text.encode("latin-1", "replace")),
               (b"x-correlation-id", b"corr-" + text[:20].encode("latin-1", "replace"))]
    if origin:
        headers.append((b"origin", b"https://" + text[:30].encode("latin-1", "replace")))
    req = Request({"type": "http", "method": "POST", "path": "/mcp/" + text[:40],
                   "headers": headers, "client": (text[:15] or "10.0.0.1", 5)})
    principal = Principal(key_id="k" + text[:8], name=text or "n", scopes=("tools:read",))
    log = AccessLog(SecurityEventLog(to_stdout=False), AccessMode.all, ScopePolicy())
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": text or "t"}},
                {"jsonrpc": "2.0", "id": 2, "method": "ping"},
                {"jsonrpc": "2.0", "method": "notifications/x"}]
    call = log.begin(req, principal, messages, 12345)
    assert call is not None
    call.status, call.response_bytes, call.ended = status, 77, call.started + 0.0123456
    return call


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("status", [200, 403, 500])
def test_an_access_line_is_the_same_bytes_as_the_generic_writer_makes(text, status):
    call = make_call(text, status=status)
    lines = call.lines()
    correlation = json.loads(lines[0])[schema.CORRELATION_ID]
    assert lines == reference_lines(call, correlation)
    assert [json.loads(line)[schema.EVENT] for line in lines] == [schema.TOOL_CALL, schema.METHOD_CALL]
    assert all(line.count("\n") == 1 and line.isascii() for line in lines)


def test_an_access_line_without_origin_or_correlation_id_has_nulls_and_a_fresh_id():
    call = make_call("plain", origin=False)
    call.facts = (*call.facts[:5], None)
    lines = call.lines()
    record = json.loads(lines[0])
    assert record[schema.ORIGIN] is None
    assert uuid.UUID(record[schema.CORRELATION_ID]).version == 4
    assert lines == reference_lines(call, record[schema.CORRELATION_ID])


def test_an_access_timestamp_is_the_canonical_one_at_any_instant():
    call = make_call("plain")
    for when in (0, 1, 999_999_999, 1_000_000_000, 1_764_460_800_123_456_789, 4_102_444_799_999_999_999):
        call.when = when
        ts = json.loads(call.lines()[0])[schema.TS]
        assert schema.is_canonical(ts)
        assert call.lines() == reference_lines(call, json.loads(call.lines()[0])[schema.CORRELATION_ID])


def test_fresh_correlation_ids_are_unique_uuid4_strings_and_differ_after_a_fork():
    ids = [correlation_id(None) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:200] + ids[-200:]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids must not repeat the parent's
        os.write(write, correlation_id(None).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child not in ids and child.split("-")[:3] != correlation_id(None).split("-")[:3]
    assert correlation_id("given-id") == "given-id"
    assert correlation_id("x" * 129) != "x" * 129 and correlation_id("bad\nid") != "bad\nid"


class SlowLog(SecurityEventLog):
    """Records which thread wrote each batch; the writer thread's writes can be held."""

    def __init__(self) -> None:
        super().__init__(to_stdout=False)
        self.batches: list[tuple[str, list[str]]] = []
        self.hold = threading.Event()
        self.hold.set()

    def write_lines(self, lines: list[str]) -> None:
        if threading.current_thread().name == "access-log":
            self.hold.wait(10)
        self.batches.append((threading.current_thread().name, list(lines)))


def finished(log: AccessLog, text: str) -> None:
    call = make_call(text)
    call.log = log
    call.finish()


def lines_of(batches: list[tuple[str, list[str]]]) -> list[str]:
    return "".join(text for _, texts in batches for text in texts).splitlines()


def test_on_the_event_loop_calls_become_lines_a_batch_at_a_time_written_by_the_thread():
    events = SlowLog()
    log = AccessLog(events, AccessMode.all, ScopePolicy())

    async def serve() -> None:
        for i in range(5):
            finished(log, f"call{i}")
        assert not events.batches and len(log._pending) == 5  # gathering for BATCH_DELAY
        deadline = time.monotonic() + 5
        while not events.batches and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert not log._pending
        finished(log, "late")  # its batch is still gathering when the loop ends

    asyncio.run(serve())
    log.close()  # hands over what was gathering, and the thread writes it before it stops
    assert {name for name, _ in events.batches} == {"access-log"}
    assert len(lines_of(events.batches)) == 12 and len(events.batches) == 2  # 6 requests, 2 calls each


def test_a_stuck_writer_makes_the_caller_write_inline_rather_than_pile_up(monkeypatch):
    monkeypatch.setattr("finops_mcp_admin.server.access.MAX_PENDING", 6)
    events = SlowLog()
    events.hold.clear()  # the writer thread blocks in its first write
    log = AccessLog(events, AccessMode.all, ScopePolicy())
    finished(log, "first")  # off the event loop: handed over at once
    deadline = time.monotonic() + 5
    while log._out and time.monotonic() < deadline:  # the thread took the first batch
        time.sleep(0.005)
    for i in range(8):  # 8 calls: over the bound of 6
        finished(log, f"more{i}")
    inline = [(name, texts) for name, texts in events.batches if name != "access-log"]
    assert len(lines_of(inline)) >= 14 and log._behind <= 6  # 7 calls, 2 lines each
    events.hold.set()
    log.close()
    assert len(lines_of(events.batches)) == 18
