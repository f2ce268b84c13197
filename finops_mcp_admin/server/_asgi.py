"""ASGI plumbing for the envelope and the redirect listener: the request view, reading and
replaying a body, and complete JSON responses. No security decision is made here."""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 4 * 1024 * 1024


class BadBody(Exception):
    """A request body the envelope refuses with 400 (too large, cut off, not JSON we accept)."""


class Request:
    """The parts of an HTTP scope the envelope reads. Header values are decoded when read."""

    __slots__ = ("_raw", "client_ip", "method", "path", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        headers = scope.get("headers", [])
        raw: dict[bytes, bytes] = dict(headers)
        # One C-level pass when the names are unique and lower-case, as uvicorn (h11 and
        # httptools alike) delivers them; otherwise the careful pass below.
        if len(raw) != len(headers) or not b"".join(raw).islower():
            raw = {}
            for name, value in headers:
                key = name.lower()
                # A repeated security header is ambiguous: keep a marker that matches nothing.
                raw[key] = b"\x00duplicate" if key in raw else value
        self._raw = raw
        self.method = scope.get("method", "")
        self.path = scope.get("path", "")
        client = scope.get("client")
        self.client_ip = client[0] if client else "unknown"

    @property
    def correlation_id(self) -> str:
        """X-Correlation-ID when sane, else a fresh id (only computed for events)."""
        return correlation_id(self.header("x-correlation-id"))

    def header(self, name: str) -> str | None:
        """A request header by lower-case name (latin-1, as HTTP/1.1 carries it)."""
        value = self._raw.get(name.encode())
        return None if value is None else value.decode("latin-1")


def correlation_id(header: str | None) -> str:
    """An X-Correlation-ID value when sane, else a fresh id."""
    return header if header and len(header) <= 128 and header.isprintable() else _fresh_id()


class _Ids:
    """Fresh correlation ids in the shape of a UUID version 4: 74 random bits drawn once per
    process (again after a fork), then a 48-bit counter. Unique, which is all a correlation id needs
    (it is not a secret), for a tenth of `uuid4`'s cost: no urandom call per request."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        run = secrets.token_hex(10)
        variant = "89ab"[int(run[15], 16) & 3]
        self.prefix = f"{run[:8]}-{run[8:12]}-4{run[12:15]}-{variant}{run[16:19]}-"
        self.count = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.count) & 0xFFFFFFFFFFFF:012x}"  # next(): atomic under the GIL


_fresh_id = _Ids()


async def read_body(receive: Receive) -> bytes:
    """The whole request body, at most MAX_BODY bytes; BadBody on disconnect or overflow."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadBody("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadBody("body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the already-read body first, then the original channel."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def respond(send: Send, status: int, payload: dict[str, Any] | None,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A complete JSON response (an empty body when payload is None)."""
    body = json.dumps(payload).encode() if payload is not None else b""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
