"""stdio ⇄ Streamable-HTTP bridge (R22): lets stdio-only desktop MCP clients reach the secured
server over verified HTTPS.

A transparent proxy built on the SDK's stdio server and Streamable-HTTP client transports:
JSON-RPC requests, responses and notifications are forwarded both ways unchanged. What the
bridge adds:

- `Authorization: Bearer $MCP_API_KEY` on every request; the key never appears in argv, stderr,
  logs, JSON-RPC errors or exception text (every byte written to stderr and every error
  message passes through a redactor, including unexpected tracebacks).
- TLS always verified (system trust store, or MCP_CA_BUNDLE / SSL_CERT_FILE), hostname checked.
  `http://` only for loopback hosts and only with `--allow-http`. No switch disables checks.
- Errors a user can act on: a 401 becomes "authentication failed: check MCP_API_KEY", a 403
  names the missing scope, certificate and connection failures say which.
- Resilience: one failed request never ends the bridge; when the connection or the server's
  session is lost (e.g. the server restarted), the next message opens a new connection and
  replays the client's `initialize` handshake, so the desktop client never notices.
- The bridge never opens a URL the server sends (no browser, no shell): the CVE-2025-6514
  class of bug in mcp-remote cannot happen here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import sys
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import InvalidInput
from .keys import Secret

AUTH_FAILED = -32001  # implementation-defined server-error range of JSON-RPC
FORBIDDEN = -32003
UNAVAILABLE = -32002
REINIT_PREFIX = "mcpadmin-bridge-reinit-"


@dataclass(frozen=True)
class BridgeConfig:
    """Where to connect and how; from the environment the seed specifies."""

    url: str
    api_key: Secret | None = field(repr=False, default=None)
    ca_bundle: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_env(cls, url: str | None = None, allow_http: bool = False,
                 environ: dict[str, str] | None = None) -> BridgeConfig:
        """MCP_SERVER_URL, MCP_API_KEY, MCP_CA_BUNDLE (or SSL_CERT_FILE), MCP_TIMEOUT."""
        env = os.environ if environ is None else environ
        url = url or env.get("MCP_SERVER_URL", "")
        if not url:
            raise InvalidInput("no server URL: set MCP_SERVER_URL or pass URL")
        check_url(url, allow_http)
        key = env.get("MCP_API_KEY", "").strip()
        try:
            timeout = float(env.get("MCP_TIMEOUT") or 30)
        except ValueError:
            raise InvalidInput("MCP_TIMEOUT must be a number of seconds") from None
        if not 0 < timeout <= 3600:
            raise InvalidInput("MCP_TIMEOUT must be between 0 and 3600 seconds")
        ca = env.get("MCP_CA_BUNDLE") or env.get("SSL_CERT_FILE") or None
        if ca and not os.path.isfile(ca):
            raise InvalidInput(f"CA bundle {ca} does not exist")
        return cls(url=url, api_key=Secret(key) if key else None, ca_bundle=ca, timeout=timeout)


def check_url(url: str, allow_http: bool) -> None:
    """https:// always; http:// only to a loopback host and only when explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if not _is_loopback(parts.hostname):
            raise InvalidInput(f"refusing http:// to {parts.hostname}: the key would cross the "
                               "network in plaintext; use https://")
        if not allow_http:
            raise InvalidInput("http:// needs --allow-http (loopback only)")
        return
    raise InvalidInput(f"invalid server URL {url!r}: use https://host[:port]/mcp")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Redactor:
    """Removes secrets from text; wraps a stream so nothing written to it can leak one."""

    def __init__(self, *secrets: Secret | None) -> None:
        self._values = sorted({s.reveal() for s in secrets if s is not None and len(s.reveal()) >= 4},
                              key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text

    def wrap(self, stream: IO[str]) -> IO[str]:
        """A stream whose writes are redacted (used for the process's stderr)."""
        return _RedactingStream(stream, self)


class _RedactingStream:
    def __init__(self, stream: IO[str], redact: Redactor) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: str) -> int:
        return self._stream.write(self._redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def ssl_context(config: BridgeConfig) -> ssl.SSLContext:
    """Verifying context: the system trust store, or the given CA bundle; TLS 1.2+."""
    ctx = ssl.create_default_context(cafile=config.ca_bundle)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def describe_failure(exc: BaseException, url: str) -> str:
    """One actionable sentence for a transport failure (certificate, connection, timeout)."""
    leaves = _leaves(exc)
    text = " | ".join(f"{type(e).__name__}: {e}" for e in leaves)
    host = urlsplit(url).hostname or url
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" .") \
            if "certificate verify failed:" in text else "untrusted certificate"
        return (f"TLS certificate verification failed for {host}: {reason}. If the server uses a "
                "private CA, set MCP_CA_BUNDLE to its certificate file")
    if any(type(e).__name__ in ("ConnectError", "ConnectionRefusedError", "OSError") for e in leaves):
        return f"cannot connect to {url}: {_first(leaves)}"
    if any("Timeout" in type(e).__name__ for e in leaves):
        return f"the MCP server at {host} did not answer in time (MCP_TIMEOUT)"
    return f"connection to the MCP server at {host} failed: {_first(leaves)}"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    out = [exc]
    if exc.__cause__ is not None:
        out += _leaves(exc.__cause__)
    return out


def _first(leaves: list[BaseException]) -> str:
    for e in leaves:
        if str(e):
            return str(e).splitlines()[0][:200]
    return type(leaves[0]).__name__


def http_error_message(status: int, www_authenticate: str, retry_after: str | None) -> tuple[int, str]:
    """JSON-RPC (code, message) for an HTTP refusal from the secured server."""
    if status == 401:
        return AUTH_FAILED, ("authentication failed: the MCP server rejected the API key "
                             "(HTTP 401). Check MCP_API_KEY")
    if status == 403 and "insufficient_scope" in www_authenticate:
        scope = www_authenticate.split('scope="', 1)[-1].split('"', 1)[0] if 'scope="' in www_authenticate else "?"
        return FORBIDDEN, (f"permission denied: the API key lacks the scope {scope!r} this call "
                           "needs (HTTP 403). Ask the administrator for a key with that scope")
    if status == 403:
        return FORBIDDEN, "the MCP server refused the request (HTTP 403)"
    if status == 429:
        return UNAVAILABLE, (f"rate limited by the MCP server after failed attempts (HTTP 429)"
                             f"{'; retry after ' + retry_after + ' s' if retry_after else ''}")
    if status == 503:
        return UNAVAILABLE, "the MCP server is temporarily unavailable (HTTP 503); try again shortly"
    return UNAVAILABLE, f"the MCP server answered HTTP {status}"


# --- the running bridge --------------------------------------------------------------------


class _HeaderStamper:
    """The per-message HTTP headers an SDK ClientSession would stamp: MCP-Protocol-Version after
    a handshake-era initialize; version, method and name for 2026-era requests."""

    def __init__(self) -> None:
        self.version: str | None = None
        self._init_ids: set[Any] = set()

    def outbound(self, message: Any) -> dict[str, str] | None:
        from mcp.shared.inbound import (MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER,
                                        NAME_BEARING_METHODS, encode_header_value)
        from mcp_types import PROTOCOL_VERSION_META_KEY, JSONRPCNotification, JSONRPCRequest

        if isinstance(message, JSONRPCRequest | JSONRPCNotification):
            params = message.params or {}
            version = (params.get("_meta") or {}).get(PROTOCOL_VERSION_META_KEY)
            if version is not None:
                headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: message.method}
                name_key = NAME_BEARING_METHODS.get(message.method)
                if name_key and isinstance(params.get(name_key), str):
                    headers[MCP_NAME_HEADER] = encode_header_value(params[name_key])
                return headers
            if isinstance(message, JSONRPCRequest) and message.method == "initialize":
                self._init_ids.add(message.id)
                return None
        return {MCP_PROTOCOL_VERSION_HEADER: self.version} if self.version else None

    def inbound(self, message: Any) -> None:
        from mcp_types import JSONRPCResponse

        if isinstance(message, JSONRPCResponse) and message.id in self._init_ids:
            self._init_ids.discard(message.id)
            self.version = (message.result or {}).get("protocolVersion") or self.version


class Bridge:
    """Forwards between the stdio streams and one (replaceable) upstream connection."""

    def __init__(self, config: BridgeConfig, log: IO[str] | None = None) -> None:
        self.config = config
        self.redact = Redactor(config.api_key)
        self.log = log or sys.stderr
        self.stamper = _HeaderStamper()
        self.init_message: Any = None          # the client's initialize, replayed on reconnect
        self.initialized_message: Any = None   # and its notifications/initialized
        self.pending: dict[Any, Any] = {}      # request id -> SessionMessage, until answered
        self.retried: set[Any] = set()
        self.statuses: dict[Any, tuple[int, str, str | None]] = {}
        self._upstream_write: Any = None
        self._upstream_scope: Any = None
        self._upstream_generation = 0
        self._upstream_failed: str | None = None
        self._reinit_waiters: dict[str, Any] = {}
        self._reinit_count = 0
        self._stdout: Any = None
        self._tg: Any = None
        self._connect_lock: Any = None

    def note(self, text: str) -> None:
        """A diagnostic line on stderr (redacted)."""
        self.log.write(self.redact(f"finops-mcp-bridge: {text}\n"))
        self.log.flush()

    async def run(self) -> None:
        """Until stdin closes."""
        import anyio
        from mcp.server.stdio import stdio_server

        self._connect_lock = anyio.Lock()  # one connection attempt at a time
        async with stdio_server() as (stdin, stdout):
            async with stdout:  # closing it lets the SDK's writer task, and so the bridge, end
                async with anyio.create_task_group() as tg:
                    self._stdout, self._tg = stdout, tg
                    async for item in stdin:
                        if isinstance(item, Exception):
                            self.note("ignored a line on stdin that is not JSON-RPC")
                            continue
                        await self._forward_up(item)
                    tg.cancel_scope.cancel()  # stdin closed: the desktop client is gone

    # -- stdin -> server -------------------------------------------------------------------

    async def _forward_up(self, item: Any) -> None:
        from mcp_types import JSONRPCNotification, JSONRPCRequest

        message = item.message
        if isinstance(message, JSONRPCRequest):
            if message.method == "initialize":
                self.init_message = message
            self.pending[message.id] = item
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/initialized":
            self.initialized_message = message
        write = await self._ensure_upstream(replay=message is not self.init_message)
        if write is None:
            await self._fail_pending(self._upstream_failed or "cannot reach the MCP server")
            return
        await self._send(write, message)

    async def _send(self, write: Any, message: Any) -> None:
        from mcp.shared.message import ClientMessageMetadata, SessionMessage

        headers = self.stamper.outbound(message)
        await write.send(SessionMessage(message, metadata=ClientMessageMetadata(headers=headers)
                                        if headers else None))

    async def _ensure_upstream(self, replay: bool) -> Any:
        """The live upstream's write stream, opening (and re-initialising) one if needed."""

        async with self._connect_lock:
            return await self._connect(replay)

    async def _connect(self, replay: bool) -> Any:
        import anyio

        if self._upstream_write is not None:
            return self._upstream_write
        ready = anyio.Event()
        self._upstream_failed = None
        self._upstream_generation += 1
        self._tg.start_soon(self._upstream, ready, self._upstream_generation)
        await ready.wait()
        write = self._upstream_write
        if write is not None and replay and self.init_message is not None:
            if not await self._replay_handshake(write):
                return None
        return self._upstream_write

    async def _replay_handshake(self, write: Any) -> bool:
        import anyio
        from mcp_types import JSONRPCRequest

        self._reinit_count += 1
        rid = f"{REINIT_PREFIX}{self._reinit_count}"
        done = anyio.Event()
        self._reinit_waiters[rid] = done
        init = JSONRPCRequest(jsonrpc="2.0", id=rid, method="initialize", params=self.init_message.params)
        self.stamper.version = None
        await self._send(write, init)
        with anyio.move_on_after(self.config.timeout):
            await done.wait()
        self._reinit_waiters.pop(rid, None)
        if not done.is_set() or self._upstream_write is None:
            self._upstream_failed = self._upstream_failed or "the MCP server did not answer the handshake"
            self._drop_upstream()
            return False
        if self.initialized_message is not None:
            await self._send(write, self.initialized_message)
        self.note("reconnected to the MCP server")
        return True

    def _drop_upstream(self) -> None:
        """Abandon the current connection (its session is gone); the next message opens one."""
        self._upstream_write = None
        self._upstream_generation += 1  # the old connection's exit must not fail our requests
        if self._upstream_scope is not None:
            self._upstream_scope.cancel()
            self._upstream_scope = None

    async def _upstream(self, ready: Any, generation: int) -> None:
        import anyio
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def on_response(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                try:
                    rid = json.loads(response.request.content or b"null").get("id")
                except (ValueError, AttributeError):
                    rid = None
                self.statuses[rid] = (response.status_code, response.headers.get("www-authenticate", ""),
                                      response.headers.get("retry-after"))

        headers = {"User-Agent": "finops-mcp-bridge"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.reveal()}"
        timeout = httpx2.Timeout(self.config.timeout, read=max(self.config.timeout, 60.0))
        reason = "the connection to the MCP server was replaced"
        scope = anyio.CancelScope()
        self._upstream_scope = scope
        try:
            with scope:
                async with httpx2.AsyncClient(headers=headers, verify=ssl_context(self.config),
                                              timeout=timeout, follow_redirects=False,
                                              event_hooks={"response": [on_response]}) as http:
                    async with streamable_http_client(self.config.url, http_client=http) as (read, write):
                        self._upstream_write = write
                        ready.set()
                        async for item in read:
                            if isinstance(item, Exception):
                                self.note(f"ignored a malformed message from the server: {type(item).__name__}")
                                continue
                            await self._forward_down(item, generation)
                        reason = "the MCP server closed the connection"
        except Exception as exc:  # noqa: BLE001 - every transport failure ends this upstream only
            reason = describe_failure(exc, self.config.url)
        if generation != self._upstream_generation:
            return  # superseded on purpose: its requests were handed to the new connection
        self._upstream_write = None
        self._upstream_failed = self.redact(reason)
        self.note(self._upstream_failed)
        ready.set()
        for waiter in list(self._reinit_waiters.values()):
            waiter.set()
        await self._fail_pending(self._upstream_failed)

    # -- server -> stdout -------------------------------------------------------------------

    async def _forward_down(self, item: Any, generation: int) -> None:
        from mcp_types import ErrorData, JSONRPCError, JSONRPCResponse

        if generation != self._upstream_generation:
            return  # from a connection we abandoned: its requests were resent on the new one
        message = item.message
        mid = getattr(message, "id", None)
        if isinstance(mid, str) and mid.startswith(REINIT_PREFIX):
            status = self.statuses.pop(mid, None)
            if isinstance(message, JSONRPCResponse):
                self.stamper.version = (message.result or {}).get("protocolVersion")
            else:
                self._upstream_failed = (http_error_message(*status)[1] if status else
                                         "the MCP server refused the replayed handshake")
                self._drop_upstream()
            waiter = self._reinit_waiters.get(mid)
            if waiter is not None:
                waiter.set()
            return
        self.stamper.inbound(message)
        if isinstance(message, JSONRPCError) and mid in self.pending:
            status = self.statuses.pop(mid, None)
            session_lost = (status is not None and status[0] == 404) or message.error.message == "Session terminated"
            if session_lost and mid not in self.retried and self.init_message is not None:
                # The server lost our session (it restarted): reconnect, replay the client's
                # handshake, and resend every request still waiting (once each). The client
                # never sees the gap.
                self._drop_upstream()
                self._tg.start_soon(self._resend_pending)
                return
            if status is not None:
                code, text = http_error_message(*status)
                message = JSONRPCError(jsonrpc="2.0", id=mid, error=ErrorData(code=code, message=text))
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self.pending.pop(mid, None)
            self.retried.discard(mid)
        if isinstance(message, JSONRPCError):
            message = JSONRPCError(jsonrpc="2.0", id=message.id, error=ErrorData(
                code=message.error.code, message=self.redact(message.error.message),
                data=message.error.data))
        await self._write_stdout(message)

    async def _resend_pending(self) -> None:
        for rid, item in list(self.pending.items()):
            if rid in self.retried or rid not in self.pending:
                continue
            self.retried.add(rid)
            await self._forward_up(item)

    async def _write_stdout(self, message: Any) -> None:
        from mcp.shared.message import SessionMessage

        await self._stdout.send(SessionMessage(message))

    async def _fail_pending(self, reason: str) -> None:
        from mcp_types import ErrorData, JSONRPCError

        for rid in list(self.pending):
            self.pending.pop(rid, None)
            self.retried.discard(rid)
            await self._write_stdout(JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(
                code=UNAVAILABLE, message=self.redact(reason))))


def run_bridge(config: BridgeConfig) -> None:
    """Run until stdin closes. stderr is redacted for the whole process lifetime."""
    import anyio

    bridge = Bridge(config)
    sys.stderr = Redactor(config.api_key).wrap(sys.stderr)  # tracebacks, warnings, logging too
    bridge.log = sys.stderr
    anyio.run(bridge.run)
