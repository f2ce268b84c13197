"""The security envelope: pure-ASGI middleware around any ASGI MCP app (R18-R20, R23).

Order of checks for an HTTP request, each refusal logged as a security event with the client IP:

1. `/health` answers without credentials.
2. Plaintext refused on the MCP endpoint when TLS is required (R18.6).
3. Origin: a request carrying an Origin that is not allowlisted gets 403 `cors_rejected` — not
   merely a response without CORS headers (R20.3). Preflight answers only allowed origins,
   methods and headers.
4. Bearer key: verification cache, else throttle check, else the store and argon2 in a worker
   thread. RFC 6750: no credentials → 401 `Bearer realm=...` (no error code, §3.1); bad key →
   401 `error="invalid_token"`; key without the tool's scope → 403 `error="insufficient_scope"`.
5. Scope: a `tools/call` body is parsed (duplicate JSON keys refused: no parser differential)
   and the tool's required scope decided before the app sees the request.

The authenticated key becomes `scope["user"]` (an mcp `AuthenticatedUser`), so the SDK binds
stateful sessions to the key that opened them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from ..cors import OriginPolicy
from .auth import UNAVAILABLE, FailureThrottle, KeyVerifier, Principal
from .events import SecurityEventLog

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: R20.6 plus the headers the MCP Streamable-HTTP client sends.
ALLOWED_HEADERS = ("authorization", "content-type", "x-correlation-id", "accept",
                   "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method",
                   "mcp-name")
ALLOWED_METHODS = ("POST", "OPTIONS")  # R20.5
EXPOSED_HEADERS = "mcp-session-id, www-authenticate"
MAX_BODY = 4 * 1024 * 1024
TOUCH_INTERVAL = 60.0


@dataclass
class CorsState:
    """The live allowlist; the watcher swaps `policy` whole on every store change."""

    policy: OriginPolicy = field(default_factory=lambda: OriginPolicy(frozenset()))


@dataclass(frozen=True)
class ScopePolicy:
    """Which scope each tool needs: the per-tool map, else the default."""

    tool_scopes: dict[str, str] = field(default_factory=dict)
    default_scope: str = "tools:read"

    def required(self, tool: str) -> str:
        """The scope a call of this tool needs."""
        return self.tool_scopes.get(tool, self.default_scope)


class _BadBody(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise _BadBody("duplicate key in JSON object")
    return dict(pairs)


def _called_tools(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC body calls (a message or a batch).

    The body is read exactly as the SDK will read it: `json.loads(bytes)` auto-detects UTF-16
    and UTF-32, so anything but UTF-8 is refused here — a UTF-16 `tools/call` would otherwise
    slip past the substring fast path below. Fast path: in UTF-8 without a backslash no JSON
    string can be escaped, so a body that does not contain the literal `tools/call` calls no
    tool (the full parse with duplicate-key detection was a third of the envelope's cost on
    non-tool requests)."""
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        raise _BadBody("JSON body must be UTF-8 (RFC 8259)")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _BadBody("JSON body must be UTF-8 (RFC 8259)") from None
    if "\\" not in text and "tools/call" not in text:
        return []
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise _BadBody(str(exc) or "invalid JSON") from None
    messages = data if isinstance(data, list) else [data]
    tools = []
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if not isinstance(name, str):
                raise _BadBody("tools/call without a tool name")
            tools.append(name)
    return tools


def _bearer(value: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
    None when there are no Bearer credentials at all (no header, or another scheme: §3.1 says
    no error code then); "" for a Bearer header without a usable token."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _key_id_hint(token: str) -> str | None:
    """The id an mcpk token claims (for per-key throttling), without trusting it for more."""
    if token.startswith("mcpk_") and len(token) > 17 and token[17] == "_":
        candidate = token[5:17]
        return candidate if candidate.isalnum() and candidate.isascii() else None
    return None


class SecurityEnvelope:
    """Pure ASGI: non-HTTP scopes (lifespan!) pass straight through to the app."""

    def __init__(self, app: ASGIApp, *, verifier: KeyVerifier, events: SecurityEventLog,
                 cors: CorsState, throttle: FailureThrottle | None = None,
                 scopes: ScopePolicy | None = None, realm: str = "mcp", mcp_path: str = "/mcp",
                 health_path: str = "/health", require_tls: bool = False) -> None:
        self.app = app
        self.verifier = verifier
        self.events = events
        self.cors = cors
        self.throttle = throttle or FailureThrottle()
        self.scopes = scopes or ScopePolicy()
        self.realm = realm.replace('"', "")
        self.mcp_path = mcp_path
        self.health_path = health_path
        self.require_tls = require_tls
        self._last_touch: dict[str, float] = {}
        self._identities: dict[Principal, tuple[Any, Any]] = {}
        # Precomputed: these are on every refused request.
        self._challenge = f'Bearer realm="{self.realm}"'
        self._invalid = self._challenge + ', error="invalid_token", error_description="The access token is invalid"'
        self._allowed_headers = ", ".join(ALLOWED_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = _Request(scope)
        if req.path == self.health_path and req.method in ("GET", "HEAD"):
            status = "ok" if self.verifier.healthy else "degraded"
            await respond(send, 200 if status == "ok" else 503, {"status": status})
            return
        if self.require_tls and scope.get("scheme") != "https" and req.path.startswith(self.mcp_path):
            self._event("plaintext_refused", req, "plain HTTP on the MCP endpoint")
            await respond(send, 403, {"error": "https_required"})
            return

        origin = req.header("origin")
        if origin is not None:
            if not self.cors.policy.allows(origin):
                self._event("cors_rejected", req, "origin not allowed")
                await respond(send, 403, {"error": "origin_not_allowed"})
                return
            if req.method == "OPTIONS":
                await self._preflight(req, send, origin)
                return
            send = self._with_cors(send, origin)

        token = _bearer(req.header("authorization"))
        principal = self.verifier.cached(token) if token else None
        if principal is None:
            principal = await self._authenticate(req, send, token)
            if principal is None:
                return

        if req.method == "POST" and req.path.startswith(self.mcp_path):
            receive = await self._check_scope(req, receive, send, principal)
            if receive is None:
                return

        scope["user"], scope["auth"] = self._identity(principal)
        self._maybe_touch(principal.key_id)
        await self.app(scope, receive, send)

    # -- steps ------------------------------------------------------------------------------

    async def _authenticate(self, req: _Request, send: Send, token: str | None) -> Principal | None:
        key_id = _key_id_hint(token) if token else None
        wait = self.throttle.ip_wait(req.client_ip)
        if wait is None and key_id and not self.verifier.previously_verified(token):
            wait = self.throttle.key_wait(key_id)
        if wait is not None:
            self._event("rate_limited", req, "too many failed attempts", key_id=key_id)
            await respond(send, 429, {"error": "too_many_requests"}, [(b"retry-after", str(wait).encode())])
            return None
        if token is None:
            self.throttle.record(req.client_ip, None)
            self._event("auth_failure", req, "missing_credentials")
            await self._unauthorized(send, self._challenge)  # RFC 6750 §3.1: no error code
            return None
        result = await anyio.to_thread.run_sync(self.verifier.verify, token, _now())
        if result.principal is not None:
            return result.principal
        if result.reason == UNAVAILABLE:
            self._event("store_unavailable", req, "key store unreachable", key_id=result.key_id)
            await respond(send, 503, {"error": "temporarily_unavailable"}, [(b"retry-after", b"5")])
            return None
        self.throttle.record(req.client_ip, result.key_id or key_id)
        self._event("auth_failure", req, result.reason, key_id=result.key_id or key_id)
        await self._unauthorized(send, self._invalid)
        return None

    async def _check_scope(self, req: _Request, receive: Receive, send: Send,
                           principal: Principal) -> Receive | None:
        try:
            body = await _read_body(receive)
            tools = _called_tools(body)
        except _BadBody as exc:
            self._event("bad_request", req, str(exc)[:100], key_id=principal.key_id)
            await respond(send, 400, {"error": "invalid_request"})
            return None
        for tool in tools:
            needed = self.scopes.required(tool)
            if needed not in principal.scopes:
                self._event("insufficient_scope", req, f"tool {tool} needs {needed}",
                            key_id=principal.key_id)
                await respond(send, 403, {"error": "insufficient_scope", "scope": needed}, [
                    (b"www-authenticate", (self._challenge + f', error="insufficient_scope", '
                                           f'scope="{needed}"').encode())])
                return None
        return _replay(body, receive)

    async def _preflight(self, req: _Request, send: Send, origin: str) -> None:
        method = (req.header("access-control-request-method") or "").upper()
        asked = [h.strip().lower() for h in (req.header("access-control-request-headers") or "").split(",") if h.strip()]
        if method not in ALLOWED_METHODS or any(h not in ALLOWED_HEADERS for h in asked):
            self._event("cors_rejected", req, "preflight asks for a method or header not allowed")
            await respond(send, 403, {"error": "preflight_refused"})
            return
        await send({"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", self._allowed_headers.encode()),
            (b"access-control-max-age", b"600"), (b"vary", b"Origin")]})
        await send({"type": "http.response.body", "body": b""})

    def _with_cors(self, send: Send, origin: str) -> Send:
        extra = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
                 (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]

        async def wrapped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        return wrapped

    async def _unauthorized(self, send: Send, challenge: str) -> None:
        await respond(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", challenge.encode())])

    def _event(self, event: str, req: _Request, reason: str, key_id: str | None = None) -> None:
        self.events.emit(event, reason=reason, client_ip=req.client_ip, method=req.method,
                         path=req.path, key_id=key_id, origin=req.header("origin"),
                         user_agent=req.header("user-agent"), correlation_id=req.correlation_id)

    def _identity(self, principal: Principal) -> tuple[Any, Any]:
        """scope["user"] and scope["auth"] for a principal, built once per key (a key's id and
        scopes never change; pydantic construction per request was 10 µs)."""
        ident = self._identities.get(principal)
        if ident is None:
            if len(self._identities) > 10_000:
                self._identities.clear()
            ident = self._identities[principal] = (_user(principal), _credentials(principal))
        return ident

    def _maybe_touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._last_touch.get(key_id, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
            return
        self._last_touch[key_id] = now

        def touch() -> None:
            try:
                self.verifier.touch(key_id)
            except Exception:  # noqa: BLE001 - bookkeeping, not a security decision
                self._last_touch.pop(key_id, None)

        threading.Thread(target=touch, daemon=True).start()


class _Request:
    __slots__ = ("scope", "headers", "method", "path", "client_ip")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            # A repeated security header is ambiguous: keep a marker that matches nothing.
            self.headers[key] = "\x00duplicate" if key in self.headers else value.decode("latin-1")
        self.method = scope.get("method", "")
        self.path = scope.get("path", "")
        client = scope.get("client")
        self.client_ip = client[0] if client else "unknown"

    @property
    def correlation_id(self) -> str:
        """X-Correlation-ID when sane, else a fresh id (only computed for events)."""
        cid = self.headers.get("x-correlation-id", "")
        return cid if 0 < len(cid) <= 128 and cid.isprintable() else str(uuid.uuid4())

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def _now() -> datetime:
    return datetime.now(UTC)


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _BadBody("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _BadBody("body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def respond(send: Send, status: int, payload: dict[str, Any] | None,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A complete JSON response (an empty body when payload is None)."""
    body = json.dumps(payload).encode() if payload is not None else b""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _user(principal: Principal) -> Any:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    # token carries the key id, never the secret: tools can read scope["user"].
    return AuthenticatedUser(AccessToken(token=principal.key_id, client_id=principal.key_id,
                                         scopes=list(principal.scopes),
                                         claims={"name": principal.name}))


def _credentials(principal: Principal) -> Any:
    from starlette.authentication import AuthCredentials

    return AuthCredentials(list(principal.scopes))
