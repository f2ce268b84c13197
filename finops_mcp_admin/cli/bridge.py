"""`mcpadmin bridge [URL]`, `mcpadmin bridge config`, and the `finops-mcp-bridge` command."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InvalidInput
from ..keys import validate_name
from . import _render as render
from ._help import HelpGroup
from ._stdin import read_secret


class _RunByDefault(HelpGroup):
    """`mcpadmin bridge [URL]` runs the bridge; `mcpadmin bridge config` prints a snippet."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            # `mcpadmin bridge --version` too: run's own option answers it.
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, help="stdio ⇄ HTTPS bridge for desktop MCP clients.")

UrlArg = Annotated[str | None, typer.Argument(help="Server URL [default: $MCP_SERVER_URL].")]
AllowHttp = Annotated[bool, typer.Option("--allow-http", help="Allow http:// — to a loopback host only.")]


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"finops-mcp-bridge {__version__}")
        raise typer.Exit()


Version = Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")]


@app.command()
def run(url: UrlArg = None, allow_http: AllowHttp = False, version: Version = False) -> None:
    """Forward MCP between stdio and the server (key from MCP_API_KEY, never from argv; without
    a key, signs in with OAuth in the browser when the server asks).

    \b
    Example: MCP_API_KEY=... mcpadmin bridge https://mcp.example.com/mcp
    """
    from ..bridge.config import BridgeConfig
    from ..bridge.proxy import run_bridge

    run_bridge(BridgeConfig.from_env(url, allow_http))


def _bridge_command() -> str:
    """The absolute path of finops-mcp-bridge: desktop apps start with a minimal PATH."""
    beside = Path(sys.executable).parent / "finops-mcp-bridge"
    return str(beside) if beside.exists() else (shutil.which("finops-mcp-bridge") or "finops-mcp-bridge")


@app.command()
def config(
    url: Annotated[str, typer.Option(help="The server's MCP endpoint, https://.../mcp.")],
    name: Annotated[str, typer.Option(help="Server name shown by the desktop client.")] = "finops",
    key_from_stdin: Annotated[bool, typer.Option(
        "--key-from-stdin", help="Embed the key read from stdin instead of a placeholder.")] = False,
    ca_bundle: Annotated[str | None, typer.Option(
        help="Private CA certificate to trust (sets MCP_CA_BUNDLE).")] = None,
    oauth: Annotated[bool, typer.Option(
        "--oauth", help="No MCP_API_KEY: the bridge signs in with OAuth in the browser.")] = False,
) -> None:
    """Print a ready-to-paste `mcpServers` JSON snippet for desktop MCP clients.

    \b
    Example: mcpadmin bridge config --url https://mcp.example.com/mcp --name finops
    """
    from ..bridge.config import check_url

    check_url(url, allow_http=False)
    validate_name(name)
    if oauth and key_from_stdin:
        raise InvalidInput("--oauth and --key-from-stdin exclude each other")
    key = read_secret().reveal() if key_from_stdin else "<paste the key from mcpadmin keys create>"
    env = {"MCP_SERVER_URL": url} if oauth else {"MCP_SERVER_URL": url, "MCP_API_KEY": key}
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise InvalidInput(f"CA bundle {ca_bundle} does not exist")
        env["MCP_CA_BUNDLE"] = str(Path(ca_bundle).resolve())
    render.out(json.dumps({"mcpServers": {name: {"command": _bridge_command(), "args": [], "env": env}}},
                          indent=2))


standalone = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
                         help="stdio ⇄ HTTPS bridge for desktop MCP clients (configured by env).")
standalone.command()(run)


def main() -> None:
    """Console script `finops-mcp-bridge`: the same error boundary as mcpadmin."""
    from . import run_app

    run_app(standalone, "finops-mcp-bridge")
