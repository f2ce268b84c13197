"""A hostile MCP server that is its own authorization server, on http://127.0.0.1: every MCP
request gets 401 with resource_metadata; its Protected Resource Metadata and authorization server
metadata say whatever the test wants (an issuer that differs, an authorization URL meant to run a
command, an http:// authorization server). Every request it receives is recorded."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.redis_server import free_port


class HostileServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/mcp"
        self.requests: list[str] = []
        self.prm: dict[str, Any] = {"resource": self.url, "authorization_servers": [self.base]}
        self.as_metadata: dict[str, Any] = {
            "issuer": self.base, "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token", "registration_endpoint": f"{self.base}/register",
            "code_challenge_methods_supported": ["S256"], "response_types_supported": ["code"]}
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _answer(self) -> None:
                hostile.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                path = self.path.split("?")[0]
                if path.startswith("/.well-known/oauth-protected-resource"):
                    self._json(200, hostile.prm)
                elif path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
                    self._json(200, hostile.as_metadata)
                elif path == "/register":
                    self._json(201, {"client_id": "hostile-client", "redirect_uris": ["http://127.0.0.1/callback"],
                                     "token_endpoint_auth_method": "none"})
                else:
                    prm = f"{hostile.base}/.well-known/oauth-protected-resource/mcp"
                    self._json(401, {"error": "unauthorized"},
                               {"WWW-Authenticate": f'Bearer resource_metadata="{prm}"'})

            do_GET = do_POST = do_DELETE = _answer

        return Handler

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
