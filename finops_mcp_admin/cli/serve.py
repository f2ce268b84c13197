"""`mcpadmin serve`: the secured MCP server."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import InvalidInput
from ..keys import validate_scope
from ._options import NamespaceOpt, ServerNameOpt, StoreOpt
from ._stdio import (
    Command,
    PrintScopeMap,
    Stdio,
    StdioCpu,
    StdioCwd,
    StdioEnv,
    StdioMaxMessage,
    StdioMemory,
    StdioPerKey,
    StdioRate,
    StdioTotal,
    print_scope_map,
    stdio_options,
)
from ._store import command_settings


def _scope_map(values: list[str] | None) -> dict[str, str]:
    out = {}
    for value in values or []:
        tool, sep, scope = value.partition("=")
        if not sep or not tool or not scope:
            raise InvalidInput(f"invalid --tool-scope {value!r}: use TOOL=SCOPE")
        out[tool] = validate_scope(scope)
    return out


Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int | None, typer.Option(min=1, max=65535, help="Port [default: 8443 with TLS, else 8080].")]
TlsCert = Annotated[str | None, typer.Option(
    help="PEM certificate chain (or TLS_ENABLED + TLS_CERT_FILE).")]
TlsKey = Annotated[str | None, typer.Option(help="PEM private key (or TLS_KEY_FILE).")]
RedirectPort = Annotated[int | None, typer.Option(
    min=1, max=65535,
    help="Also listen on this plain-HTTP port and answer 308 to HTTPS.")]
TrustedProxy = Annotated[list[str] | None, typer.Option(
    help="CIDR whose X-Forwarded-For/-Proto are believed (the ALB); repeatable.")]
BehindProxy = Annotated[bool, typer.Option(
    "--behind-proxy", help="A proxy (ALB) terminates TLS: plain HTTP here is expected.")]
Production = Annotated[bool, typer.Option(
    envvar="MCPADMIN_PRODUCTION",
    help="Refuse to start without TLS and a CORS allowlist (also ENVIRONMENT=production).")]
CorsOrigin = Annotated[list[str] | None, typer.Option(
    help="Allowed browser origin (adds to CORS_ALLOWED_ORIGINS and the store's list).")]
LogFile = Annotated[str | None, typer.Option(help="Append security events (JSON lines) here too.")]
LogStdout = Annotated[bool, typer.Option(help="Write security events to stdout.")]
AppRef = Annotated[str | None, typer.Option(
    metavar="MODULE:ATTR", help="Wrap this ASGI MCP app instead of the built-in one.")]
McpPath = Annotated[str, typer.Option(
    help="Path of the MCP endpoint (scope checks and plaintext refusal apply under it).")]
Policy = Annotated[str | None, typer.Option(
    help="Tagging policy JSON file [default: the shipped policy].")]
ToolScope = Annotated[list[str] | None, typer.Option(help="TOOL=SCOPE needed to call a tool; repeatable.")]
DefaultScope = Annotated[str | None, typer.Option(
    help="Scope for tools without a --tool-scope entry [default: tools:read; under --app such "
         "tools are refused unless this or default_tool_scope in the config is set].")]
ResourceUrl = Annotated[str | None, typer.Option(
    help="Canonical URL of the MCP endpoint in the RFC 9728 metadata [default: from each "
         "request's Host].")]
HashesFile = Annotated[str | None, typer.Option(
    help="Static argon2id hashes (PHC or KEYID:PHC per line), re-read on SIGHUP.")]
NoStore = Annotated[bool, typer.Option(
    "--no-store", help="Use only static hashes (MCP_API_KEY_HASHES / --hashes-file).")]
PollInterval = Annotated[float, typer.Option(help="Seconds between store version checks.")]
StaleGrace = Annotated[float, typer.Option(
    help="Seconds cached keys stay valid while the store is unreachable.")]
MaxFailures = Annotated[int, typer.Option(
    help="Failed attempts per client IP, and per client IP and key id, before 429.")]
MaxVerifying = Annotated[int | None, typer.Option(
    help="Key verifications (argon2) at once; more get 429 at once [default: one per core, ≥ 2].")]
MaxVerifyingPerIp = Annotated[int, typer.Option(help="Key verifications at once per client IP.")]
FailureWindow = Annotated[float, typer.Option(help="Window for --max-failures, seconds.")]
MaxSessions = Annotated[int, typer.Option(
    envvar="MCPADMIN_MAX_SESSIONS_PER_KEY",
    help="Open MCP sessions per key, for keys without their own --max-sessions.")]
RatePerKey = Annotated[str | None, typer.Option(
    envvar="MCPADMIN_RATE_PER_KEY", metavar="N/min",
    help="Requests per key (N/s, N/min, N/h) for keys without their own --rate [default: none].")]
SessionIdle = Annotated[float, typer.Option(
    envvar="MCPADMIN_SESSION_IDLE_TIMEOUT",
    help="Seconds a session may have no request in flight before the server ends it.")]
HeaderTimeout = Annotated[float, typer.Option(
    help="Seconds a client has to send a complete request head (slow-header clients are dropped).")]
HandshakeTimeout = Annotated[float, typer.Option(help="Seconds a client has to complete the TLS handshake.")]
Auth = Annotated[str | None, typer.Option(
    metavar="api-key|oauth|both",
    help="How callers authenticate: API keys, OAuth access tokens from --oauth-issuer, or both "
         "(mcpk_ tokens as keys) [default: MCPADMIN_AUTH, config auth, else api-key].")]
OAuthIssuer = Annotated[str | None, typer.Option(
    help="The authorization server whose tokens are accepted (https; http only on loopback) "
         "[default: MCPADMIN_OAUTH_ISSUER, config oauth_issuer].")]
PublicUrl = Annotated[str | None, typer.Option(
    help="Canonical URL of the MCP endpoint behind a load balancer: the RFC 9728 resource and the "
         "audience tokens must name [default: https://HOST:PORT/MCP_PATH].")]
OAuthIntrospection = Annotated[str | None, typer.Option(
    help="RFC 7662 introspection endpoint for opaque tokens (client credentials from "
         "MCPADMIN_OAUTH_CLIENT_ID/_SECRET).")]
OAuthAudience = Annotated[str | None, typer.Option(
    help="Audience tokens must carry [default: the canonical URL].")]
OAuthRefetch = Annotated[float, typer.Option(
    help="Minimum seconds between JWKS refetches for unknown key ids.")]
AccessLogOpt = Annotated[str, typer.Option(
    "--access-log", envvar="MCPADMIN_ACCESS_LOG", metavar="all|writes|none",
    help="Access trail: an event per MCP call (all), only write-tool calls (writes), or none.")]
MaxConnections = Annotated[int, typer.Option(help="Open connections per listener; more get 503.")]


def serve(
    host: Host = "127.0.0.1", port: Port = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
    redirect_port: RedirectPort = None, trusted_proxy: TrustedProxy = None,
    behind_proxy: BehindProxy = False, production: Production = False, cors_origin: CorsOrigin = None,
    log_file: LogFile = None, log_stdout: LogStdout = True, app: AppRef = None, mcp_path: McpPath = "/mcp",
    policy: Policy = None, tool_scope: ToolScope = None, default_scope: DefaultScope = None,
    hashes_file: HashesFile = None, no_store: NoStore = False, poll_interval: PollInterval = 0.25,
    stale_grace: StaleGrace = 300.0, max_failures: MaxFailures = 10, failure_window: FailureWindow = 60.0,
    resource_url: ResourceUrl = None, max_sessions_per_key: MaxSessions = 64,
    rate_per_key: RatePerKey = None, session_idle_timeout: SessionIdle = 1800.0,
    header_timeout: HeaderTimeout = 10.0, handshake_timeout: HandshakeTimeout = 10.0,
    max_connections: MaxConnections = 1000, max_verifying: MaxVerifying = None,
    max_verifying_per_ip: MaxVerifyingPerIp = 2, auth: Auth = None, oauth_issuer: OAuthIssuer = None,
    public_url: PublicUrl = None, oauth_introspection_url: OAuthIntrospection = None,
    oauth_audience: OAuthAudience = None, oauth_jwks_min_refetch: OAuthRefetch = 10.0,
    access_log: AccessLogOpt = "all",
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    stdio: Stdio = False, command: Command = None, stdio_env: StdioEnv = None, stdio_cwd: StdioCwd = None,
    stdio_max_children_per_key: StdioPerKey = 8, stdio_max_children: StdioTotal = 64,
    stdio_spawn_rate: StdioRate = "60/min", stdio_memory_mb: StdioMemory = None,
    stdio_cpu_seconds: StdioCpu = None, stdio_max_message_bytes: StdioMaxMessage = 4 * 1024 * 1024,
    print_scope_map_: PrintScopeMap = False,
) -> None:
    """Run the secured MCP server: bearer keys, CORS allowlist, TLS, security-event log.

    \b
    Example: mcpadmin serve --store redis://cache:6379/0 --tls-cert cert.pem --tls-key key.pem \\
                 --redirect-port 8080
    OAuth:   mcpadmin serve --auth oauth --oauth-issuer https://login.example.com \\
                 --public-url https://mcp.example.com/mcp --behind-proxy
    Stdio:   mcpadmin serve --stdio --stdio-env 'AWS_*' -- python -m mcp_server   (a child per session)
    """

    from ..server.run import ServeOptions, run

    opts = ServeOptions.from_env(
        host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, redirect_port=redirect_port,
        trusted_proxies=trusted_proxy or [], behind_proxy=behind_proxy, production=production,
        cors_origins=cors_origin or [], log_file=log_file, log_stdout=log_stdout, app_ref=app,
        mcp_path=mcp_path if mcp_path.startswith("/") else "/" + mcp_path,
        policy_file=policy, tool_scopes=_scope_map(tool_scope), default_scope=default_scope,
        resource_url=resource_url,
        hashes_file=hashes_file, use_store=not no_store, poll_interval=poll_interval,
        stale_grace=stale_grace, max_failures=max_failures, failure_window=failure_window,
        max_sessions_per_key=max_sessions_per_key, rate_per_key=rate_per_key,
        session_idle_timeout=session_idle_timeout, header_timeout=header_timeout,
        handshake_timeout=handshake_timeout, max_connections=max_connections,
        max_verifying=max_verifying, max_verifying_per_ip=max_verifying_per_ip, auth=auth,
        oauth_issuer=oauth_issuer, public_url=public_url, oauth_introspection_url=oauth_introspection_url,
        oauth_audience=oauth_audience, oauth_jwks_min_refetch=oauth_jwks_min_refetch, access_log=access_log,
        stdio=stdio_options(stdio, command, env_allow=stdio_env or [], cwd=stdio_cwd,
                            max_children_per_key=stdio_max_children_per_key,
                            max_children=stdio_max_children, spawn_rate=stdio_spawn_rate,
                            memory_mb=stdio_memory_mb, cpu_seconds=stdio_cpu_seconds,
                            max_message_bytes=stdio_max_message_bytes))
    settings = command_settings(store, namespace, server_name)
    if print_scope_map_:
        return _print_scope_map(settings, opts)
    run(settings, opts, announce=lambda line: typer.echo(f"mcpadmin serve: {line}", err=True))


def _print_scope_map(settings: Any, opts: Any) -> None:
    """`--print-scope-map`: what each tool of the stdio server will need, then exit."""
    from ..server.run import stdio_scope_rows

    if opts.stdio is None:
        raise InvalidInput("--print-scope-map needs --stdio -- COMMAND")
    print_scope_map(stdio_scope_rows(settings, opts))
