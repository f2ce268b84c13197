"""Bounds on what the server can make the bridge hold: the size of one HTTP response, and how
long a request's event stream may go without an event (keep-alive comments do not count: a
server that only sends `: ping` lines kept a request, and the desktop client, waiting forever;
httpx's read timeout restarts with every byte).

Imported only when the bridge runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx2


class ResponseTooLarge(httpx2.StreamError):
    """The server's response passed MCP_MAX_RESPONSE_BYTES."""


class NoEventInTime(httpx2.StreamError):
    """A request's event stream sent no event (only keep-alives) within MCP_TIMEOUT."""


def request_id(request: httpx2.Request) -> Any:
    """The JSON-RPC id a POST carries, else None."""
    try:
        return json.loads(request.content or b"null").get("id")
    except (ValueError, AttributeError, httpx2.RequestNotRead):
        return None


class GuardedStream(httpx2.AsyncByteStream):
    """A response body that stops past `max_bytes`, and, for a request's event stream, when no
    event arrives within `idle` seconds. `on_fail(reason)` learns why before it raises."""

    def __init__(self, inner: Any, max_bytes: int, idle: float | None,
                 on_fail: Callable[[str], None]) -> None:
        self._inner = inner
        self._max = max_bytes
        self._idle = idle
        self._on_fail = on_fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        chunks = self._inner.__aiter__()
        deadline = anyio.current_time() + (self._idle if self._idle else math.inf)
        while True:
            try:
                with anyio.fail_after(max(deadline - anyio.current_time(), 0) if self._idle else None):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                self._on_fail(f"no answer from the MCP server within MCP_TIMEOUT ({self._idle:g} s)")
                raise NoEventInTime("no event within MCP_TIMEOUT") from None
            size += len(chunk)
            if size > self._max:
                self._on_fail(f"the MCP server's response is larger than MCP_MAX_RESPONSE_BYTES "
                              f"({self._max} bytes)")
                raise ResponseTooLarge("response over MCP_MAX_RESPONSE_BYTES")
            if self._idle and _has_event(chunk):
                deadline = anyio.current_time() + self._idle
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _has_event(chunk: bytes) -> bool:
    """Whether an SSE chunk carries anything but comments (`:` lines) and blank lines."""
    return any(line.strip() and not line.startswith(b":") for line in chunk.splitlines())


def guard(response: httpx2.Response, max_bytes: int, idle: float,
          on_fail: Callable[[Any, str], None]) -> None:
    """Wrap a response's body (an httpx response hook: the body is not read yet)."""
    rid = request_id(response.request)
    is_request_stream = (response.request.method == "POST" and rid is not None and
                         response.headers.get("content-type", "").startswith("text/event-stream"))
    response.stream = GuardedStream(response.stream, max_bytes, idle if is_request_stream else None,
                                    lambda reason: on_fail(rid, reason))
