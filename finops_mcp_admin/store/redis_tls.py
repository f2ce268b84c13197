"""TLS to Redis under another name than the address dialled: through `mcpadmin stack tunnel` the
socket goes to 127.0.0.1, while the certificate (and SNI) must be the cache's own name."""

from __future__ import annotations

import ssl
from typing import Any


def server_name_connection(server_name: str) -> type:
    """An SSLConnection class whose TLS handshake sends `server_name` as SNI and verifies the
    certificate against it, while the TCP connection goes to the URL's host (a tunnel's
    127.0.0.1). Verification is always on: this class ignores ssl_cert_reqs=none. Only the CA
    file is taken from the connection's settings (no client certificate, no OCSP: ElastiCache
    uses neither)."""
    from redis.connection import SSLConnection

    class ServerNameSSLConnection(SSLConnection):
        def _wrap_socket_with_ssl(self, sock: Any) -> Any:
            context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.ca_certs is not None:
                context.load_verify_locations(cafile=self.ca_certs)
            # check_hostname and CERT_REQUIRED are create_default_context()'s defaults.
            return context.wrap_socket(sock, server_hostname=server_name)

    return ServerNameSSLConnection
