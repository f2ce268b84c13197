"""`mcpadmin oauth ...`: judge an authorization server for MCP use (R24)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import CheckFailed
from . import _render as render
from ._options import OutputOpt, QuietOpt
from ._render import OutputFormat

app = typer.Typer(no_args_is_help=True, help="Check OAuth authorization servers for MCP use.")
COLUMNS = [("check", "CHECK"), ("result", "RESULT"), ("detail", "DETAIL")]


@app.command()
def check(
    issuer: Annotated[str, typer.Option(help="The issuer URL (https; http only on loopback).")],
    resource: Annotated[str | None, typer.Option(
        help="An MCP server's canonical URL: also check its RFC 9728 metadata names the issuer.")] = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Fetch the issuer's metadata and judge it: PKCE S256, code grant, registration, JWKS,
    https, resource indicators. Exit 0 without failures, 1 with any, 5 when unreachable.

    \b
    Example: mcpadmin oauth check --issuer https://login.example.com --resource https://mcp.example.com/mcp
    """
    from ..oauth_check import check_authorization_server, failed

    findings = check_authorization_server(issuer, resource)
    render.rows([f.to_public() for f in findings], COLUMNS, output)
    if failed(findings):
        raise CheckFailed(f"{issuer}: {sum(f.result == 'fail' for f in findings)} failed check(s)")
    render.note(f"{issuer}: fit for MCP clients", quiet)
