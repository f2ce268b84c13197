"""One session's relay: the client's messages come from the gateway's own answer path
(reply.py: single messages, the common case) or from the SDK's Streamable-HTTP transport (the
initialize, batches, anything reply.py leaves to the SDK); the child speaks line-delimited
JSON-RPC on stdin/stdout.

Messages pass unchanged in both directions (ids included: the client's request ids and the
child's own request ids live in separate namespaces, as on stdio). What the relay decides is
only which HTTP stream a message of the child rides on:
- a response or error: the POST that carried its request (by id: its reply stream, or the
  transport's);
- `notifications/progress`: the request whose `_meta.progressToken` it names;
- any other notification, and the child's own requests (sampling, elicitation, roots/list,
  ping): the one client request in flight when there is exactly one (a stdio server asks
  while it handles a call), else the session's GET stream.

A child that exits, writes something that is not JSON-RPC to stdout, or a line over the message
size fails the session: every request in flight gets a JSON-RPC error, a `stdio_child_failed`
event is written, and the gateway ends the session (its id answers 404 from then on, so the
client opens a new one). The child's stderr goes to the server log line by line, redacted."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from pydantic import TypeAdapter, ValidationError

from ...bridge.diagnostics import Redactor
from ...keys import Secret
from . import child
from .options import StdioOptions

_BATCH: TypeAdapter[list[types.JSONRPCMessage]] = TypeAdapter(list[types.JSONRPCMessage])
Replies = MemoryObjectReceiveStream[types.JSONRPCMessage]
#: JSON-RPC error for requests in flight when the child fails (implementation-defined range).
CHILD_FAILED = -32002
#: The shape of an mcpadmin key: removed from the child's stderr even if one reached it.
_KEY_SHAPE = re.compile(r"mcpk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38,200}")
#: Environment names whose values are secrets: redacted from the child's stderr.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY$", re.I)
#: Longest stderr line written to the log (the rest is cut).
STDERR_LINE = 2000
#: Seconds to let the errors for requests in flight reach their streams before the session ends.
FLUSH_WAIT = 2.0
#: Messages of one request buffered for its POST (the SDK's REQUEST_STREAM_BUFFER_SIZE): a
#: client that reads slowly holds back the child's stdout, as through the SDK's transport.
REPLY_BUFFER = 16


class ChildFailed(Exception):
    """The child exited or broke the protocol; the message says how (no child output in it)."""


def stderr_redactor(env: dict[str, str]) -> Callable[[str], str]:
    """Redacts key-shaped strings and the values of secret-looking allowlisted variables."""
    redact = Redactor(*(Secret(v) for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 4))
    return lambda text: _KEY_SHAPE.sub("mcpk_***", redact(text))


class Relay:
    """Relays one session; `run` returns None when the session was ended from outside (DELETE,
    idle, revocation, shutdown), or the reason the child failed."""

    def __init__(self, opts: StdioOptions, on_failure: Callable[[str], None],
                 log: TextIO | None = None, flushed: Callable[[set[str]], bool] | None = None) -> None:
        self.opts = opts
        self.on_failure = on_failure
        self.log = log or sys.stderr
        self.flushed = flushed or (lambda _ids: True)
        self.redact = stderr_redactor(child.child_env(opts.env_allow))
        self.pid: int | None = None
        self._in_flight: dict[types.RequestId, Any] = {}  # client request id -> its progress token
        #: Ids of batched requests in flight: nothing but their responses can ride with them.
        self.batched: set[Any] = set()
        #: Requests the gateway answers itself (reply.py), by id: where their messages go.
        self._replies: dict[types.RequestId, tuple[MemoryObjectSendStream[Any], Replies]] = {}
        self._proc: asyncio.subprocess.Process | None = None  # while messages may be written to it
        self._out: Any = None

    async def run(self, read_stream: Any, write_stream: Any) -> str | None:
        """Spawn on the first message (the initialize) and relay until either side ends."""
        self._out = write_stream
        first = await _first_message(read_stream)
        if first is None:
            return None
        proc = await child.spawn(self.opts)
        self.pid = proc.pid
        failure: str | None = None
        self._proc = proc
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._stderr, proc)
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(self._to_child, proc, read_stream, first, pumps.cancel_scope)
                    failure = await self._from_child(proc)
                    pumps.cancel_scope.cancel()
                tg.cancel_scope.cancel()
            if failure is not None:
                self._proc = None  # new messages go the SDK's way, to a session that is ending
                await self._fail(failure, proc)
            return failure
        finally:
            self._proc = None
            for sender, _ in self._replies.values():  # their POSTs end without a response
                sender.close()
            self._replies.clear()
            with anyio.CancelScope(shield=True):
                await child.end(proc)

    # -- the gateway's own answer path (reply.py) --------------------------------------------

    def open_reply(self, request_id: types.RequestId) -> Replies | None:
        """The stream of the child's messages for a request the gateway answers itself, or None
        when the relay cannot take it (no child yet, the session failing, the id in flight)."""
        if self._proc is None or request_id in self._in_flight or request_id in self._replies:
            return None
        send, receive = anyio.create_memory_object_stream[types.JSONRPCMessage](REPLY_BUFFER)
        self._replies[request_id] = (send, receive)
        return receive

    def close_reply(self, request_id: types.RequestId, stream: Replies) -> None:
        """The request's POST has ended: later messages for it are dropped, as the SDK drops
        those of a request whose stream is gone."""
        stream.close()
        pair = self._replies.get(request_id)
        if pair is not None and pair[1] is stream:
            pair[0].close()
            del self._replies[request_id]

    async def to_child(self, message: types.JSONRPCMessage) -> bool:
        """Write one client message to the child; False when there is no child to write to."""
        if self._proc is None:
            return False
        await self._write(self._proc, message)
        return True

    # -- client -> child --------------------------------------------------------------------

    async def _to_child(self, proc: asyncio.subprocess.Process, read_stream: Any,
                        first: SessionMessage, scope: anyio.CancelScope) -> None:
        assert proc.stdin is not None
        await self._write(proc, first.message)
        with contextlib.suppress(anyio.ClosedResourceError, anyio.EndOfStream):
            async for item in read_stream:
                if isinstance(item, SessionMessage):
                    await self._write(proc, item.message)
        scope.cancel()  # the transport closed: the session was ended from outside

    async def _write(self, proc: asyncio.subprocess.Process, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCRequest):
            meta = (message.params or {}).get("_meta") if isinstance(message.params, dict) else None
            self._in_flight[message.id] = meta.get("progressToken") if isinstance(meta, dict) else None
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            params = message.params if isinstance(message.params, dict) else {}
            cancelled = params.get("requestId")
            if isinstance(cancelled, str | int):
                self._in_flight.pop(cancelled, None)
        line = message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
        assert proc.stdin is not None
        try:
            proc.stdin.write(line)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child is gone: its stdout's EOF reports that

    # -- child -> client --------------------------------------------------------------------

    async def _from_child(self, proc: asyncio.subprocess.Process) -> str:
        """Relay the child's messages until it fails; returns how it failed."""
        try:
            await self._relay_stdout(proc)
        except ChildFailed as exc:
            return str(exc)
        raise AssertionError("unreachable: stdout ends only in a failure")

    async def _relay_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # asyncio: a line over the stream's limit
                raise ChildFailed(f"stdio server wrote a message over {self.opts.max_message_bytes} "
                                  "bytes") from None
            if not line:
                status = await _exit_status(proc)
                raise ChildFailed(f"stdio server exited (status {status})")
            if not line.strip():
                continue
            for message in _parse(line):
                try:
                    await self._dispatch(message)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    await anyio.sleep_forever()  # ended from outside: _to_child cancels us

    async def _dispatch(self, message: types.JSONRPCMessage) -> None:
        """To the reply stream of the request it belongs to, else to the SDK's transport."""
        related = self._related(message)
        reply = self._replies.get(related) if related is not None else None
        if reply is not None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await reply[0].send(message)
            return
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) or related is None:
            metadata = None  # the transport routes responses by id; None is the GET stream
        else:
            metadata = ServerMessageMetadata(related_request_id=related)
        await self._out.send(SessionMessage(message, metadata=metadata))

    def _related(self, message: types.JSONRPCMessage) -> types.RequestId | None:
        """The client request a message of the child belongs to; None: the session's GET stream."""
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            if message.id is not None:
                self._in_flight.pop(message.id, None)
            return message.id
        related = None
        if isinstance(message, types.JSONRPCNotification) and message.method == "notifications/progress":
            token = (message.params or {}).get("progressToken")
            related = next((rid for rid, tok in self._in_flight.items()
                            if tok is not None and tok == token), None)
        elif len(self._in_flight) == 1:
            related = next(iter(self._in_flight))
        return None if related in self.batched else related

    async def _stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while True:
            try:
                line = await proc.stderr.readline()
            except ValueError:  # an over-long line: skip what is buffered
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()[:STDERR_LINE]
            with contextlib.suppress(Exception):  # the log is bookkeeping, not a decision
                self.log.write(self.redact(f"stdio server [{proc.pid}]: {text}\n"))
                self.log.flush()

    async def _fail(self, reason: str, proc: asyncio.subprocess.Process) -> None:
        """Answer every request in flight with a JSON-RPC error, report, let the errors out."""
        self.on_failure(reason)
        waiting = set()
        for request_id in list(self._in_flight):
            error = types.JSONRPCError(jsonrpc="2.0", id=request_id,
                                       error=types.ErrorData(code=CHILD_FAILED, message=reason))
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await self._dispatch(error)
            waiting.add(str(request_id))
        self._in_flight.clear()
        with anyio.move_on_after(FLUSH_WAIT):
            while not self.flushed(waiting) or waiting & {str(rid) for rid in self._replies}:
                await anyio.sleep(0.01)


async def _first_message(read_stream: Any) -> SessionMessage | None:
    with contextlib.suppress(anyio.ClosedResourceError, anyio.EndOfStream):
        async for item in read_stream:
            if isinstance(item, SessionMessage):
                return item
    return None


async def _exit_status(proc: asyncio.subprocess.Process) -> int | None:
    with anyio.move_on_after(1):
        return await proc.wait()
    return None


def _parse(line: bytes) -> list[types.JSONRPCMessage]:
    """The JSON-RPC message (or batch) of one stdout line; ChildFailed if it is not one."""
    try:
        if line.lstrip().startswith(b"["):
            batch = _BATCH.validate_json(line, by_name=False)
            if not batch:
                raise ChildFailed("stdio server wrote an empty batch")
            return list(batch)
        return [types.jsonrpc_message_adapter.validate_json(line, by_name=False)]
    except (ValidationError, ValueError):
        raise ChildFailed("stdio server wrote something that is not JSON-RPC to stdout") from None
