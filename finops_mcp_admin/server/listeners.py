"""Start-up checks for `mcpadmin serve` that must fail before anything listens, and the
listeners themselves: bound here, handed to uvicorn, announced only once they accept.

uvicorn checks nothing until it serves: a missing certificate surfaced as "unexpected
FileNotFoundError" after the banner, a swapped cert/key as "unexpected SSLError", and a port in
use as uvicorn's own sys.exit(3), which our exit codes read as "not found"."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from typing import Any

import uvicorn

from ..errors import BackendUnavailable, InvalidInput


def check_port(value: int | None, flag: str) -> None:
    """A TCP port number, 1-65535 (None: the default applies)."""
    if value is not None and not 1 <= value <= 65535:
        raise InvalidInput(f"invalid {flag} {value}: use a port number from 1 to 65535")


def _no_password() -> bytes:
    raise InvalidInput("the --tls-key file is encrypted: serve needs an unencrypted PEM key "
                       "(keep it readable only by the server's user)")


def check_tls_files(cert: str, key: str) -> None:
    """The certificate and key can be read and belong together, as uvicorn will load them."""
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InvalidInput(f"cannot read {flag} {path}: {exc.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            reason = "the key does not belong to the certificate"
        else:
            reason = "not a PEM certificate and its private key (swapped?)"
        raise InvalidInput(f"--tls-cert {cert} / --tls-key {key}: {reason}") from None


def bind(host: str, port: int, flag: str) -> socket.socket:
    """A socket bound to host:port as uvicorn would bind it (IPv6 when the host has a colon),
    not yet listening: asyncio listens when uvicorn starts serving. A port in use or forbidden
    is exit 5, before any banner."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and an
    # accepted socket inherits it. With proto 0, Nagle held each response's body behind its
    # headers until the client's delayed ACK: 40 ms a request (bench_flood's p99 was 44 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host.strip("[]"), port))
    except socket.gaierror as exc:
        sock.close()
        raise InvalidInput(f"invalid --host {host!r}: {exc.strerror}") from None
    except OSError as exc:
        sock.close()
        why = {errno.EADDRINUSE: "address already in use", errno.EACCES: "permission denied",
               errno.EADDRNOTAVAIL: "no such local address"}.get(exc.errno or 0, exc.strerror)
        raise BackendUnavailable(f"cannot listen on {host}:{port} ({flag}): {why}") from None
    sock.set_inheritable(True)
    return sock


class ListeningServer(uvicorn.Server):
    """A uvicorn server that calls `on_started` once its listeners accept connections, and turns
    uvicorn's start-up sys.exit (the app's lifespan failed) into one error line."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] = lambda: None) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            raise BackendUnavailable("the MCP app failed to start (its lifespan start-up failed)") \
                from None
        if self.started:
            self.on_started()


def bound_port(sock: socket.socket) -> int:
    """The port a bound socket got (differs from the option only for port 0)."""
    address: Any = sock.getsockname()
    return int(address[1])
