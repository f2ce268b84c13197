"""TLS to Redis: a handshake bounded by the connect timeout that recognises a plaintext Redis on
the other end, and TLS under another name than the address dialled (through `mcpadmin stack
tunnel` the socket goes to 127.0.0.1, while the certificate and SNI must be the cache's name)."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

#: The message a plaintext peer produces; redis_client.redis_errors turns it into one line.
PLAINTEXT_PEER = "answers in plaintext, not TLS"

#: A plaintext Redis reads a ClientHello as the start of an inline command and waits for a
#: newline that never comes, so the handshake would just hang until the socket timeout (it took
#: 5.3 s and said "Timeout"). After this long without a ServerHello we ask the port, on a second
#: connection, whether it speaks plaintext RESP; a TLS server answers a ServerHello in ms.
_PROBE_AFTER = 0.25


def _speaks_plaintext_resp(host: str, port: int, timeout: float) -> bool:
    """True when host:port answers a plaintext PING with a RESP reply (+PONG, -NOAUTH, -ERR…)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as probe:
            probe.sendall(b"PING\r\n")
            reply = probe.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-") and reply.endswith(b"\r\n")


def _handshake(sslsock: ssl.SSLSocket, host: str, port: int, budget: float) -> None:
    """Complete the handshake within `budget` seconds, or fail saying why."""
    deadline = time.monotonic() + budget
    probed = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("TLS handshake timed out")
        sslsock.settimeout(remaining if probed else min(remaining, _PROBE_AFTER))
        try:
            sslsock.do_handshake()
            return
        except ssl.SSLError as exc:
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise
            # A plaintext reply read as a TLS record: "wrong version number", "record layer
            # failure", "packet length too long", depending on the OpenSSL version.
            if _speaks_plaintext_resp(host, port, max(0.05, deadline - time.monotonic())):
                raise ConnectionRefusedError(PLAINTEXT_PEER) from None
            raise
        except TimeoutError:
            if probed:
                raise
            probed = True
            if _speaks_plaintext_resp(host, port, max(0.05, min(0.5, deadline - time.monotonic()))):
                raise ConnectionRefusedError(PLAINTEXT_PEER) from None


def checked_tls_connection(server_name: str | None = None) -> type:
    """An SSLConnection class whose handshake is bounded by the connect timeout and reports a
    plaintext Redis as such. The certificate and host name are always verified. With
    `server_name`, the handshake sends it as SNI and verifies the certificate against it, while
    the TCP connection goes to the URL's host (a tunnel's 127.0.0.1). Only the CA file is taken
    from the connection's settings (no client certificate, no OCSP: ElastiCache uses neither)."""
    from redis.connection import Connection, SSLConnection

    class CheckedSSLConnection(SSLConnection):
        def _connect(self) -> Any:
            sock = Connection._connect(self)  # TCP only; the TLS layer is ours
            try:
                return self._wrap_socket_with_ssl(sock)
            except BaseException:
                sock.close()
                raise

        def _context(self) -> tuple[ssl.SSLContext, str]:
            # Always verified (fail closed): check_hostname and CERT_REQUIRED are
            # create_default_context()'s defaults, and ssl_cert_reqs=none in a URL is ignored.
            context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.ca_certs is not None:
                context.load_verify_locations(cafile=self.ca_certs)
            return context, server_name or self.host

        def _wrap_socket_with_ssl(self, sock: Any) -> Any:
            context, name = self._context()
            sslsock = context.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)
            _handshake(sslsock, self.host, self.port, self.socket_connect_timeout or 1.5)
            sslsock.settimeout(self.socket_timeout)
            return sslsock

    return CheckedSSLConnection
