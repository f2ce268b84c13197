"""The running bridge: forwards JSON-RPC between the SDK's stdio server transport and one
(replaceable) Streamable-HTTP client connection, replaying the handshake after a session loss.

Imported only when the bridge runs: it pulls in `mcp`, `anyio` and `httpx2`.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any
from urllib.parse import urlsplit

import anyio
import httpx2
from anyio.abc import TaskGroup
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import WriteStream  # the SDK's type for a transport's write end
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import (
    PROTOCOL_VERSION_META_KEY,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)

from .config import BridgeConfig, ssl_context
from .diagnostics import UNAVAILABLE, Redactor, describe_failure, http_error_message
from .limits import guard, request_id

REINIT_PREFIX = "mcpadmin-bridge-reinit-"

#: An HTTP refusal seen for a request id: (status, WWW-Authenticate, Retry-After).
HttpStatus = tuple[int, str, str | None]


class _HeaderStamper:
    """The per-message HTTP headers an SDK ClientSession would stamp: MCP-Protocol-Version after
    a handshake-era initialize; version, method and name for 2026-era requests."""

    def __init__(self) -> None:
        self.version: str | None = None
        self._init_ids: set[RequestId] = set()

    def outbound(self, message: JSONRPCMessage) -> dict[str, str] | None:
        if isinstance(message, JSONRPCRequest | JSONRPCNotification):
            params = message.params or {}
            version = (params.get("_meta") or {}).get(PROTOCOL_VERSION_META_KEY)
            if version is not None:
                headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: message.method}
                name_key = NAME_BEARING_METHODS.get(message.method)
                if name_key and isinstance(params.get(name_key), str):
                    headers[MCP_NAME_HEADER] = encode_header_value(params[name_key])
                return headers
            if isinstance(message, JSONRPCRequest) and message.method == "initialize":
                self._init_ids.add(message.id)
                return None
        return {MCP_PROTOCOL_VERSION_HEADER: self.version} if self.version else None

    def inbound(self, message: JSONRPCMessage) -> None:
        if isinstance(message, JSONRPCResponse) and message.id in self._init_ids:
            self._init_ids.discard(message.id)
            self.version = (message.result or {}).get("protocolVersion") or self.version


class Bridge:
    """Forwards between the stdio streams and one (replaceable) upstream connection."""

    # Set by run(): they exist only inside the event loop.
    _stdout: WriteStream[SessionMessage]
    _tg: TaskGroup
    _connect_lock: anyio.Lock

    def __init__(self, config: BridgeConfig, log: IO[str] | None = None) -> None:
        self.config = config
        self.redact = Redactor(config.api_key)
        self.log = log or sys.stderr
        self.stamper = _HeaderStamper()
        self.init_message: JSONRPCRequest | None = None  # the client's initialize, replayed on reconnect
        self.initialized_message: JSONRPCNotification | None = None  # and its notifications/initialized
        self.pending: dict[RequestId, SessionMessage] = {}  # request id -> message, until answered
        self.retried: set[RequestId] = set()
        self.statuses: dict[RequestId | None, HttpStatus] = {}
        self.stream_failures: dict[RequestId | None, str] = {}  # over the size cap, or no event in time
        self._upstream_write: WriteStream[SessionMessage] | None = None
        self._upstream_scope: anyio.CancelScope | None = None
        self._upstream_generation = 0
        self._upstream_failed: str | None = None
        self._reinit_waiters: dict[str, anyio.Event] = {}
        self._reinit_count = 0
        self._upstream_done = anyio.Event()
        self.oauth: httpx2.Auth | None = None
        if config.api_key is None:  # sign in with OAuth when the server asks (bridge/oauth.py)
            from .oauth import make_oauth

            self.oauth = make_oauth(config, self.redact.add, self.note)

    def note(self, text: str) -> None:
        """A diagnostic line on stderr (redacted)."""
        self.log.write(self.redact(f"finops-mcp-bridge: {text}\n"))
        self.log.flush()

    async def run(self) -> None:
        """Until stdin closes."""
        self._connect_lock = anyio.Lock()  # one connection attempt at a time
        async with (stdio_server() as (stdin, stdout),
                    stdout,  # closing it lets the SDK's writer task, and so the bridge, end
                    anyio.create_task_group() as tg):
            self._stdout, self._tg = stdout, tg
            async for item in stdin:
                if isinstance(item, Exception):
                    self.note("ignored a line on stdin that is not JSON-RPC")
                    continue
                await self._forward_up(item)
            tg.cancel_scope.cancel()  # stdin closed: the desktop client is gone

    # -- stdin -> server -------------------------------------------------------------------

    async def _forward_up(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, JSONRPCRequest):
            if message.method == "initialize":
                self.init_message = message
            self.pending[message.id] = item
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/initialized":
            self.initialized_message = message
        write = await self._ensure_upstream(replay=message is not self.init_message)
        if write is None:
            await self._fail_pending(self._upstream_failed or "cannot reach the MCP server")
            return
        ended = self._upstream_done  # this connection's end, whatever opens after it
        if not await self._send(write, message) and isinstance(message, JSONRPCRequest):
            with anyio.move_on_after(self.config.timeout):
                await ended.wait()  # its failure reason is recorded by then
            await self._fail_one(message.id, self._upstream_failed or "the connection to the MCP server "
                                                                      "was lost")

    async def _send(self, write: WriteStream[SessionMessage], message: JSONRPCMessage) -> bool:
        """False when the connection ended before the message could be handed to it."""
        headers = self.stamper.outbound(message)
        try:
            await write.send(SessionMessage(message, metadata=ClientMessageMetadata(headers=headers)
                                            if headers else None))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            # The connection failed between our check and the send (its first POST could not
            # connect): it is gone, the next message opens a new one.
            if self._upstream_write is write:
                self._upstream_write = None
            return False
        return True

    async def _ensure_upstream(self, replay: bool) -> WriteStream[SessionMessage] | None:
        """The live upstream's write stream, opening (and re-initialising) one if needed."""
        async with self._connect_lock:
            return await self._connect(replay)

    async def _connect(self, replay: bool) -> WriteStream[SessionMessage] | None:
        if self._upstream_write is not None:
            return self._upstream_write
        ready = anyio.Event()
        self._upstream_failed = None
        self._upstream_generation += 1
        self._upstream_done = anyio.Event()
        self._tg.start_soon(self._upstream, ready, self._upstream_generation, self._upstream_done)
        await ready.wait()
        write = self._upstream_write
        if (write is not None and replay and self.init_message is not None
                and not await self._replay_handshake(write, self.init_message)):
            return None
        return self._upstream_write

    async def _replay_handshake(self, write: WriteStream[SessionMessage], original: JSONRPCRequest) -> bool:
        self._reinit_count += 1
        rid = f"{REINIT_PREFIX}{self._reinit_count}"
        done = anyio.Event()
        self._reinit_waiters[rid] = done
        init = JSONRPCRequest(jsonrpc="2.0", id=rid, method="initialize", params=original.params)
        self.stamper.version = None
        if await self._send(write, init):
            with anyio.move_on_after(self.config.timeout):
                await done.wait()
        self._reinit_waiters.pop(rid, None)
        if not done.is_set() or self._upstream_write is None:
            self._upstream_failed = self._upstream_failed or "the MCP server did not answer the handshake"
            self._drop_upstream()
            return False
        if self.initialized_message is not None:
            await self._send(write, self.initialized_message)
        self.note("reconnected to the MCP server")
        return True

    def _drop_upstream(self) -> None:
        """Abandon the current connection (its session is gone); the next message opens one."""
        self._upstream_write = None
        self._upstream_generation += 1  # the old connection's exit must not fail our requests
        if self._upstream_scope is not None:
            self._upstream_scope.cancel()
            self._upstream_scope = None

    def _http_client(self) -> httpx2.AsyncClient:
        """Bearer key, verified TLS, no redirects; HTTP refusals noted per request id."""

        def stream_failed(rid: Any, reason: str) -> None:
            self.stream_failures[rid] = reason

        async def on_response(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                self.statuses[request_id(response.request)] = (
                    response.status_code, response.headers.get("www-authenticate", ""),
                    response.headers.get("retry-after"))
            guard(response, self.config.max_response_bytes, self.config.timeout, stream_failed)

        # identity: the size cap counts the bytes as sent, so no compression bomb slips past it.
        headers = {"User-Agent": "finops-mcp-bridge", "Accept-Encoding": "identity"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.reveal()}"
        timeout = httpx2.Timeout(self.config.timeout, read=max(self.config.timeout, 60.0))
        return httpx2.AsyncClient(headers=headers, verify=ssl_context(self.config), timeout=timeout,
                                  trust_env=self._trust_env(), follow_redirects=False, auth=self.oauth,
                                  event_hooks={"response": [on_response]})

    def _trust_env(self) -> bool:
        """Proxies from the environment only for https:// (the proxy sees a TLS tunnel). An
        http:// URL is loopback-only: a proxy there would receive the key in plaintext, so the
        *_PROXY variables are ignored for it."""
        if urlsplit(self.config.url).scheme == "https":
            return True
        if any(os.environ.get(name) for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
            self.note("ignoring HTTP_PROXY/ALL_PROXY for an http:// URL: the proxy would see the key")
        return False

    async def _upstream(self, ready: anyio.Event, generation: int, done: anyio.Event) -> None:
        try:
            await self._run_upstream(ready, generation)
        finally:
            done.set()

    async def _run_upstream(self, ready: anyio.Event, generation: int) -> None:
        reason = "the connection to the MCP server was replaced"
        scope = anyio.CancelScope()
        self._upstream_scope = scope
        try:
            with scope:
                async with self._http_client() as http, \
                        streamable_http_client(self.config.url, http_client=http) as (read, write):
                    self._upstream_write = write
                    ready.set()
                    async for item in read:
                        if isinstance(item, Exception):
                            self.note(f"ignored a malformed message from the server: {type(item).__name__}")
                            continue
                        await self._forward_down(item, generation)
                    reason = "the MCP server closed the connection"
        except Exception as exc:  # every transport failure ends this upstream only
            reason = describe_failure(exc, self.config.url)
        if generation != self._upstream_generation:
            return  # superseded on purpose: its requests were handed to the new connection
        self._upstream_write = None
        self._upstream_failed = self.redact(reason)
        self.note(self._upstream_failed)
        ready.set()
        for waiter in list(self._reinit_waiters.values()):
            waiter.set()
        await self._fail_pending(self._upstream_failed)

    # -- server -> stdout -------------------------------------------------------------------

    async def _forward_down(self, item: SessionMessage, generation: int) -> None:
        if generation != self._upstream_generation:
            return  # from a connection we abandoned: its requests were resent on the new one
        message = item.message
        mid = getattr(message, "id", None)
        if isinstance(mid, str) and mid.startswith(REINIT_PREFIX):
            self._handshake_answered(mid, message)
            return
        self.stamper.inbound(message)
        if isinstance(message, JSONRPCError) and mid in self.stream_failures:
            message = JSONRPCError(jsonrpc="2.0", id=mid, error=ErrorData(
                code=UNAVAILABLE, message=self.stream_failures.pop(mid)))
        elif isinstance(message, JSONRPCError) and mid in self.pending:
            status = self.statuses.pop(mid, None)
            session_lost = ((status is not None and status[0] == 404)
                            or message.error.message == "Session terminated")
            if session_lost and mid not in self.retried and self.init_message is not None:
                # The server lost our session (it restarted): reconnect, replay the client's
                # handshake, and resend every request still waiting (once each). The client
                # never sees the gap.
                self._drop_upstream()
                self._tg.start_soon(self._resend_pending)
                return
            if status is not None:
                code, text = http_error_message(*status, oauth=self.oauth is not None)
                message = JSONRPCError(jsonrpc="2.0", id=mid, error=ErrorData(code=code, message=text))
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self.pending.pop(message.id, None)
            self.retried.discard(message.id)
        await self._write_stdout(message)

    def _handshake_answered(self, rid: str, message: JSONRPCMessage) -> None:
        """The server's answer to a replayed initialize: the session is back, or it refused."""
        status = self.statuses.pop(rid, None)
        if isinstance(message, JSONRPCResponse):
            self.stamper.version = (message.result or {}).get("protocolVersion")
        else:
            self._upstream_failed = (http_error_message(*status)[1] if status else
                                     "the MCP server refused the replayed handshake")
            self._drop_upstream()
        waiter = self._reinit_waiters.get(rid)
        if waiter is not None:
            waiter.set()

    async def _resend_pending(self) -> None:
        for rid, item in list(self.pending.items()):
            if rid in self.retried or rid not in self.pending:
                continue
            self.retried.add(rid)
            await self._forward_up(item)

    async def _write_stdout(self, message: JSONRPCMessage) -> None:
        await self._stdout.send(SessionMessage(self._redacted(message)))

    def _redacted(self, message: JSONRPCMessage) -> JSONRPCMessage:
        """The message with the key removed from every field (error.data, results, params):
        a server that echoes the Authorization header must not hand the key to the client."""
        if not self.redact:
            return message
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
        clean = self.redact(text)
        return message if clean == text else jsonrpc_message_adapter.validate_json(clean, by_name=False)

    async def _fail_pending(self, reason: str) -> None:
        for rid in list(self.pending):
            await self._fail_one(rid, reason)

    async def _fail_one(self, rid: RequestId, reason: str) -> None:
        """Answer one waiting request with an error, once."""
        if self.pending.pop(rid, None) is None:
            return
        self.retried.discard(rid)
        await self._write_stdout(JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(
            code=UNAVAILABLE, message=self.redact(reason))))


def run_bridge(config: BridgeConfig) -> None:
    """Run until stdin closes. stderr is redacted for the whole process lifetime."""
    bridge = Bridge(config)
    sys.stderr = bridge.redact.wrap(sys.stderr)  # tracebacks, warnings, logging too; tokens as they come
    bridge.log = sys.stderr
    anyio.run(bridge.run)
