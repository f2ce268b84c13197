"""`mcpadmin serve --stdio` options, declared here so cli/serve.py only gains their names."""

from __future__ import annotations

import os
import shlex
from typing import Annotated, Any

import typer

from ..errors import InvalidInput
from ._render import OutputFormat, rows

Stdio = Annotated[bool, typer.Option(
    "--stdio", envvar="MCPADMIN_STDIO",
    help="Secure a stdio MCP server given after -- (or in MCPADMIN_STDIO_COMMAND): one child "
         "process per session.")]
Command = Annotated[list[str] | None, typer.Argument(
    metavar="[-- COMMAND [ARGS]...]", show_default=False,
    help="With --stdio: the stdio MCP server to run (no shell), e.g. -- python -m mcp_server.")]
StdioEnv = Annotated[list[str] | None, typer.Option(
    envvar="MCPADMIN_STDIO_ENV",
    help="Environment variable (or glob, e.g. 'AWS_*') passed to the child; repeatable. The child "
         "gets only these plus PATH, LANG, LC_ALL, HOME, TZ; never MCPADMIN_* or MCP_API_KEY*.")]
StdioCwd = Annotated[str | None, typer.Option(envvar="MCPADMIN_STDIO_CWD",
                                              help="Working directory of the child.")]
StdioPerKey = Annotated[int, typer.Option(help="Children (sessions) at once per key.")]
StdioTotal = Annotated[int, typer.Option(help="Children at once for the whole server.")]
StdioRate = Annotated[str, typer.Option(metavar="N/min", help="Children started per N/s, N/min or N/h.")]
StdioMemory = Annotated[int | None, typer.Option(help="Address-space limit of each child (RLIMIT_AS), MiB.")]
StdioCpu = Annotated[int | None, typer.Option(help="CPU-time limit of each child (RLIMIT_CPU), seconds.")]
StdioMaxMessage = Annotated[int, typer.Option(help="Largest JSON-RPC message either way, bytes.")]
PrintScopeMap = Annotated[bool, typer.Option(
    "--print-scope-map",
    help="With --stdio: start the server once, print the scope each tool will need, and exit.")]


def stdio_options(stdio: bool, command: list[str] | None, **values: Any) -> Any:
    """The StdioOptions for `--stdio -- COMMAND`, or None without --stdio. Without a command
    after --, MCPADMIN_STDIO_COMMAND is split like a shell would split it (and never run by
    one): a container image sets it, and the stack's fixed `serve` command picks it up."""
    if not command and stdio:
        command = shlex.split(os.environ.get("MCPADMIN_STDIO_COMMAND", ""))
    if not stdio:
        if command:
            raise InvalidInput(f"unexpected argument {command[0]!r}: a command needs --stdio")
        return None
    from ..server.stdio.options import StdioOptions

    return StdioOptions(command=list(command or []), **values).check()


def print_scope_map(table: list[Any]) -> None:
    """The probed map: tool, scope (or 'refused'), and where it comes from."""
    rows([{"tool": r.tool, "scope": r.scope or "refused", "source": r.source} for r in table],
         [("tool", "TOOL"), ("scope", "SCOPE"), ("source", "FROM")], OutputFormat.table)
