"""The access trail (MCP security guide, Principle 4: who did what, when): one event per MCP
request that passed the envelope — `tool_call` for tools/call, `method_call` for any other
method — with the caller's key id and name, the method, the tool and the scope it needed, the
outcome (ok / error / refused), the duration, the sizes, the client IP and the correlation id.
Never an argument or a result: cost data is sensitive; only their byte sizes.

`--access-log all|writes|none`: every call; only calls of tools that need tools:write; none.

The envelope must not wait for the log: the event loop notes a request's facts and, when its
response ends, keeps the call; once per BATCH_DELAY one timer callback turns the calls gathered
into lines (a template filled in, ~5 µs a call, in one tight loop) and hands the text to one
background thread, which only writes it (one write and flush per WRITE_DELAY), so a slow stdout
pipe or disk never stalls request handling. The thread needs the GIL for a moment per wake-up:
when it built the lines itself, it held it for whole batches, at ~10 µs of its CPU per call over
HTTP, and each of its wake-ups cost the event loop's thread more still (WRITE_DELAY). If the
thread falls MAX_PENDING calls behind, the loop writes inline instead: back-pressure rather
than a lost write-tool record.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from enum import StrEnum
from typing import Any

from ..security_events import schema
from ..security_events.schema import format_ts_ns
from ..security_events.writer import SecurityEventLog, json_text
from ._asgi import Message, Request, Send, correlation_id
from .auth import Principal
from .scopes import TOOLS_WRITE, ScopePolicy

MAX_PENDING = 65_536
#: The event loop gathers calls this long before it turns them into lines (a short pause each time).
BATCH_DELAY = 0.02
#: The writer thread gathers those lines this long before it writes them: every wake-up of another
#: thread costs the event loop's thread far more than the wake-up's own work (a GIL hand-over;
#: measured in-process on tools/call, 20 ms wake-ups cost ~40 µs a request, 250 ms ones ~10).
WRITE_DELAY = 0.25
OK, ERROR, REFUSED = "ok", "error", "refused"


class AccessMode(StrEnum):
    """Values of --access-log."""

    all = "all"
    writes = "writes"
    none = "none"


def response_outcome(chunk: bytes) -> str | None:
    """ok / error from the first response bytes that carry a JSON-RPC response, None when this
    chunk holds none yet (an SSE priming event, a notification). The SDK writes compact JSON in
    field order (jsonrpc, id, result|error), so whichever key comes first decides; inside JSON
    strings quotes are escaped, so tool output cannot spell either key. A tool result with
    `isError: true` is an error too."""
    result, error = chunk.find(b'"result":'), chunk.find(b'"error":')
    if error != -1 and (result == -1 or error < result):
        return ERROR
    if result != -1:
        return ERROR if b'"isError":true' in chunk else OK
    return None


#: One call of a request, as the event loop notes it: (rpc method, tool, scope the tool needs).
Called = tuple[str, str | None, str | None]


class AccessCall:
    """One request's calls, finished when its response ends (or the app returns)."""

    __slots__ = ("calls", "done", "ended", "facts", "log", "outcome", "principal", "request_bytes",
                 "response_bytes", "started", "status", "when")

    def __init__(self, log: AccessLog, req: Request, principal: Principal, calls: list[Called],
                 request_bytes: int) -> None:
        self.log, self.principal, self.calls = log, principal, calls
        # Strings only, not the Request (its ASGI scope): nothing of it outlives the request.
        header = req.header
        self.facts = (req.client_ip, req.method, req.path, header("origin"),
                      header("user-agent"), header("x-correlation-id"))
        self.request_bytes = request_bytes
        self.when = time.time_ns()
        self.started = self.ended = time.perf_counter()
        self.status = self.response_bytes = 0
        self.outcome: str | None = None
        self.done = False

    def watch(self, send: Send) -> Send:
        """`send`, noting the status, the response size and the JSON-RPC outcome."""
        async def watched(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self.status = message["status"]
            elif kind == "http.response.body":
                body = message.get("body", b"")
                self.response_bytes += len(body)
                if self.outcome is None and body:
                    self.outcome = response_outcome(body)
                if not message.get("more_body"):
                    self.finish()
            await send(message)

        return watched

    def finish(self) -> None:
        """Hand the call to the writer, once."""
        if not self.done:
            self.done = True
            self.ended = time.perf_counter()
            self.log.write(self)

    def final_outcome(self) -> str:
        """refused for a 4xx; error for a 5xx, no answer at all or a JSON-RPC error; else ok."""
        status = self.status
        if 400 <= status < 500:
            return REFUSED
        if status == 0 or status >= 500:
            return ERROR
        return self.outcome or OK

    def lines(self) -> list[str]:
        """The JSON lines of this request's calls: what `record` and `json.dumps` would write
        (a test holds them byte-equal), filled into a template; the parts that repeat from
        request to request (who called, which method) are encoded once (_Fragments)."""
        facts, principal = self.facts, self.principal
        who = self.log.fragments.who(facts, principal)
        ts = format_ts_ns(self.when)
        rest = _REST % (json_text(correlation_id(facts[5])), who[1], self.final_outcome(),
                        round((self.ended - self.started) * 1000, 3), self.status,
                        self.request_bytes, self.response_bytes)
        called = self.log.fragments.called
        return [_LINE % (ts, schema.TOOL_CALL if call[1] is not None else schema.METHOD_CALL,
                         who[0], rest, called(call)) for call in self.calls]


def _name(field: str) -> str:
    return json.dumps(field) + ":"


# An access line in the order `SecurityEventLog.record` writes fields (schema.FIELDS first,
# then the access fields), built from the schema's names rather than spelling them again:
# {ts, event, reason, <who: client_ip .. user_agent>, <rest: correlation_id .. response_bytes>,
#  <called: rpc_method, tool, scope>}
_WHO = "".join((
    _name(schema.CLIENT_IP), "%s,", _name(schema.METHOD), "%s,", _name(schema.PATH), "%s,",
    _name(schema.KEY_ID), "%s,", _name(schema.ORIGIN), "%s,", _name(schema.USER_AGENT), "%s"))
_REST = "".join((
    _name(schema.CORRELATION_ID), "%s,", _name(schema.KEY_NAME), "%s,", _name(schema.OUTCOME), '"%s",',
    _name(schema.DURATION_MS), "%r,", '"status":%d,"request_bytes":%d,"response_bytes":%d'))
_CALLED = "".join((_name(schema.RPC_METHOD), "%s,", _name(schema.TOOL), "%s,",
                   _name(schema.TOOL_SCOPE), "%s"))
_LINE = "".join(("{", _name(schema.TS), '"%s",', _name(schema.EVENT), '"%s",', _name(schema.REASON),
                 "null,%s,%s,%s}\n"))


class _Fragments:
    """Encoded parts of access lines that repeat across requests (a client's address, headers
    and key; a method and tool), each encoded once. The event loop's state (a caller's when no
    loop runs: tests, shutdown); bounded: a client that varies its User-Agent per request only
    empties it."""

    MAX = 4096

    def __init__(self) -> None:
        self._who: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._called: dict[Called, str] = {}

    def who(self, facts: tuple[str | None, ...], principal: Principal) -> tuple[str, str]:
        """(client_ip .. user_agent fragment, the key name's JSON text)."""
        key = (facts[:5], principal.key_id, principal.name)
        found = self._who.get(key)
        if found is None:
            if len(self._who) >= self.MAX:
                self._who.clear()
            client_ip, method, path, origin, user_agent = facts[:5]
            found = self._who[key] = (
                _WHO % (json_text(client_ip), json_text(method), json_text(path),
                        json_text(principal.key_id), json_text(origin), json_text(user_agent)),
                json_text(principal.name))
        return found

    def called(self, call: Called) -> str:
        found = self._called.get(call)
        if found is None:
            if len(self._called) >= self.MAX:
                self._called.clear()
            found = self._called[call] = _CALLED % tuple(map(json_text, call))
        return found


class AccessLog:
    """Decides which calls are recorded and writes them from a background thread."""

    def __init__(self, events: SecurityEventLog, mode: AccessMode, scopes: ScopePolicy) -> None:
        self.events = events
        self.mode = mode
        self.scopes = scopes
        self.fragments = _Fragments()
        self._pending: list[AccessCall] = []  # finished calls, not yet lines (event loop)
        self._out: list[str] = []  # lines of whole batches, for the writer thread
        self._behind = 0  # calls in self._out
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def begin(self, req: Request, principal: Principal, messages: list[dict[str, Any]],
              request_bytes: int) -> AccessCall | None:
        """The calls of a POST's JSON-RPC requests (notifications and responses to the server
        are not calls), or None when none is to be recorded."""
        if self.mode is AccessMode.none:
            return None
        calls: list[Called] = []
        for message in messages:
            method = message.get("method")
            if method is None or "id" not in message:
                continue
            tool = scope = None
            if method == "tools/call":
                tool = message["params"]["name"]  # a str: checked by jsonrpc_messages
                scope = self.scopes.required(tool)
            if self.mode is AccessMode.writes and scope != TOOLS_WRITE:
                continue
            calls.append((method, tool, scope))
        return AccessCall(self, req, principal, calls, request_bytes) if calls else None

    def write(self, call: AccessCall) -> None:
        """Note a finished call. On the event loop, the calls of BATCH_DELAY become lines in one
        timer callback (a tight loop over warm code, no lock, no thread switch per call) and the
        text goes to the writer thread, which only writes it: it needs the GIL for a moment per
        batch, not for the whole batch's formatting. Off the loop (tests, shutdown), the caller
        builds the lines itself. When the writer is MAX_PENDING calls behind, the loop writes
        inline: back-pressure rather than a lost record."""
        pending = self._pending
        pending.append(call)
        if len(pending) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._hand_over()
                return
            loop.call_later(BATCH_DELAY, self._hand_over)

    def _hand_over(self) -> None:
        calls, self._pending = self._pending, []
        if not calls:
            return
        text = "".join([line for call in calls for line in call.lines()])
        with self._lock:
            first = not self._out
            self._out.append(text)
            self._behind += len(calls)
            behind = self._behind
        if behind > MAX_PENDING:
            self._write_now()
            return
        if self._thread is None:
            self._start()
        if first:
            self._wake.set()  # once per WRITE_DELAY at most: the thread then gathers batches

    def _write_now(self) -> None:
        with self._lock:
            texts, self._out, self._behind = self._out, [], 0
        if texts:
            self.events.write_lines(texts)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="access-log", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        """Write what has gathered, WRITE_DELAY after the first batch arrived: one wake-up, one
        write and one flush for all the batches of that time."""
        while True:
            self._wake.wait()  # an idle server's writer never wakes up
            if not self._stopping:
                time.sleep(WRITE_DELAY)
            with self._lock:
                self._wake.clear()
                texts, self._out, self._behind = self._out, [], 0
                stopping = self._stopping
            if texts:
                self.events.write_lines(texts)
            if stopping:
                return

    def close(self) -> None:
        """Write what is queued, then stop the thread (server shutdown)."""
        self._hand_over()
        thread = self._thread
        if thread is not None:
            with self._lock:
                self._stopping = True
            self._wake.set()
            thread.join(timeout=10)
        else:
            self._write_now()
