"""`mcpadmin cors ...`: the CORS allowlist kept in the store (R20)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import cors as core
from ..errors import CheckFailed
from . import _render as render
from ._options import NamespaceOpt, OutputOpt, QuietOpt, ServerNameOpt, StoreOpt
from ._render import OutputFormat
from ._store import command_store

app = typer.Typer(no_args_is_help=True, help="Edit and check the CORS allowlist.")
OriginsArg = Annotated[list[str], typer.Argument(metavar="ORIGIN...", help="Origins: scheme://host[:port].")]
COLUMNS = [("origin", "ORIGIN"), ("source", "SOURCE")]


@app.command("list")
def list_(store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
          output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False) -> None:
    """List allowed origins: the store's list and CORS_ALLOWED_ORIGINS.

    \b
    Example: mcpadmin cors list -o json
    """
    with command_store(store, namespace, server_name, create=False) as (s, _):
        rows = core.list_origins(s)
    render.rows(rows, COLUMNS, output, quiet_field="origin", quiet=quiet)


@app.command()
def add(origins: OriginsArg, store: StoreOpt = None, namespace: NamespaceOpt = None,
        server_name: ServerNameOpt = None, quiet: QuietOpt = False) -> None:
    """Allow origins (validated and normalised; live in running servers within a second).

    \b
    Example: mcpadmin cors add https://finops.example.com
    """
    with command_store(store, namespace, server_name, create=True) as (s, _):
        added = core.add_origins(s, origins)
    render.note(f"added: {', '.join(added)}" if added else "already allowed; nothing changed", quiet)


@app.command()
def remove(origins: OriginsArg, store: StoreOpt = None, namespace: NamespaceOpt = None,
           server_name: ServerNameOpt = None, quiet: QuietOpt = False) -> None:
    """Stop allowing origins (exit 3 if none of them was in the stored list).

    \b
    Example: mcpadmin cors remove https://old.example.com
    """
    with command_store(store, namespace, server_name, create=False) as (s, _):
        removed = core.remove_origins(s, origins)
    render.note(f"removed: {', '.join(removed)}", quiet)


@app.command()
def check(origin: Annotated[str, typer.Argument(help="The Origin header value to test.")],
          store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
          quiet: QuietOpt = False) -> None:
    """Would a server allow this Origin header? Exit 0 allowed, 1 refused.

    \b
    Example: mcpadmin cors check https://finops.example.com
    """
    with command_store(store, namespace, server_name, create=False) as (s, _):
        allowed = core.check_origin(s, origin)
    if not allowed:
        raise CheckFailed(f"refused: {origin!r} is not on the allowlist")
    render.note("allowed", quiet)
