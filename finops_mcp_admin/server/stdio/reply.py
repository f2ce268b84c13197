"""The gateway's own answer to a client's single-message POST: JSON when it can, SSE when it must.

Why not the SDK's transport for these: it answers every request with an event stream, and the
official Python client closes that stream as soon as it holds the response, before the server's
end of the chunked body arrives; httpcore then cannot put the connection back in its pool, so
every call paid a new TCP connection and TLS handshake. A JSON body has a length: the client
reads it whole and keeps the connection (measured per `tools/call`, CPU: the client 3.6 → 1.2
ms, the gateway 2.6 → 0.8 ms; docs/benchmarks.md). Streamable HTTP lets the server choose per
POST (MCP 2025-06-18, "Sending Messages to the Server": the server MUST return either
`text/event-stream` or `application/json`), so a request whose first word from the child is
its response is answered as JSON. Anything else first (progress, a notification, the child's
own request such as sampling), or no word within JSON_WINDOW, starts an event stream, as the
SDK's would have been: the response ends it. Notifications and responses from the client are
written to the child before their 202, so they reach it in the order the client sent them.

What is not for us goes to the SDK's transport unchanged, with its checks and error answers:
a client that does not accept both JSON and SSE, another content type, a body that is not one
valid JSON-RPC message, an initialize, and anything the relay cannot take now (no child yet, a
failing session, a request id already in flight)."""

from __future__ import annotations

import contextlib

import anyio
import mcp_types as types
import pydantic_core
from mcp.server.streamable_http import check_accept_headers
from pydantic import ValidationError
from starlette.requests import Request as StarletteRequest

from .._asgi import Receive, Request, Send
from .relay import Relay, Replies

#: Seconds a request waits for the child's first message before its answer becomes an event
#: stream: a slow call gets its headers (and keep-alive pings) as through the SDK, a quick one
#: one JSON body on a connection the client keeps.
JSON_WINDOW = 1.0
#: Seconds between keep-alive comments on an event stream (sse-starlette's default, which the
#: SDK's streams use): proxies and clients with read timeouts see bytes on a long call.
PING_INTERVAL = 15.0
_PING = b": ping\r\n\r\n"


def single_message(req: Request, body: bytes) -> types.JSONRPCMessage | None:
    """The one JSON-RPC message of a POST the gateway answers itself, or None (the SDK's)."""
    content_type = req.header("content-type") or ""
    if content_type.split(";")[0].strip() != "application/json":
        return None
    if check_accept_headers(StarletteRequest(req.scope)) != (True, True):
        return None
    try:  # parsed and validated as the SDK's transport does it
        message = types.jsonrpc_message_adapter.validate_python(pydantic_core.from_json(body), by_name=False)
    except (ValueError, ValidationError):
        return None
    if isinstance(message, types.JSONRPCRequest) and message.method == "initialize":
        return None
    return message


async def relay_message(relay: Relay, message: types.JSONRPCMessage, session_id: str,
                        receive: Receive, send: Send) -> bool:
    """Give the message to the child and answer its POST; False (nothing sent) when the relay
    cannot take it and the SDK's transport must."""
    if not isinstance(message, types.JSONRPCRequest):
        if not await relay.to_child(message):
            return False
        await send({"type": "http.response.start", "status": 202, "headers": _json_headers(session_id, b"")})
        await send({"type": "http.response.body", "body": b""})
        return True
    replies = relay.open_reply(message.id)
    if replies is None:
        return False
    try:
        if not await relay.to_child(message):
            return False
        await _answer(replies, session_id, receive, send)
    finally:
        relay.close_reply(message.id, replies)
    return True


async def _answer(replies: Replies, session_id: str, receive: Receive, send: Send) -> None:
    first: types.JSONRPCMessage | None = None
    # EndOfStream: the session ended; an event stream that ends at once, as the SDK's did.
    with anyio.move_on_after(JSON_WINDOW), contextlib.suppress(anyio.EndOfStream):
        first = await replies.receive()
    if isinstance(first, types.JSONRPCResponse | types.JSONRPCError):
        body = _json(first)
        await send({"type": "http.response.start", "status": 200, "headers": _json_headers(session_id, body)})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"cache-control", b"no-cache, no-transform"), (b"connection", b"keep-alive"),
        (b"content-type", b"text/event-stream"), (b"mcp-session-id", session_id.encode()),
        (b"x-accel-buffering", b"no")]})
    async with anyio.create_task_group() as tg:
        tg.start_soon(_end_on_disconnect, receive, tg.cancel_scope)
        await _events(first, replies, send)
        tg.cancel_scope.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _events(first: types.JSONRPCMessage | None, replies: Replies, send: Send) -> None:
    """The request's messages as SSE events, until its response (or the session's end)."""
    message = first
    while True:
        if message is not None:
            await send({"type": "http.response.body", "more_body": True,
                        "body": b"event: message\r\ndata: " + _json(message) + b"\r\n\r\n"})
            if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
                return
        message = None
        with anyio.move_on_after(PING_INTERVAL) as waited:
            try:
                message = await replies.receive()
            except anyio.EndOfStream:
                return
        if waited.cancelled_caught:
            await send({"type": "http.response.body", "body": _PING, "more_body": True})


async def _end_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """A client that goes away ends its stream (a cancelled call may never be answered)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _json(message: types.JSONRPCMessage) -> bytes:
    """Compact, in field order, as the SDK writes it (the access trail reads the outcome so)."""
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _json_headers(session_id: str, body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"mcp-session-id", session_id.encode()),
            (b"content-length", str(len(body)).encode())]
