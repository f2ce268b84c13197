"""Connection limits for a server that faces clients without an ALB in front: a deadline for the
request head, a deadline for the TLS handshake and a cap on open connections.

uvicorn (0.54, h11) has neither deadline: a client sending its headers a byte at a time, or
opening TCP to the TLS port and never saying hello, held a connection forever (asyncio's
handshake default is 60 s and uvicorn does not pass its own). The keep-alive timeout only runs
between requests, and `--limit-concurrency` answers 503 to requests but admits the connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .transport import harden

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\n"
         b"connection: close\r\n\r\n")


class GuardedConfig(uvicorn.Config):
    """uvicorn's config with our TLS settings (R18.2) and the connection limits."""

    def __init__(self, app: Any, *, header_timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedH11Protocol, **kwargs)
        self.header_timeout = header_timeout
        self.max_connections = max_connections

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            harden(self.ssl)


class GuardedH11Protocol(H11Protocol):
    """h11 with a deadline for each request head and a cap on open connections."""

    def __init__(self, config: GuardedConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout = config.header_timeout
        self.max_connections = config.max_connections
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request head on this connection gets its own deadline

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_overdue(self) -> None:
        self._deadline = None
        in_flight = self.cycle is not None and not self.cycle.response_complete
        if in_flight or self.transport.is_closing():
            return  # the head arrived; the deadline is re-armed when the response completes
        # No complete request head within the deadline (slowloris): drop the connection.
        self.transport.close()


class DeadlineEventLoop(asyncio.SelectorEventLoop):
    """The asyncio loop `serve` runs on: every TLS listener it creates gets the handshake
    deadline (uvicorn calls create_server without ssl_handshake_timeout)."""

    def __init__(self, handshake_timeout: float) -> None:
        super().__init__()
        self.handshake_timeout = handshake_timeout

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") is not None and kwargs.get("ssl_handshake_timeout") is None:
            kwargs["ssl_handshake_timeout"] = self.handshake_timeout
        return await super().create_server(*args, **kwargs)
