"""A small authorization server for the rejection cases: RFC 8414 metadata, a key-rotating JWKS
and RFC 7662 introspection, served over real HTTPS (trustme) from a thread. Tokens are minted
with PyJWT and cryptography. (The end-to-end flows use a real oidc-provider: tests of issue 13,
point 4.)"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.server.harness import Certs


class Issuer:
    """Start with `start()`; `url` is the issuer identifier."""

    def __init__(self, certs: Certs | None, path: str = "") -> None:
        self.certs = certs
        self.path = path
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.jwks_fetches = 0
        self.introspections = 0
        self.opaque: dict[str, dict[str, Any]] = {}  # token -> introspection answer
        self.client = ("rs-client", "rs-secret")
        self.metadata_overrides: dict[str, Any] = {}
        self.jwks_override: dict[str, Any] | None = None
        self.down = False
        self.metadata_path = "/.well-known/oauth-authorization-server"  # or openid-configuration
        self.prm: dict[str, Any] | None = None  # served at /.well-known/oauth-protected-resource/mcp
        self.rotate()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if certs is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs.cert_file, certs.key_file)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"{'https' if self.certs else 'http'}://localhost:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    def start(self) -> Issuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- keys and tokens ----------------------------------------------------------------------

    def rotate(self) -> str:
        """A new signing key (the old ones stay published); returns its kid."""
        kid = uuid.uuid4().hex[:12]
        self.keys.append((kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    def retire_old_keys(self) -> None:
        self.keys = self.keys[-1:]

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": out}

    def claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.url, "aud": audience, "sub": "alice", "client_id": "desktop-app",
                  "scope": "tools:read", "iat": now, "exp": now + 300}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, audience: str, kid: str | None = None, **overrides: Any) -> str:
        """An RS256 access token signed with the newest key (or the one named)."""
        kid = kid or self.keys[-1][0]
        key = dict(self.keys)[kid]
        return jwt.encode(self.claims(audience, **overrides), key, algorithm="RS256",
                          headers={"kid": kid, "typ": "at+jwt"})

    def metadata(self) -> dict[str, Any]:
        o, u = self.origin, self.url
        doc = {"issuer": u, "authorization_endpoint": o + "/authorize", "token_endpoint": o + "/token",
               "jwks_uri": o + "/jwks", "introspection_endpoint": o + "/introspect",
               "registration_endpoint": o + "/register", "response_types_supported": ["code"],
               "grant_types_supported": ["authorization_code", "refresh_token"],
               "code_challenge_methods_supported": ["S256"],
               "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
               "scopes_supported": ["tools:read", "tools:write"]}
        doc.update(self.metadata_overrides)
        return {k: v for k, v in doc.items() if v is not None}

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if issuer.down:
                    self._json(503, {"error": "down"})
                elif self.path == issuer.metadata_path + issuer.path.rstrip("/"):
                    self._json(200, issuer.metadata())
                elif self.path == "/.well-known/oauth-protected-resource/mcp" and issuer.prm:
                    self._json(200, issuer.prm)
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    self._json(200, issuer.jwks_override or issuer.jwks())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if self.path != "/introspect":
                    self._json(404, {"error": "not_found"})
                    return
                issuer.introspections += 1
                expected = "Basic " + base64.b64encode(":".join(issuer.client).encode()).decode()
                if self.headers.get("authorization") != expected:
                    self._json(401, {"error": "invalid_client"})
                    return
                length = int(self.headers.get("content-length", "0"))
                form = dict(p.split("=", 1) for p in self.rfile.read(length).decode().split("&") if "=" in p)
                from urllib.parse import unquote_plus

                token = unquote_plus(form.get("token", ""))
                self._json(200, issuer.opaque.get(token, {"active": False}))

        return Handler
