"""Transport security (R18): TLS ≥ 1.2 with strong suites, the HTTP→HTTPS redirect listener,
and X-Forwarded-* trusted only from configured proxies (the ALB)."""

from __future__ import annotations

import ipaddress
import ssl

from ..errors import InvalidInput
from ..security_events import schema
from ..security_events.writer import SecurityEventLog
from ._asgi import Receive, Scope, Send, respond

#: TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are always strong.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES:!SHA1"


def harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Minimum TLS 1.2, strong suites, no compression or renegotiation."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


def check_cidrs(values: list[str]) -> list[str]:
    """Validate --trusted-proxy values (addresses or CIDR networks)."""
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise InvalidInput(f"invalid --trusted-proxy {value!r}: use an IP address or CIDR") from None
    return out


class RedirectApp:
    """The plain-HTTP listener: 308 to the HTTPS URL, except the MCP endpoint, which is refused
    (a request that reached it in plaintext may already have exposed its key; redirecting would
    teach clients that plaintext works)."""

    def __init__(self, https_port: int, events: SecurityEventLog, mcp_path: str = "/mcp") -> None:
        self.https_port = https_port
        self.events = events
        self.mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                message = await receive()
                while message["type"] != "lifespan.shutdown":
                    await send({"type": f"{message['type']}.complete"})
                    message = await receive()
                await send({"type": "lifespan.shutdown.complete"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        if path.startswith(self.mcp_path):
            client = scope.get("client")
            self.events.emit(schema.PLAINTEXT_REFUSED, reason="plain HTTP on the MCP endpoint",
                             client_ip=client[0] if client else "unknown", method=scope.get("method"),
                             path=path, origin=headers.get("origin"), user_agent=headers.get("user-agent"),
                             correlation_id=headers.get("x-correlation-id"))
            await respond(send, 403, {"error": "https_required"})
            return
        raw_host = headers.get("host", "localhost")
        host = raw_host.rsplit("]", 1)[0] + "]" if raw_host.startswith("[") else raw_host.rsplit(":", 1)[0]
        if not host or any(c in host for c in "/\\@ \t") or not host.isprintable():
            await respond(send, 400, {"error": "bad_host"})
            return
        port = "" if self.https_port == 443 else f":{self.https_port}"
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}{port}{path}" + (f"?{query}" if query else "")
        try:
            encoded = location.encode("latin-1")
        except UnicodeEncodeError:  # a percent-decoded UTF-8 path: no header can carry it (was a 500)
            await respond(send, 400, {"error": "bad_path"})
            return
        await respond(send, 308, None, [(b"location", encoded)])
