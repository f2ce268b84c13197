"""`mcpadmin serve` as a Python function: build the envelope around an MCP app and run uvicorn
(one HTTPS listener, an optional plain-HTTP redirect listener).

Only `mcpadmin serve` imports this module (lazily), so uvicorn is imported at the top here and
never on the CLI's start-up path."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..config import Settings, env_flag
from ..cors import effective_policy, normalize_all
from ..errors import InvalidInput
from ..keys import KeyHasher
from ..quotas import check_max_sessions, parse_rate
from ..security_events import schema
from ..security_events.writer import SecurityEventLog
from ..store import KeyStore
from .access import AccessLog, AccessMode
from .app import SecurityEnvelope
from .auth import KeyVerifier, load_static_hashes
from .connections import DeadlineEventLoop, GuardedConfig
from .cors import CorsState
from .listeners import ListeningServer, bind, bound_port, check_port, check_tls_files
from .oauth.setup import auth_mode, canonical_url, oauth_setup
from .quotas import RateLimiter
from .scopes import TOOLS_READ, ScopePolicy
from .sessions import DEFAULT_IDLE_TIMEOUT, SessionRegistry
from .throttle import FailureThrottle
from .transport import RedirectApp, check_cidrs
from .watcher import StoreWatcher


@dataclass
class ServeOptions:
    """Everything `mcpadmin serve` takes besides the store settings."""

    host: str = "127.0.0.1"
    port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    redirect_port: int | None = None
    trusted_proxies: list[str] = field(default_factory=list)
    behind_proxy: bool = False
    production: bool = False
    cors_origins: list[str] = field(default_factory=list)
    log_file: str | None = None
    log_stdout: bool = True
    app_ref: str | None = None
    policy_file: str | None = None
    tool_scopes: dict[str, str] = field(default_factory=dict)
    default_scope: str | None = None  # None: tools:read, or refused under --app
    resource_url: str | None = None
    hashes_file: str | None = None
    use_store: bool = True
    realm: str = "mcp"
    mcp_path: str = "/mcp"
    poll_interval: float = 0.25
    stale_grace: float = 300.0
    max_failures: int = 10
    failure_window: float = 60.0
    max_sessions_per_key: int = 64
    rate_per_key: str | None = None
    session_idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    header_timeout: float = 10.0
    handshake_timeout: float = 10.0
    max_connections: int = 1000
    max_verifying: int | None = None  # None: one per core (throttle.default_max_verifying)
    max_verifying_per_ip: int = 2
    stdio: Any = None  # a stdio.options.StdioOptions: `serve --stdio -- COMMAND`
    # Seconds SIGTERM waits for open connections. Without a bound, one idle keep-alive TLS
    # connection held shutdown (and the app's lifespan end, which ends stdio children) forever.
    shutdown_timeout: float = 3.0
    auth: str | None = None  # api-key | oauth | both (server/oauth/setup.py)
    oauth_issuer: str | None = None
    public_url: str | None = None
    oauth_introspection_url: str | None = None
    oauth_audience: str | None = None
    oauth_jwks_min_refetch: float = 10.0
    access_log: str = "all"  # server/access.py: all | writes | none

    @classmethod
    def from_env(cls, **overrides: Any) -> ServeOptions:
        """Apply the seed's environment variables (R18.5, R20.4) under explicit flags."""
        opts = cls(**{k: v for k, v in overrides.items() if v is not None})
        if env_flag("TLS_ENABLED") and not opts.tls_cert:
            opts.tls_cert = os.environ.get("TLS_CERT_FILE") or None
            opts.tls_key = os.environ.get("TLS_KEY_FILE") or None
            if not (opts.tls_cert and opts.tls_key):
                raise InvalidInput("TLS_ENABLED=true needs TLS_CERT_FILE and TLS_KEY_FILE")
        if os.environ.get("ENVIRONMENT", "").lower() == "production":
            opts.production = True
        return opts

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


def default_tool_scopes() -> dict[str, str]:
    """Write tools need tools:write; everything else the default scope."""
    from .tools import WRITE_TOOLS

    return {name: "tools:write" for name in WRITE_TOOLS}


@dataclass
class Server:
    """A built (not yet running) server: the ASGI app and what must start and stop with it."""

    app: Any
    verifier: KeyVerifier
    watcher: StoreWatcher | None
    events: SecurityEventLog
    cors: CorsState
    options: ServeOptions
    store: KeyStore | None

    warnings: list[str] = field(default_factory=list)
    sessions: SessionRegistry | None = None
    access: AccessLog | None = None

    def close(self) -> None:
        """Stop what `build` (and `serve`) started: the access trail's writer before the log."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.sessions is not None:
            self.sessions.close()
        if self.access is not None:
            self.access.close()
        self.events.close()
        if self.store is not None:
            self.store.close()

    def reload(self) -> None:
        """SIGHUP: reopen the event log (logrotate) and re-read the static hashes."""
        self.events.reopen()
        self.reload_static_hashes()

    def reload_static_hashes(self) -> None:
        """Re-read MCP_API_KEY_HASHES and the hashes file; drop the cache."""
        try:
            self.verifier.static_hashes = load_static_hashes(
                os.environ.get("MCP_API_KEY_HASHES"), self.options.hashes_file)
        except InvalidInput as exc:  # keep the old set: a typo must not lock everyone out
            self.events.emit(schema.CONFIG_RELOAD_FAILED, reason=str(exc), client_ip="local")
            return
        self.verifier.invalidate()
        self.events.emit(schema.CONFIG_RELOADED, reason="static hashes re-read", client_ip="local")


def _check_startup(opts: ServeOptions, cors_env_wildcard: bool, allowlist: set[str]) -> None:
    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise InvalidInput("--tls-cert and --tls-key go together")
    if opts.production:
        if cors_env_wildcard:
            raise InvalidInput("production mode refuses CORS_ALLOWED_ORIGINS='*': list the origins")
        if not allowlist:
            raise InvalidInput("production mode needs a CORS allowlist (CORS_ALLOWED_ORIGINS, "
                               "--cors-origin or mcpadmin cors add)")
        if not opts.tls and not opts.behind_proxy:
            raise InvalidInput("production mode needs TLS (--tls-cert/--tls-key or TLS_ENABLED) "
                               "or --behind-proxy when an ALB terminates TLS")
    if min(opts.header_timeout, opts.handshake_timeout) <= 0 or opts.max_connections < 1:
        raise InvalidInput("--header-timeout and --handshake-timeout must be > 0, --max-connections ≥ 1")
    if (opts.max_verifying is not None and opts.max_verifying < 1) or opts.max_verifying_per_ip < 1:
        raise InvalidInput("--max-verifying and --max-verifying-per-ip must be at least 1")
    if opts.stdio is not None and opts.app_ref:
        raise InvalidInput("--stdio and --app each give the server to secure: use one")
    if opts.redirect_port is not None and not opts.tls:
        raise InvalidInput("--redirect-port needs TLS: it redirects to the HTTPS listener")


def _load_app(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"invalid --app {ref!r}: use module:attribute")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot load --app {ref!r}: {exc}") from None


def build(settings: Settings, opts: ServeOptions) -> Server:
    """Open the store, read the allowlist and hashes, build the envelope. Fails on bad config."""
    static = load_static_hashes(os.environ.get("MCP_API_KEY_HASHES"), opts.hashes_file)
    store = settings.open_store(retries=1) if opts.use_store else None
    flag_origins = normalize_all(opts.cors_origins)
    policy = effective_policy(store.cors_origins() if store else (), flag_origins)
    _check_startup(opts, policy.any_origin, set(policy.allowed))
    warnings = ["CORS_ALLOWED_ORIGINS='*' admits every origin (development only; refused in "
                "production mode)"] if policy.any_origin else []
    if not store and not static and auth_mode(settings, opts) == "api-key":
        raise InvalidInput("no keys: use a store or MCP_API_KEY_HASHES / --hashes-file")
    check_cidrs(opts.trusted_proxies)

    verifier = KeyVerifier(store, KeyHasher(settings.hash_params), static,
                           stale_grace=opts.stale_grace)
    cors = CorsState(policy)
    events = SecurityEventLog(to_stdout=opts.log_stdout, path=opts.log_file)
    scopes = _scope_policy(settings, opts)
    if opts.stdio is not None:
        from .stdio.setup import build_gateway

        inner, scopes = build_gateway(opts.stdio, scopes, events)
    elif opts.app_ref:
        inner = _load_app(opts.app_ref)
    else:
        from .tools import PolicyHolder, build_mcp_app

        inner = build_mcp_app(PolicyHolder(opts.policy_file))
    oauth = oauth_setup(settings, opts, scopes)
    public_url = oauth.resource_url if oauth else canonical_url(settings, opts)
    sessions = _sessions(opts, events, verifier)
    access = _access_log(opts, events, scopes, warnings)
    app: Any = SecurityEnvelope(inner, verifier=verifier, events=events, cors=cors,
                                throttle=FailureThrottle(
                                    opts.max_failures, opts.failure_window,
                                    max_verifying=opts.max_verifying,
                                    max_verifying_per_ip=opts.max_verifying_per_ip),
                                scopes=scopes, realm=opts.realm, mcp_path=opts.mcp_path,
                                require_tls=opts.tls or opts.behind_proxy, sessions=sessions,
                                resource_url=public_url, oauth=oauth.step if oauth else None,
                                authorization_servers=[oauth.issuer] if oauth else None,
                                rates=RateLimiter(parse_rate(opts.rate_per_key) if opts.rate_per_key
                                                  else None), access=access)
    if opts.trusted_proxies:
        app = ProxyHeadersMiddleware(app, trusted_hosts=check_cidrs(opts.trusted_proxies))
    watcher = None if store is None else _watcher(store, verifier, cors, flag_origins, opts.poll_interval,
                                                  sessions)
    return Server(app, verifier, watcher, events, cors, opts, store, warnings, sessions, access)


def _access_log(opts: ServeOptions, events: SecurityEventLog, scopes: ScopePolicy,
                warnings: list[str]) -> AccessLog:
    try:
        mode = AccessMode(opts.access_log)
    except ValueError:
        raise InvalidInput(f"invalid --access-log {opts.access_log!r}: use all, writes or none") from None
    if mode is AccessMode.none:
        warnings.append("--access-log none: no access trail, not even of write-tool calls")
    return AccessLog(events, mode, scopes)


def _sessions(opts: ServeOptions, events: SecurityEventLog, verifier: KeyVerifier) -> SessionRegistry:
    check_max_sessions(opts.max_sessions_per_key)
    if not opts.session_idle_timeout > 0:
        raise InvalidInput("--session-idle-timeout must be a positive number of seconds")
    return SessionRegistry(events, verifier, max_sessions=opts.max_sessions_per_key,
                           idle_timeout=opts.session_idle_timeout)


def _scope_policy(settings: Settings, opts: ServeOptions) -> ScopePolicy:
    """Flags over the config file. The built-in tools are all mapped; a wrapped app's tools
    are refused unless mapped or given a default (`--default-scope`, `default_tool_scope`)."""
    default = opts.default_scope or settings.default_tool_scope
    wrapped = opts.app_ref or opts.stdio is not None  # tools nobody here has reviewed
    if default is None and not wrapped:
        default = TOOLS_READ
    tools = {**settings.tool_scopes, **opts.tool_scopes}
    if not wrapped:
        tools = {**default_tool_scopes(), **tools}
    return ScopePolicy(tools, default, settings.method_scopes)


def stdio_scope_rows(settings: Settings, opts: ServeOptions) -> list[Any]:
    """`serve --stdio --print-scope-map`: what each of the stdio server's tools will need."""
    from .stdio.setup import scope_rows

    return scope_rows(opts.stdio, _scope_policy(settings, opts))


def _watcher(store: KeyStore, verifier: KeyVerifier, cors: CorsState, flag_origins: set[str],
             poll_interval: float, sessions: SessionRegistry) -> StoreWatcher:
    """On every store change: drop the verification cache, have open sessions re-checked and
    reload the CORS allowlist."""
    def on_change(_version: int) -> None:
        verifier.invalidate()
        sessions.store_changed()
        with verifier.store_lock:
            stored = store.cors_origins()
        cors.policy = effective_policy(stored, flag_origins)

    return StoreWatcher(verifier, on_change, poll_interval)


class _RedirectServer(ListeningServer):
    """The plain-HTTP redirect listener: signal handling is left to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(settings: Settings, opts: ServeOptions, announce: Callable[[str], None] = lambda _: None) -> None:
    """Check, bind and build, then serve until SIGINT/SIGTERM; `announce` receives start-up lines
    (the CLI prints them: the core never does), the address only once the server listens."""
    check_port(opts.port, "--port")
    check_port(opts.redirect_port, "--redirect-port")
    if opts.tls_cert and opts.tls_key:
        check_tls_files(opts.tls_cert, opts.tls_key)
    port = opts.port or (8443 if opts.tls else 8080)
    sockets = [bind(opts.host, port, "--port")]
    try:
        if opts.redirect_port is not None:
            sockets.append(bind(opts.host, opts.redirect_port, "--redirect-port"))
        _serve(build(settings, opts), opts, sockets, announce)
    finally:
        for sock in sockets:
            sock.close()


def _serve(server: Server, opts: ServeOptions, sockets: list[socket.socket],
           announce: Callable[[str], None]) -> None:
    for warning in server.warnings:
        announce(f"warning: {warning}")
    port = bound_port(sockets[0])
    common: dict[str, Any] = {"log_level": "warning", "access_log": False, "proxy_headers": False,
                              "server_header": False, "date_header": True,
                              "header_timeout": opts.header_timeout, "max_connections": opts.max_connections,
                              "timeout_graceful_shutdown": opts.shutdown_timeout}
    scheme = "https" if opts.tls else "http"
    banner = (f"{scheme}://{opts.host}:{port}{opts.mcp_path} (store "
              f"{server.store.display_url if server.store else 'none'}"
              f"{', redirect from http port ' + str(opts.redirect_port) if len(sockets) > 1 else ''})")
    main = ListeningServer(GuardedConfig(server.app, host=opts.host, port=port, lifespan="on",
                                         ssl_certfile=opts.tls_cert, ssl_keyfile=opts.tls_key, **common),
                           on_started=lambda: announce(banner))
    redirect = None
    if len(sockets) > 1:
        redirect_app = RedirectApp(port, server.events, opts.mcp_path)
        redirect = _RedirectServer(GuardedConfig(redirect_app, host=opts.host, port=bound_port(sockets[1]),
                                                  lifespan="on", **common))
    if server.watcher is not None:
        server.watcher.start()
    # The MCP SDK and pydantic leave a large start-up heap; freezing it keeps the collector
    # from re-walking it on every full collection under load.
    gc.freeze()

    async def serve_all() -> None:
        # A loop callback, not a raw signal handler: the reload may take the event log's lock,
        # which the interrupted code could be holding.
        if hasattr(signal, "SIGHUP"):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, server.reload)
        task = asyncio.create_task(redirect.serve(sockets=sockets[1:])) if redirect else None
        try:
            await main.serve(sockets=sockets[:1])
        finally:
            if redirect is not None and task is not None:
                redirect.should_exit = True
                await task

    try:
        with asyncio.Runner(loop_factory=lambda: DeadlineEventLoop(opts.handshake_timeout)) as runner:
            runner.run(serve_all())
    finally:
        server.close()
