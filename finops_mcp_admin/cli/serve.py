"""`mcpadmin serve`: the secured MCP server."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import load_settings
from ..errors import InvalidInput
from ._options import NamespaceOpt, StoreOpt


def _scope_map(values: list[str] | None) -> dict[str, str]:
    out = {}
    for value in values or []:
        tool, sep, scope = value.partition("=")
        if not sep or not tool or not scope:
            raise InvalidInput(f"invalid --tool-scope {value!r}: use TOOL=SCOPE")
        out[tool] = scope
    return out


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port [default: 8443 with TLS, else 8080].")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="PEM certificate chain (or TLS_ENABLED + TLS_CERT_FILE).")] = None,
    tls_key: Annotated[str | None, typer.Option(help="PEM private key (or TLS_KEY_FILE).")] = None,
    redirect_port: Annotated[int | None, typer.Option(help="Also listen on this plain-HTTP port and answer 308 to HTTPS.")] = None,
    trusted_proxy: Annotated[list[str] | None, typer.Option(help="CIDR whose X-Forwarded-For/-Proto are believed (the ALB); repeatable.")] = None,
    behind_proxy: Annotated[bool, typer.Option(help="A proxy (ALB) terminates TLS: plain HTTP here is expected.")] = False,
    production: Annotated[bool, typer.Option(envvar="MCPADMIN_PRODUCTION", help="Refuse to start without TLS and a CORS allowlist (also ENVIRONMENT=production).")] = False,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allowed browser origin (adds to CORS_ALLOWED_ORIGINS and the store's list).")] = None,
    log_file: Annotated[str | None, typer.Option(help="Append security events (JSON lines) here too.")] = None,
    log_stdout: Annotated[bool, typer.Option(help="Write security events to stdout.")] = True,
    app: Annotated[str | None, typer.Option(metavar="MODULE:ATTR", help="Wrap this ASGI MCP app instead of the built-in one.")] = None,
    mcp_path: Annotated[str, typer.Option(help="Path of the MCP endpoint (scope checks and plaintext refusal apply under it).")] = "/mcp",
    policy: Annotated[str | None, typer.Option(help="Tagging policy JSON file [default: the shipped policy].")] = None,
    tool_scope: Annotated[list[str] | None, typer.Option(help="TOOL=SCOPE needed to call a tool; repeatable.")] = None,
    default_scope: Annotated[str, typer.Option(help="Scope for tools without a --tool-scope entry.")] = "tools:read",
    hashes_file: Annotated[str | None, typer.Option(help="Static argon2id hashes (PHC or KEYID:PHC per line), re-read on SIGHUP.")] = None,
    no_store: Annotated[bool, typer.Option(help="Use only static hashes (MCP_API_KEY_HASHES / --hashes-file).")] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between store version checks.")] = 0.25,
    stale_grace: Annotated[float, typer.Option(help="Seconds cached keys stay valid while the store is unreachable.")] = 300.0,
    max_failures: Annotated[int, typer.Option(help="Failed attempts per client IP or key id before 429.")] = 10,
    failure_window: Annotated[float, typer.Option(help="Window for --max-failures, seconds.")] = 60.0,
    store: StoreOpt = None, namespace: NamespaceOpt = None,
) -> None:
    """Run the secured MCP server: bearer keys, CORS allowlist, TLS, security-event log.

    \b
    Example: mcpadmin serve --store redis://cache:6379/0 --tls-cert cert.pem --tls-key key.pem --redirect-port 8080
    """
    from ..server.run import ServeOptions, run

    opts = ServeOptions.from_env(
        host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, redirect_port=redirect_port,
        trusted_proxies=trusted_proxy or [], behind_proxy=behind_proxy, production=production,
        cors_origins=cors_origin or [], log_file=log_file, log_stdout=log_stdout, app_ref=app,
        mcp_path=mcp_path if mcp_path.startswith("/") else "/" + mcp_path,
        policy_file=policy, tool_scopes=_scope_map(tool_scope), default_scope=default_scope,
        hashes_file=hashes_file, use_store=not no_store, poll_interval=poll_interval,
        stale_grace=stale_grace, max_failures=max_failures, failure_window=failure_window)
    run(load_settings(store, namespace), opts,
        announce=lambda line: typer.echo(f"mcpadmin serve: {line}", err=True))
