"""The inner ASGI app of `serve --stdio`: one SDK Streamable-HTTP transport (message level) and
one relay, hence one child, per MCP session. A single message POSTed to an open session is
relayed and answered by the gateway itself (reply.py: JSON when the child answers first); the
transport takes the rest.

The session bookkeeping mirrors the SDK's StreamableHTTPSessionManager (sessions bound to the
credential that opened them; an unknown id answers 404; a session whose opening request failed
is discarded), with our relay where the SDK runs its own server. The envelope in front does
everything else: it only ever hands us authenticated, scope-checked requests, and ends a
session (idle, revoked, expired) by sending us its DELETE."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, TextIO
from uuid import uuid4

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.transport_security import RequestBodyLimitMiddleware

from ...security_events import schema
from ...security_events.writer import SecurityEventLog
from .._asgi import BadBody, Message, Receive, Request, Scope, Send, read_body, replay, respond
from ..sessions import session_digest
from .batch import answer_batch, batch_of
from .limits import SpawnLimits
from .options import StdioOptions
from .relay import Relay
from .reply import relay_message, single_message


class StdioGateway:
    """ASGI app: lifespan runs the sessions' task group; HTTP requests go to their session."""

    def __init__(self, opts: StdioOptions, events: SecurityEventLog, log: TextIO | None = None) -> None:
        self.opts, self.events, self.log = opts, events, log or sys.stderr
        self.limits = SpawnLimits(opts.max_children_per_key, opts.max_children, opts.rate())
        self._transports: dict[str, StreamableHTTPServerTransport] = {}
        self._owners: dict[str, Any] = {}
        self._relays: dict[str, Relay] = {}
        self._tg: TaskGroup | None = None
        self._http = RequestBodyLimitMiddleware(self._handle, opts.max_message_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    def child_pids(self) -> list[int]:
        """The pids of the children running now (one per session)."""
        return [r.pid for r in self._relays.values() if r.pid is not None]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            tg.cancel_scope.cancel()  # every relay ends its child's group on the way out
        self._tg = None
        await send({"type": "lifespan.shutdown.complete"})

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = Request(scope)
        user = scope.get("user")
        owner = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        session_id = req.header(MCP_SESSION_ID_HEADER)
        if session_id is not None:
            transport = self._transports.get(session_id)
            if transport is None or self._owners.get(session_id) != owner:
                await respond(send, 404, _error("Session not found"))
                return
            await self._in_session(req, session_id, transport, scope, receive, send)
            if transport.is_terminated:
                await self._discard(session_id, transport)
            return
        if req.method != "POST" or self._tg is None:
            await respond(send, 400, _error("Bad Request: Missing session ID"))
            return
        try:
            body = await read_body(receive)
        except BadBody:
            await respond(send, 400, _error("Bad Request: incomplete body"))
            return
        if not _is_initialize(body):  # only an initialize may cost a child slot or a spawn token
            await respond(send, 400, _error("Bad Request: Missing session ID"))
            return
        receive = replay(body, receive)
        key_id = user.access_token.client_id if isinstance(user, AuthenticatedUser) else "-"
        refusal = self.limits.reserve(key_id)
        if refusal is not None:
            reason, wait = refusal
            self._event(schema.QUOTA_EXCEEDED, req, reason, key_id)
            await respond(send, 429, {"error": "too_many_requests", "quota": reason},
                          [(b"retry-after", str(wait).encode())])
            return
        await self._open(req, key_id, owner, scope, receive, send)

    async def _in_session(self, req: Request, session_id: str, transport: StreamableHTTPServerTransport,
                          scope: Scope, receive: Receive, send: Send) -> None:
        """A request of an open session: a single message is relayed and answered here
        (reply.py), a batch split (batch.py), the rest (GET, DELETE, what reply.py leaves)
        handled by the SDK's transport."""
        if req.method == "POST":
            try:
                body = await read_body(receive)
            except BadBody:
                await respond(send, 400, _error("Bad Request: incomplete body"))
                return
            batch = batch_of(body)
            if batch is not None:
                await self._batch(session_id, transport, scope, batch, send)
                return
            relay = self._relays.get(session_id)
            message = single_message(req, body) if not transport.is_terminated else None
            if relay is not None and message is not None and await relay_message(
                    relay, message, session_id, receive, send):
                return
            receive = replay(body, receive)
        await transport.handle_request(scope, receive, send)

    async def _batch(self, session_id: str, transport: StreamableHTTPServerTransport, scope: Scope,
                     batch: list[dict[str, Any]], send: Send) -> None:
        """A batch POST: its requests' other messages go to the GET stream (batch.py)."""
        relay = self._relays.get(session_id)
        ids = {m.get("id") for m in batch if "method" in m and "id" in m}
        if relay is not None:
            relay.batched |= ids
        try:
            await answer_batch(transport, scope, batch, send)
        finally:
            if relay is not None:
                relay.batched -= ids

    async def _open(self, req: Request, key_id: str, owner: Any, scope: Scope, receive: Receive,
                    send: Send) -> None:
        transport = StreamableHTTPServerTransport(mcp_session_id=uuid4().hex,
                                                  is_json_response_enabled=False)
        session_id = transport.mcp_session_id
        assert session_id is not None and self._tg is not None
        self._transports[session_id], self._owners[session_id] = transport, owner
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._tg.start(self._run_session, transport, session_id, req, key_id)
        except BaseException:
            self.limits.release(key_id)
            raise
        try:
            await transport.handle_request(scope, receive, watch)
        finally:
            if not 200 <= status < 400:  # nothing was established: no session, no child
                await self._discard(session_id, transport)

    async def _run_session(self, transport: StreamableHTTPServerTransport, session_id: str,
                           req: Request, key_id: str, *,
                           task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        relay = self._relays[session_id] = Relay(
            self.opts, lambda reason: self._event(schema.STDIO_CHILD_FAILED, req, reason, key_id,
                                                  session=session_digest(session_id)),
            log=self.log, flushed=lambda ids: not ids & set(transport._request_streams))
        try:
            async with transport.connect() as (read_stream, write_stream):
                task_status.started()
                await relay.run(read_stream, write_stream)
        finally:
            self._relays.pop(session_id, None)
            self.limits.release(key_id)
            with anyio.CancelScope(shield=True):
                await self._discard(session_id, transport)

    async def _discard(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        """Forget the session first (its id answers 404 at once), then end its transport, which
        ends the relay and so the child."""
        self._transports.pop(session_id, None)
        self._owners.pop(session_id, None)
        if not transport.is_terminated:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await transport.terminate()

    def _event(self, event: str, req: Request, reason: str, key_id: str, **extra: Any) -> None:
        self.events.emit(event, reason=reason, client_ip=req.client_ip, method=req.method,
                         path=req.path, key_id=key_id, **extra)


def _is_initialize(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


def _error(message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
