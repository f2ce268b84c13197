"""The security envelope: pure-ASGI middleware around any ASGI MCP app (R18-R20, R23).

Order of checks for an HTTP request, each refusal logged as a security event with the client IP:

1. `/health` answers without credentials.
2. Plaintext refused on the MCP endpoint when TLS is required (R18.6).
3. Origin: a request carrying an Origin that is not allowlisted gets 403 `cors_rejected` — not
   merely a response without CORS headers (R20.3). Preflight answers only allowed origins,
   methods and headers.
4. OAuth discovery (`/.well-known/...`, `/register`) answers without credentials and is never an
   auth failure: RFC 9728 metadata for the MCP endpoint, 404 for the rest (discovery.py).
5. Bearer key: verification cache, else a reservation on arrival (failure windows per IP and
   per (IP, key id), bounds on attempts in flight; 429 + Retry-After at once when over, held
   a moment for clients that ignore Retry-After: throttle.Tarpit), then
   the store and argon2 in a worker thread. RFC 6750: no credentials → 401 `Bearer realm=...`
   (no error code, §3.1); bad key → 401 `error="invalid_token"`; challenges carry
   `resource_metadata` (MCP 2025-11-25). With `--auth oauth|both` an OAuth access token is
   checked instead (server/oauth/: JWKS or introspection, audience = the canonical URL); the
   Authorization header is then removed before the app runs (no token passthrough).
6. Per-key IP allowlist: a valid key used from outside its networks gets 403 `ip_refused`
   (the client IP as the trusted proxies resolved it; allowlist.py).
7. Quotas: the key's request rate (429 + Retry-After, `quota_exceeded` rate) — before any body
   is read.
8. Scope: every JSON-RPC message of a POST is parsed (duplicate JSON keys refused: no parser
   differential) and each method's scope decided before the app sees the request, deny by
   default: 403 `error="insufficient_scope"` (scopes.py).
9. Sessions (server/sessions.py): a request that would open an MCP session beyond the key's cap
   gets 429 (`quota_exceeded` max_sessions); a request whose JSON-RPC id is already in flight in
   its session (or repeated in its batch) gets 400 (`bad_request`): it would take the other's
   answer and leave that one waiting for ever; every request runs where revocation, expiry or
   the end of a rotation grace can end it, and session open/close are events.
10. Access trail: each JSON-RPC request that got this far is a `tool_call` / `method_call`
   event with its outcome and duration, written off the event loop (server/access.py).

The authenticated key becomes `scope["user"]` (an mcp `AuthenticatedUser`), so the SDK binds
stateful sessions to the key that opened them.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from ..allowlist import allows
from ..keys import read_token
from ..security_events import schema
from ..security_events.writer import SecurityEventLog
from ._asgi import ASGIApp, BadBody, Receive, Request, Scope, Send, read_body, replay, respond
from .access import AccessCall, AccessLog
from .auth import UNAVAILABLE, KeyVerifier, Principal, bearer_token
from .cors import CorsState, answer_preflight, preflight_allowed, with_cors_headers
from .discovery import ResourceMetadata
from .oauth.step import OAuthStep
from .quotas import RateLimiter
from .scopes import ScopePolicy, jsonrpc_messages, request_ids
from .sessions import DUPLICATE_ID, SessionRegistry
from .throttle import TOO_MANY_FAILURES, Attempt, FailureThrottle, Refusal, Tarpit

TOUCH_INTERVAL = 60.0
_NO_IDS: tuple[str, ...] = ()


class SecurityEnvelope:
    """Pure ASGI: non-HTTP scopes (lifespan!) pass straight through to the app."""

    def __init__(self, app: ASGIApp, *, verifier: KeyVerifier, events: SecurityEventLog,
                 cors: CorsState, throttle: FailureThrottle | None = None,
                 scopes: ScopePolicy | None = None, realm: str = "mcp", mcp_path: str = "/mcp",
                 health_path: str = "/health", require_tls: bool = False,
                 resource_url: str | None = None, rates: RateLimiter | None = None,
                 sessions: SessionRegistry | None = None, oauth: OAuthStep | None = None,
                 authorization_servers: list[str] | None = None, access: AccessLog | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.events = events
        self.cors = cors
        self.throttle = throttle or FailureThrottle()
        self.tarpit = Tarpit()
        self.scopes = scopes or ScopePolicy()
        self.realm = realm.replace('"', "")
        self.mcp_path = mcp_path
        self.health_path = health_path
        self.require_tls = require_tls
        self.discovery = ResourceMetadata(mcp_path, self.scopes.scopes_supported(), resource_url,
                                          authorization_servers)
        self.oauth = oauth  # server/oauth/step.py: `--auth oauth|both`
        self.rates = rates
        self.sessions = sessions
        self.access = access
        if sessions is not None:  # a request ended by revocation gets the same 401 as any other
            sessions.challenge_for = lambda req: self._with_metadata(req, self._invalid)
        self._last_touch: dict[str, float] = {}
        self._lookups = 0  # store reads in flight for refused attempts (see _reserve)
        self._verifying: dict[bytes, anyio.Event] = {}  # token digest -> its verification in flight
        self._identities: dict[str, tuple[Principal, Any, Any]] = {}  # key id -> (principal, user, auth)
        # Precomputed: these are on every refused request.
        self._challenge = f'Bearer realm="{self.realm}"'
        self._invalid = (self._challenge
                         + ', error="invalid_token", error_description="The access token is invalid"')

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = Request(scope)
        if req.path == self.health_path and req.method in ("GET", "HEAD"):
            status = "ok" if self.verifier.healthy else "degraded"
            await respond(send, 200 if status == "ok" else 503, {"status": status})
            return
        if self.require_tls and scope.get("scheme") != "https" and req.path.startswith(self.mcp_path):
            self._event(schema.PLAINTEXT_REFUSED, req, "plain HTTP on the MCP endpoint")
            await respond(send, 403, {"error": "https_required"})
            return

        origin = req.header("origin")
        if origin is not None:
            if not self.cors.policy.allows(origin):
                self._event(schema.CORS_REJECTED, req, "origin not allowed")
                await respond(send, 403, {"error": "origin_not_allowed"})
                return
            if req.method == "OPTIONS":
                await self._preflight(req, send, origin)
                return
            send = with_cors_headers(send, origin)
        if self.discovery.handles(req.path):
            await self.discovery.answer(req, send)
            return

        principal = await self._caller(req, scope, send)
        if principal is None:
            return
        if principal.allow_cidr and not allows(principal.allow_cidr, req.client_ip):
            self._event(schema.IP_REFUSED, req, "client IP outside the key's allowlist",
                        key_id=principal.key_id)
            await respond(send, 403, {"error": "ip_not_allowed"})
            return
        if self.rates is not None:
            wait = self.rates.wait(principal)
            if wait is not None:
                await self._over_quota(req, send, principal, "rate", wait)
                return

        call, ids = None, _NO_IDS
        if req.method == "POST" and req.path.startswith(self.mcp_path):
            checked = await self._check_scope(req, receive, send, principal)
            if checked is None:
                return
            receive, call, ids = checked
        await self._serve(req, scope, receive, send, principal, call, ids)

    async def _serve(self, req: Request, scope: Scope, receive: Receive, send: Send,
                     principal: Principal, call: AccessCall | None, ids: tuple[str, ...]) -> None:
        """The app, for an admitted request (its access records written when it ends)."""
        scope["user"], scope["auth"] = self._identity(principal)
        if principal.subject is None and principal.client_id is None:  # OAuth callers have no key
            self._maybe_touch(principal.key_id)
        if call is not None:
            send = call.watch(send)
        try:
            if self.sessions is None:
                await self.app(scope, receive, send)
            elif refused := await self.sessions.serve(req, principal, scope, receive, send, self.app, ids):
                if refused == DUPLICATE_ID:
                    await self._duplicate_id(req, send, principal,
                                             "JSON-RPC request id already in flight in this session")
                else:
                    await self._over_quota(req, send, principal, refused, 5)
        finally:
            if call is not None:
                call.finish()

    # -- steps ------------------------------------------------------------------------------

    async def _caller(self, req: Request, scope: Scope, send: Send) -> Principal | None:
        """The authenticated caller (OAuth token or API key), or None once refused."""
        token = bearer_token(req.header("authorization"))
        if self.oauth is not None and self.oauth.takes(token):
            principal = await self.oauth.authenticate(self, req, send, token)
            if principal is not None:  # no token passthrough: the app never sees the token
                scope["headers"] = [h for h in scope["headers"] if h[0].lower() != b"authorization"]
            return principal
        principal = self.verifier.cached(token) if token else None
        return principal or await self._authenticate(req, send, token)

    async def _authenticate(self, req: Request, send: Send, token: str | None) -> Principal | None:
        """Single flight: requests that carry a token already being verified wait for that one
        verification instead of starting their own (a client's parallel first requests are not
        refused as `client_busy`, and argon2 runs once). A waiter whose token did not verify
        makes its own attempt, throttled like any other."""
        if token is None:
            return await self._verify(req, send, None)
        digest = self.verifier.token_digest(token)
        running = self._verifying.get(digest)
        if running is not None:
            await running.wait()
            principal = self.verifier.cached(token)
            if principal is not None:
                return principal
            return await self._verify(req, send, token)
        done = self._verifying[digest] = anyio.Event()
        try:
            return await self._verify(req, send, token)
        finally:
            del self._verifying[digest]
            done.set()

    async def _verify(self, req: Request, send: Send, token: str | None) -> Principal | None:
        # One reading of the token: the id it claims keys the (IP, key id) window before argon2.
        parsed = read_token(token) if token else None
        key_id = parsed.key_id if parsed else None
        if token is None:
            wait = self.throttle.retry_after(req.client_ip)
            if wait is not None:
                await self._too_many(req, send, Refusal(TOO_MANY_FAILURES, wait), None)
                return None
            self.throttle.record(req.client_ip, None)
            self._event(schema.AUTH_FAILURE, req, "missing_credentials")
            await self._unauthorized(req, send, self._challenge)  # RFC 6750 §3.1: no error code
            return None
        attempt = await self._reserve(req, token, None if parsed and parsed.malformed else key_id)
        if isinstance(attempt, Refusal):
            await self._too_many(req, send, attempt, key_id)
            return None
        failed = True  # fail closed: an attempt cut short counts against its client
        try:
            result = await anyio.to_thread.run_sync(self.verifier.verify, token, _now(), parsed)
            failed = result.principal is None and result.reason != UNAVAILABLE
        finally:
            self.throttle.finish(attempt, failed)
        if result.principal is not None:
            return result.principal
        if result.reason == UNAVAILABLE:
            self._event(schema.STORE_UNAVAILABLE, req, "key store unreachable", key_id=result.key_id)
            await respond(send, 503, {"error": "temporarily_unavailable"}, [(b"retry-after", b"5")])
            return None
        self._event(schema.AUTH_FAILURE, req, result.reason, key_id=result.key_id or key_id)
        await self._unauthorized(req, send, self._invalid)
        return None

    async def _reserve(self, req: Request, token: str, key_id: str | None) -> Attempt | Refusal:
        """Reserve the attempt on arrival (server/throttle.py). A token that verified before,
        here or on any replica (the store shares it), is nobody's guess: it has its own lane."""
        known = self.verifier.previously_verified(token)
        attempt = self.throttle.reserve(req.client_ip, key_id, known)
        if isinstance(attempt, Refusal) and not known and key_id:
            verdict = self.verifier.shared_verdict(token, key_id)
            if verdict is None and self._lookups < self.throttle.max_verifying:
                self._lookups += 1  # store reads for refused attempts are bounded too
                try:
                    verdict = await anyio.to_thread.run_sync(
                        self.verifier.verified_elsewhere, token, key_id)
                finally:
                    self._lookups -= 1
            if verdict:
                attempt = self.throttle.reserve(req.client_ip, key_id, known=True)
        return attempt

    async def _too_many(self, req: Request, send: Send, refusal: Refusal, key_id: str | None) -> None:
        self._event(schema.RATE_LIMITED, req, refusal.reason, key_id=key_id)
        await self.tarpit.hold(req.client_ip)
        await respond(send, 429, {"error": "too_many_requests"},
                      [(b"retry-after", str(refusal.retry_after).encode())])

    async def _check_scope(self, req: Request, receive: Receive, send: Send, principal: Principal
                           ) -> tuple[Receive, AccessCall | None, tuple[str, ...]] | None:
        try:
            body = await read_body(receive)
            messages = jsonrpc_messages(body)
            denial = self.scopes.check(messages, principal.scopes)
        except BadBody as exc:
            self._event(schema.BAD_REQUEST, req, str(exc)[:100], key_id=principal.key_id)
            await respond(send, 400, {"error": "invalid_request"})
            return None
        if denial is None:
            ids = request_ids(messages)
            if len(ids) > 1 and len(set(ids)) < len(ids):  # a batch repeating an id
                await self._duplicate_id(req, send, principal, "JSON-RPC batch repeats a request id")
                return None
            call = self.access.begin(req, principal, messages, len(body)) if self.access else None
            return replay(body, receive), call, ids
        self._event(schema.INSUFFICIENT_SCOPE, req, denial.reason, key_id=principal.key_id,
                    client_id=principal.client_id)
        # RFC 6750 §3.1: scope= names what would grant it; nothing would for an unmapped method.
        challenge = self._challenge + ', error="insufficient_scope"'
        challenge += f', scope="{denial.scope}"' if denial.scope else ""
        await respond(send, 403, {"error": "insufficient_scope", "scope": denial.scope}, [
            (b"www-authenticate", self._with_metadata(req, challenge))])
        return None

    async def _duplicate_id(self, req: Request, send: Send, principal: Principal, reason: str) -> None:
        """MCP: a request id must not be reused in a session. One already in flight would take
        the other request's answer (the SDK keys answers by id), and that request stalled."""
        self._event(schema.BAD_REQUEST, req, reason, key_id=principal.key_id)
        await respond(send, 400, {"error": "invalid_request", "reason": "request id in use"})

    async def _preflight(self, req: Request, send: Send, origin: str) -> None:
        if not preflight_allowed(req):
            self._event(schema.CORS_REJECTED, req, "preflight asks for a method or header not allowed")
            await respond(send, 403, {"error": "preflight_refused"})
            return
        await answer_preflight(send, origin)

    async def _over_quota(self, req: Request, send: Send, principal: Principal, reason: str,
                          wait: int) -> None:
        self._event(schema.QUOTA_EXCEEDED, req, reason, key_id=principal.key_id)
        await self.tarpit.hold(req.client_ip)
        await respond(send, 429, {"error": "too_many_requests", "quota": reason},
                      [(b"retry-after", str(wait).encode())])

    async def _unauthorized(self, req: Request, send: Send, challenge: str) -> None:
        await respond(send, 401, {"error": "unauthorized"},
                      [(b"www-authenticate", self._with_metadata(req, challenge))])

    def _with_metadata(self, req: Request, challenge: str) -> bytes:
        """A challenge naming the RFC 9728 metadata URL, as MCP 2025-11-25 asks."""
        return f'{challenge}, resource_metadata="{self.discovery.metadata_url(req)}"'.encode()

    def _event(self, event: str, req: Request, reason: str, key_id: str | None = None,
               **extra: Any) -> None:
        self.events.emit(event, reason=reason, client_ip=req.client_ip, method=req.method,
                         path=req.path, key_id=key_id, origin=req.header("origin"),
                         user_agent=req.header("user-agent"), correlation_id=req.correlation_id,
                         **{k: v for k, v in extra.items() if v is not None})

    def _identity(self, principal: Principal) -> tuple[Any, Any]:
        """scope["user"] and scope["auth"] for a principal, built once per key (a key's id and
        scopes never change; pydantic construction per request was 10 µs)."""
        ident = self._identities.get(principal.key_id)
        if ident is None or ident[0] is not principal:  # the verifier caches one Principal per key
            if len(self._identities) > 10_000:
                self._identities.clear()
            if ident is not None and ident[0] == principal:  # an equal one (cache refilled): keep
                user, auth = ident[1], ident[2]                  # what was built, for the new object
            else:
                user, auth = _user(principal), _credentials(principal)
            ident = self._identities[principal.key_id] = (principal, user, auth)
        return ident[1], ident[2]

    def _maybe_touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._last_touch.get(key_id, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
            return
        self._last_touch[key_id] = now

        def touch() -> None:
            try:
                self.verifier.touch(key_id)
            except Exception:  # bookkeeping, not a security decision
                self._last_touch.pop(key_id, None)

        threading.Thread(target=touch, daemon=True).start()


def _now() -> datetime:
    return datetime.now(UTC)


def _user(principal: Principal) -> Any:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    # token carries the key id, never the secret: tools can read scope["user"]. The SDK binds a
    # session to (client_id, subject): for an OAuth caller, the user *and* the client app.
    claims: dict[str, Any] = {"name": principal.name}
    if principal.subject is not None or principal.client_id is not None:
        claims |= {"key_id": principal.key_id, "sub": principal.subject, "client_id": principal.client_id}
    return AuthenticatedUser(AccessToken(token=principal.key_id,
                                         client_id=principal.client_id or principal.key_id,
                                         subject=principal.subject, scopes=list(principal.scopes),
                                         claims={k: v for k, v in claims.items() if v is not None}))


def _credentials(principal: Principal) -> Any:
    from starlette.authentication import AuthCredentials

    return AuthCredentials(list(principal.scopes))
