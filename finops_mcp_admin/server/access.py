"""The access trail (MCP security guide, Principle 4: who did what, when): one event per MCP
request that passed the envelope — `tool_call` for tools/call, `method_call` for any other
method — with the caller's key id and name, the method, the tool and the scope it needed, the
outcome (ok / error / refused), the duration, the sizes, the client IP and the correlation id.
Never an argument or a result: cost data is sensitive; only their byte sizes.

`--access-log all|writes|none`: every call; only calls of tools that need tools:write; none.

The envelope must not wait for the log: a record is built on the event loop (a few dict
stores) and written (JSON, write, flush) by one background thread, so a slow stdout pipe or
disk never stalls request handling. If the thread falls MAX_PENDING records behind, records are
written inline instead: back-pressure rather than a lost write-tool record.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..security_events import schema
from ..security_events.writer import SecurityEventLog
from ._asgi import Message, Request, Send
from .auth import Principal
from .scopes import TOOLS_WRITE, ScopePolicy

MAX_PENDING = 65_536
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


class AccessCall:
    """One request's access records, finished when its response ends (or the app returns)."""

    __slots__ = ("done", "log", "outcome", "records", "response_bytes", "started", "status")

    def __init__(self, log: AccessLog, records: list[dict[str, Any]]) -> None:
        self.log = log
        self.records = records
        self.started = time.perf_counter()
        self.status = 0
        self.outcome: str | None = None
        self.response_bytes = 0
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
        """Write the records once: refused for a 4xx, error for a 5xx, no answer at all or a
        JSON-RPC error, else ok."""
        if self.done:
            return
        self.done = True
        status = self.status
        if 400 <= status < 500:
            outcome = REFUSED
        elif status == 0 or status >= 500:
            outcome = ERROR
        else:
            outcome = self.outcome or OK
        duration = round((time.perf_counter() - self.started) * 1000, 3)
        for record in self.records:
            record[schema.OUTCOME] = outcome
            record[schema.DURATION_MS] = duration
            record["status"] = status
            record["response_bytes"] = self.response_bytes
            self.log.write(record)


class AccessLog:
    """Decides which calls are recorded and writes them from a background thread."""

    def __init__(self, events: SecurityEventLog, mode: AccessMode, scopes: ScopePolicy) -> None:
        self.events = events
        self.mode = mode
        self.scopes = scopes
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def begin(self, req: Request, principal: Principal, messages: list[dict[str, Any]],
              request_bytes: int) -> AccessCall | None:
        """The access records of a POST's JSON-RPC requests (notifications and responses to the
        server are not calls), or None when none is to be recorded."""
        if self.mode is AccessMode.none:
            return None
        records = []
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
            records.append(self._record(req, principal, method, tool, scope, request_bytes))
        return AccessCall(self, records) if records else None

    def _record(self, req: Request, principal: Principal, method: str, tool: str | None,
                scope: str | None, request_bytes: int) -> dict[str, Any]:
        return {"event": schema.TOOL_CALL if tool is not None else schema.METHOD_CALL,
                "when": time.time(), schema.CLIENT_IP: req.client_ip, schema.METHOD: req.method,
                schema.PATH: req.path, schema.KEY_ID: principal.key_id,
                schema.USER_AGENT: req.header("user-agent"), schema.ORIGIN: req.header("origin"),
                schema.CORRELATION_ID: req.correlation_id, schema.KEY_NAME: principal.name,
                schema.RPC_METHOD: method, schema.TOOL: tool, schema.TOOL_SCOPE: scope,
                "request_bytes": request_bytes}

    def write(self, record: dict[str, Any]) -> None:
        """Hand a finished record to the writer thread (inline when it is far behind)."""
        if self._thread is None:
            self._start()
        if self._queue.qsize() < MAX_PENDING:
            self._queue.put(record)
        else:
            _emit(self.events, record)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="access-log", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while (record := self._queue.get()) is not None:
            _emit(self.events, record)

    def close(self) -> None:
        """Write what is queued, then stop the thread (server shutdown)."""
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)


def _emit(events: SecurityEventLog, record: Mapping[str, Any]) -> None:
    fields = dict(record)
    event = fields.pop("event")
    when = datetime.fromtimestamp(fields.pop("when"), UTC)
    events.emit(event, when=when, **fields)
