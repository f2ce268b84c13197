"""Open MCP sessions and in-flight requests, per key: the session cap, session security events,
and ending what a key has open when it is revoked, expires or its rotation grace ends.

How the envelope sees sessions (Streamable HTTP, MCP 2025-11-25): a POST without
`Mcp-Session-Id` answered < 400 with an `Mcp-Session-Id` header opened that session; a DELETE
with the id answered < 400 closed it; an id the app answers 404 for has ended in the app. The
SDK (mcp 2.x, StreamableHTTPSessionManager) also ends a session by itself when no request has
been in flight for its idle timeout (30 min) or when its task crashes; a closed GET stream does
not end a session. So the registry keeps the same idle clock (requests in flight hold a session,
the countdown starts when the last one ends) and, when it runs out, ends the session itself with
a DELETE to the app: the count follows what the app holds and cannot only go up.

Ending a key's requests: every request's task is listed under its key and cancelled natively
(asyncio; an anyio cancel scope per request cost ~6 µs, a third of the envelope). A
sweep (a thread woken by store changes, else every TICK seconds, that runs the work on the
event loop) re-reads the records of keys with anything open after a store change, and compares
known expiry times with the clock; a revoked or expired key's requests are cancelled (a started
response is ended cleanly, a waiting one answered 401) and its sessions are deleted in the app.
Session ids are bearer-like: events carry a short SHA-256 of the id, never the id.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from ..allowlist import allows
from ..security_events import schema
from ..security_events.writer import SecurityEventLog
from ._asgi import ASGIApp, Message, Receive, Request, Scope, Send, respond
from .auth import KeyVerifier, Principal

#: Seconds between sweeps when nothing wakes the sweeper (expiry is noticed within this).
TICK = 0.05
#: Seconds between scans for sessions past their idle timeout.
IDLE_SCAN = 1.0
#: The SDK's own idle timeout (mcp.server.streamable_http_manager.DEFAULT_SESSION_IDLE_TIMEOUT).
DEFAULT_IDLE_TIMEOUT = 30 * 60.0
_MAX_SESSION_ID = 256
#: Why SessionRegistry.serve refused a request.
MAX_SESSIONS, DUPLICATE_ID = "max_sessions", "duplicate_id"


def session_digest(session_id: str) -> str:
    """What events show of a session id: 12 hex digits of its SHA-256."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class _Session:
    __slots__ = ("client_ip", "id", "idle_since", "ids", "in_flight", "key_id", "template")

    def __init__(self, session_id: str, key_id: str, client_ip: str, template: Scope) -> None:
        self.id, self.key_id, self.client_ip = session_id, key_id, client_ip
        self.template = template  # the opening request's scope: identity for our own DELETE
        self.in_flight = 0
        self.ids: set[str] = set()  # JSON-RPC request ids in flight (scopes.request_ids)
        self.idle_since = time.monotonic()


class _Call:
    """One request in flight: watches its response and can be cancelled."""

    __slots__ = ("completed", "ended", "key", "opening", "registry", "req", "scope", "send_on",
                 "started", "status", "task")

    def __init__(self, registry: SessionRegistry, key: str, send: Send, req: Request, scope: Scope,
                 opening: bool) -> None:
        self.registry, self.key, self.send_on, self.req, self.scope, self.opening = (
            registry, key, send, req, scope, opening)
        self.started = self.completed = self.ended = False
        self.status = 0
        self.task = asyncio.current_task()

    def end(self) -> None:
        """Cancel the request's task (it is suspended inside the app: the loop runs us)."""
        if not self.ended and self.task is not None:
            self.ended = True
            self.task.cancel()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started, self.status = True, message["status"]
            if self.opening:
                self.opening = False
                self.registry._opened(self, message)
        elif not message.get("more_body"):
            self.completed = True
        await self.send_on(message)


class SessionRegistry:
    """Sessions and requests by key (event-loop state; the sweeper thread only wakes the loop)."""

    def __init__(self, events: SecurityEventLog, verifier: KeyVerifier, *, max_sessions: int = 64,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.events, self.verifier = events, verifier
        self.max_sessions, self.idle_timeout = max_sessions, idle_timeout
        #: The 401 challenge for a request it ends: the envelope installs its own (realm and
        #: `resource_metadata`, MCP 2025-11-25), so every 401 of the server reads the same.
        self.challenge_for: Callable[[Request], bytes] = lambda _req: b'Bearer error="invalid_token"'
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._by_key: dict[str, set[str]] = {}
        self._pending: dict[str, int] = {}
        self._calls: dict[str, set[_Call]] = {}
        self._principals: dict[str, Principal] = {}
        self._expiry: dict[str, datetime | None] = {}
        self._rotated: set[str] = set()
        self._revoked: set[str] = set()
        self._allow: dict[str, tuple[str, ...]] = {}  # allowlists read by the last store change
        self._app: ASGIApp | None = None
        self._token: Any = None
        self._changed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_idle_scan = 0.0

    # -- the request path -------------------------------------------------------------------

    def open_count(self, key_id: str) -> int:
        """Sessions the key holds (plus openings in flight)."""
        return len(self._by_key.get(key_id, ())) + self._pending.get(key_id, 0)

    async def serve(self, req: Request, principal: Principal, scope: Scope, receive: Receive,
                    send: Send, app: ASGIApp, ids: tuple[str, ...] = ()) -> str | None:
        """Run the app for one authenticated request (None), or refuse it without calling the
        app: MAX_SESSIONS when it would open a session beyond the key's cap, DUPLICATE_ID when
        one of its JSON-RPC request ids (`ids`) is already in flight in its session. The SDK
        keys answers by id, so the second such request took the first one's answer and the
        first waited for ever, holding its session and its task."""
        key = principal.key_id
        if self._token is None:
            self._start(app)
        session_id = req.header("mcp-session-id")
        session = None
        opening = session_id is None and req.method == "POST"
        if opening:
            if self.open_count(key) >= (principal.max_sessions or self.max_sessions):
                return MAX_SESSIONS
            self._pending[key] = self._pending.get(key, 0) + 1
        elif session_id is not None:
            session = self._sessions.get(session_id)
            if session is not None and session.key_id == key:
                if ids and not session.ids.isdisjoint(ids):
                    return DUPLICATE_ID
                session.in_flight += 1
                session.ids.update(ids)
            else:
                session = None
        if self._principals.get(key) is not principal:
            self._principals[key] = principal
            self._expiry[key] = principal.expires_at
        call = _Call(self, key, send, req, scope, opening)
        self._calls.setdefault(key, set()).add(call)
        try:
            try:
                await app(scope, receive, call.send)
            except asyncio.CancelledError:
                if not call.ended:
                    raise
            if call.ended:  # our cancellation reached the app (raised, or swallowed there)
                if call.task is not None and call.task.uncancel():
                    raise asyncio.CancelledError  # cancelled by someone else too (shutdown)
                await self._finish_cancelled(call, send)
        finally:
            self._request_done(key, call, session, opening, ids)
        return None

    def _opened(self, call: _Call, message: Message) -> None:
        key = call.key
        self._pending[key] -= 1
        session_id = None
        if message["status"] < 400:
            for name, value in message.get("headers", ()):
                if name.lower() == b"mcp-session-id" and len(value) <= _MAX_SESSION_ID:
                    session_id = value.decode("latin-1")
        if session_id is None or session_id in self._sessions:
            return
        template = {k: v for k, v in call.scope.items() if k not in ("headers", "method")}
        session = self._sessions[session_id] = _Session(session_id, key, call.req.client_ip, template)
        self._by_key.setdefault(key, set()).add(session_id)
        self._emit(schema.SESSION_OPENED, None, session, call.req)

    def _request_done(self, key: str, call: _Call, session: _Session | None, opening: bool,
                      ids: tuple[str, ...]) -> None:
        if call.opening:  # the app never started a response
            self._pending[key] -= 1
        if opening and not self._pending.get(key):
            self._pending.pop(key, None)
        calls = self._calls.get(key)
        if calls is not None:
            calls.discard(call)
            if not calls:
                del self._calls[key]
        if session is not None:
            session.in_flight -= 1
            session.ids.difference_update(ids)  # the session's ids were added with in_flight
            session.idle_since = time.monotonic()
            if session.id in self._sessions and (call.status == 404 or (
                    call.req.method == "DELETE" and 200 <= call.status < 400)):
                self._forget(session)
                self._emit(schema.SESSION_CLOSED, "deleted" if call.status != 404 else "ended_in_app",
                           session, call.req)
        if key not in self._calls and key not in self._by_key:
            self._principals.pop(key, None)
            self._expiry.pop(key, None)
            self._rotated.discard(key)
            self._revoked.discard(key)

    async def _finish_cancelled(self, call: _Call, send: Send) -> None:
        """A request we ended: answer it if nothing was sent, else end its body cleanly."""
        with contextlib.suppress(Exception):  # the client may be gone already
            if not call.started:
                call.status = 401
                await respond(send, 401, {"error": "unauthorized"}, [
                    (b"www-authenticate", self.challenge_for(call.req))])
            elif not call.completed:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _forget(self, session: _Session) -> None:
        self._sessions.pop(session.id, None)
        ids = self._by_key.get(session.key_id)
        if ids is not None:
            ids.discard(session.id)
            if not ids:
                del self._by_key[session.key_id]

    def _emit(self, event: str, reason: str | None, session: _Session, req: Request | None) -> None:
        self.events.emit(event, reason=reason, key_id=session.key_id,
                         session=session_digest(session.id),
                         client_ip=req.client_ip if req is not None else session.client_ip,
                         method=req.method if req is not None else None,
                         path=req.path if req is not None else session.template.get("path"),
                         user_agent=req.header("user-agent") if req is not None else None)

    # -- the sweeper ------------------------------------------------------------------------

    def store_changed(self) -> None:
        """The store changed (any thread): re-check the keys with something open."""
        self._changed = True
        self._wake.set()

    def _start(self, app: ASGIApp) -> None:
        self._app = app
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.Thread(target=self._run, name="session-sweeper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the sweeper thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                return
            changed, self._changed = self._changed, False
            if not (self._calls or self._sessions) or not (changed or self._due()):
                continue
            try:
                anyio.from_thread.run(self.sweep, changed, token=self._token)
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the event loop is gone, or cancelled the sweep: the server is shutting down

    def _due(self) -> bool:
        """Whether a sweep without a store change would end anything now (sweeper thread).

        A hop onto the event loop costs ~0.3 ms of CPU: made every tick while anything was
        open, the sweeper took 0.85 % of a core with one idle session (0.25 % now, most of it
        the tick's own wake-up). So hop only when a known expiry has passed, a key is marked
        revoked, or a session may have idled out. The reads race with the loop: a stale one
        only moves a sweep by a tick, and the sweep decides on the loop."""
        if self._revoked:
            return True
        now, expiry = self._clock(), self._expiry
        for key in [*self._calls, *self._by_key]:
            expires_at = expiry.get(key)
            if expires_at is not None and now >= expires_at:
                return True
        mono = time.monotonic()
        if mono - self._last_idle_scan < IDLE_SCAN:
            return False
        if any(not s.in_flight and mono - s.idle_since >= self.idle_timeout
               for s in list(self._sessions.values())):
            return True  # the sweep's own idle scan is due too and ends them
        self._last_idle_scan = mono
        return False

    async def sweep(self, store_changed: bool) -> None:
        """End what revoked or expired keys have open; end idle sessions."""
        keys = set(self._calls) | set(self._by_key)
        if store_changed and keys:
            await anyio.to_thread.run_sync(self._read_records, keys)
        now = self._clock()
        for key in keys:
            expires_at = self._expiry.get(key)
            if key in self._revoked:
                await self.terminate(key, "revoked")
            elif expires_at is not None and now >= expires_at:
                await self.terminate(key, "rotation_grace_ended" if key in self._rotated else "expired")
            else:
                self._end_outside_allowlist(key)
        mono = time.monotonic()
        if mono - self._last_idle_scan >= IDLE_SCAN:
            self._last_idle_scan = mono
            for session in [s for s in self._sessions.values()
                            if not s.in_flight and mono - s.idle_since >= self.idle_timeout]:
                self._forget(session)
                self._emit(schema.SESSION_CLOSED, "idle", session, None)
                await self._delete_in_app(session)

    def _read_records(self, keys: set[str]) -> None:
        """Fresh expiry and state of each key from the store (worker thread). A key the store
        does not know (a static hash) or a store that cannot be read keeps what we knew: new
        requests are refused by the verifier meanwhile, and the next change re-reads."""
        store = self.verifier.store
        if store is None:
            return
        found = {}
        try:
            with self.verifier.store_lock:
                for key in keys:
                    stored = store.get(key)
                    if stored is not None:
                        found[key] = stored.key
        except Exception:  # store unreachable: the verifier's stale-grace rules apply
            return
        for key, record in found.items():
            self._expiry[key] = record.expires_at
            self._allow[key] = record.allow_cidr
            if record.state == "revoked":
                self._revoked.add(key)
            if record.rotated_to is not None:
                self._rotated.add(key)

    def _end_outside_allowlist(self, key: str) -> None:
        """A changed IP allowlist ends the key's requests in flight (event streams included)
        from addresses it no longer admits, as revocation does; new ones get 403."""
        cidrs = self._allow.pop(key, ())
        for call in list(self._calls.get(key, ())) if cidrs else ():
            if not allows(cidrs, call.req.client_ip):
                call.end()
                self.events.emit(schema.IP_REFUSED, reason="allowlist changed: open request ended",
                                 client_ip=call.req.client_ip, key_id=key, path=call.req.path)

    async def terminate(self, key_id: str, reason: str) -> None:
        """End every request and session of a key, with a session_terminated event each."""
        for call in list(self._calls.get(key_id, ())):
            call.end()
        for session_id in list(self._by_key.get(key_id, ())):
            session = self._sessions[session_id]
            self._forget(session)
            self._emit(schema.SESSION_TERMINATED, reason, session, None)
            await self._delete_in_app(session)
        self._expiry.pop(key_id, None)
        self._revoked.discard(key_id)

    async def _delete_in_app(self, session: _Session) -> None:
        """DELETE the session in the app, as its owner (so the app frees it and ends its
        streams)."""
        if self._app is None:
            return
        scope = {**session.template, "method": "DELETE",
                 "headers": [(b"mcp-session-id", session.id.encode("latin-1"))]}
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        async def discard(_message: Message) -> None:
            return None

        with anyio.move_on_after(5), contextlib.suppress(Exception):  # best effort: counted gone
            await self._app(scope, receive, discard)
