"""CORS on the wire (R20): the allowed methods and headers, the live allowlist, preflight answers
and the headers added to responses for an allowed origin. Which origins are allowed is decided
by the policy in `finops_mcp_admin.cors`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cors import OriginPolicy
from ._asgi import Message, Request, Send

#: R20.6 plus the headers the MCP Streamable-HTTP client sends.
ALLOWED_HEADERS = ("authorization", "content-type", "x-correlation-id", "accept",
                   "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method",
                   "mcp-name")
ALLOWED_METHODS = ("POST", "OPTIONS")  # R20.5
EXPOSED_HEADERS = "mcp-session-id, www-authenticate"

# Precomputed: the preflight answer and the response headers never change but for the origin.
_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
    (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
    (b"access-control-max-age", b"600"), (b"vary", b"Origin")]
_VARY = (b"vary", b"Origin")
_EXPOSE = (b"access-control-expose-headers", EXPOSED_HEADERS.encode())


@dataclass
class CorsState:
    """The live allowlist; the watcher swaps `policy` whole on every store change."""

    policy: OriginPolicy = field(default_factory=lambda: OriginPolicy(frozenset()))


def preflight_allowed(req: Request) -> bool:
    """True when a preflight asks only for allowed methods and headers."""
    method = (req.header("access-control-request-method") or "").upper()
    asked = [h.strip().lower() for h in (req.header("access-control-request-headers") or "").split(",")
             if h.strip()]
    return method in ALLOWED_METHODS and all(h in ALLOWED_HEADERS for h in asked)


async def answer_preflight(send: Send, origin: str) -> None:
    """204 with the CORS grants for an allowed origin."""
    await send({"type": "http.response.start", "status": 204, "headers": [
        (b"access-control-allow-origin", origin.encode()), *_PREFLIGHT_HEADERS]})
    await send({"type": "http.response.body", "body": b""})


def with_cors_headers(send: Send, origin: str) -> Send:
    """A send channel that adds the CORS response headers for an allowed origin."""
    extra = [(b"access-control-allow-origin", origin.encode()), _VARY, _EXPOSE]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": list(message.get("headers", [])) + extra}
        await send(message)

    return wrapped
