"""JSON-RPC batches from the client, for a stdio server that may still speak them.

The SDK's transport takes one message per POST (MCP 2025-06-18 dropped batching), but the
envelope admits batches (each message scope-checked, one refusal refuses all), and older stdio
servers and clients use them. A batch POST is split here: each message goes through the
session's transport as its own request, concurrently (JSON-RPC lets a batch be answered in any
order), and the responses come back as one JSON array, or 202 when the batch held no request.
Messages other than responses (progress, the server's own requests) made while a batched
request runs go to the session's GET stream: a JSON array has no room for them."""

from __future__ import annotations

import json
from typing import Any

import anyio

from .._asgi import Message, Scope, Send, respond


def batch_of(body: bytes) -> list[dict[str, Any]] | None:
    """The messages of a batch body, or None when the body is not a batch (one message)."""
    if body.lstrip()[:1] != b"[":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None  # the transport answers the parse error
    return data if isinstance(data, list) and all(isinstance(m, dict) for m in data) else None


async def answer_batch(transport: Any, scope: Scope, messages: list[dict[str, Any]], send: Send) -> None:
    """Run each message of the batch through the transport; answer with the responses."""
    responses: list[dict[str, Any]] = []
    failed: list[int] = []

    async def one(message: dict[str, Any]) -> None:
        status, body = await _single(transport, scope, message)
        if status >= 400:
            failed.append(status)
        responses.extend(m for m in _messages(body)
                         if "method" not in m and m.get("id") == message.get("id"))

    async with anyio.create_task_group() as tg:
        for message in messages:
            tg.start_soon(one, message)
    if failed and not responses:
        await respond(send, min(failed), {"jsonrpc": "2.0", "id": None, "error": {
            "code": -32600, "message": "Bad Request: the batch was refused"}})
    elif not responses:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await respond(send, 200, responses)  # type: ignore[arg-type]


async def _single(transport: Any, scope: Scope, message: dict[str, Any]) -> tuple[int, bytes]:
    body = json.dumps(message).encode()
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length",)]
    sub = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
    sent = False
    status, chunks = 0, []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def capture(out: Message) -> None:
        nonlocal status
        if out["type"] == "http.response.start":
            status = out["status"]
        elif out["type"] == "http.response.body":
            chunks.append(out.get("body", b""))

    await transport.handle_request(sub, receive, capture)
    return status, b"".join(chunks)


def _messages(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a JSON body or of the data lines of an event stream."""
    text = body.decode("utf-8", "replace")
    candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")] or [text]
    out = []
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        out += [value] if isinstance(value, dict) else []
    return out
