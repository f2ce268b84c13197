"""OAuth discovery, as real MCP clients probe it: RFC 9728 Protected Resource Metadata, and 404
for everything an API-key server has no answer to.

mcp-remote and the MCP Inspector fetch `/.well-known/oauth-protected-resource[/mcp]`,
`/.well-known/oauth-authorization-server[/mcp]`, `/.well-known/openid-configuration[/mcp]`,
`/mcp/.well-known/openid-configuration` and `/register` without credentials before they
connect. Those are public metadata lookups, not guesses at a key: they are answered here, before
authentication, and never count as auth failures (no event, no throttle). Otherwise every start
of a correctly configured client logged six failures, and two starts tripped the > 10 in 5 min
alarm.

API-key mode names no `authorization_servers` (RFC 9728 §2: optional); the OAuth mode of
issue 13 adds them in `document`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ._asgi import Request, Send, respond

WELL_KNOWN = "/.well-known/"
PRM = "/.well-known/oauth-protected-resource"
#: Dynamic client registration (RFC 7591), probed at the server root when no authorization
#: server metadata names an endpoint.
REGISTER = "/register"

# RFC 9110 host[:port]: a reg-name or an IPv6 literal. Anything else (quotes, spaces, userinfo)
# never reaches a header or a document.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
                   r"(?::[0-9]{1,5})?$")
_URL_CHARS = re.compile(r"^[A-Za-z0-9:/.\[\]_~%-]+$")


class ResourceMetadata:
    """The protected resource (the MCP endpoint) and the discovery routes around it.

    resource_url: the canonical URL of the MCP endpoint (`--resource-url`); by default it is
    built from each request's scheme and Host, which is exactly the URL the client used (RFC
    9728 §3.3 has the client check that `resource` matches it)."""

    def __init__(self, mcp_path: str, scopes_supported: list[str],
                 resource_url: str | None = None, authorization_servers: list[str] | None = None) -> None:
        self.mcp_path = mcp_path.rstrip("/") or "/"
        self.authorization_servers = authorization_servers  # OAuth mode: [issuer]
        self.scopes_supported = list(scopes_supported)
        self.resource_url = resource_url
        self._documents = {PRM, PRM + self.mcp_path}
        if resource_url:  # the public path may differ from ours behind a rewriting proxy
            self._documents.add(PRM + (urlsplit(resource_url).path.rstrip("/")))
        self._mcp_well_known = self.mcp_path.rstrip("/") + WELL_KNOWN

    def handles(self, path: str) -> bool:
        """True for the discovery routes this module answers (without credentials)."""
        return (path.startswith(WELL_KNOWN) or path == REGISTER
                or path.startswith(self._mcp_well_known))

    async def answer(self, req: Request, send: Send) -> None:
        """PRM at its two URLs (GET/HEAD), 405 for other methods there, 404 JSON elsewhere."""
        if req.path not in self._documents:
            await respond(send, 404, {"error": "not_found"})
        elif req.method not in ("GET", "HEAD"):
            await respond(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"GET, HEAD")])
        else:
            await respond(send, 200, self.document(req), [(b"cache-control", b"max-age=300")])

    def document(self, req: Request) -> dict[str, object]:
        """RFC 9728 §2 metadata for the MCP endpoint."""
        doc: dict[str, object] = {"resource": self.resource(req), "bearer_methods_supported": ["header"],
                                  "scopes_supported": self.scopes_supported}
        if self.authorization_servers:
            doc["authorization_servers"] = self.authorization_servers
        return doc

    def resource(self, req: Request) -> str:
        """The canonical URL of the MCP endpoint, as this request reached it."""
        if self.resource_url:
            return self.resource_url
        return self._origin(req) + self.mcp_path

    def metadata_url(self, req: Request) -> str:
        """Where the metadata lives (the `resource_metadata` of a 401/403 challenge, MCP
        2025-11-25): the path-suffixed well-known URL of RFC 9728 §3.1."""
        resource = self.resource(req)
        scheme, _, rest = resource.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme}://{host}{PRM}{slash and '/' + path.rstrip('/')}"

    def _origin(self, req: Request) -> str:
        scheme = "https" if req.scope.get("scheme") == "https" else "http"
        host = req.header("host") or ""
        if not _HOST.match(host):  # HTTP/1.1 requires Host; fall back to the listening socket
            name, port = req.scope.get("server") or ("localhost", None)
            host = (f"[{name}]" if ":" in name else name) + (f":{port}" if port else "")
        return f"{scheme}://{host}"


def check_resource_url(url: str) -> str:
    """A `--resource-url`: an absolute http(s) URL without query or fragment (RFC 9728 §1.2)."""
    parsed = urlsplit(url)
    if (parsed.scheme not in ("https", "http") or not parsed.hostname or parsed.query
            or parsed.fragment or parsed.username or not _URL_CHARS.match(url)):
        raise InvalidInput(f"invalid --resource-url {url!r}: use https://HOST[:PORT]/PATH")
    return url.rstrip("/") if parsed.path not in ("", "/") else url
