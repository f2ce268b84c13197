"""`mcpadmin audit ...`: the admin audit trail (and, later, security-event queries)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import load_settings
from ..durations import parse_past, utcnow
from ..store import open_store
from . import _render as render
from ._options import NamespaceOpt, OutputOpt, StoreOpt
from ._render import OutputFormat

app = typer.Typer(no_args_is_help=True, help="Audit trails and security events.")

EVENT_COLUMNS = [("ts", "TIME"), ("actor", "ACTOR"), ("action", "ACTION"), ("key_id", "KEY ID"),
                 ("name", "NAME"), ("detail", "DETAIL")]


@app.command()
def events(
    since: Annotated[str, typer.Option(help="Window start: a duration back from now (24h) or an ISO time; inclusive.")] = "24h",
    store: StoreOpt = None, namespace: NamespaceOpt = None,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """The admin audit trail from the store: who created, rotated, revoked or imported what.

    \b
    Example: mcpadmin audit events --since 7d -o json
    """
    start = parse_past(since, utcnow())
    with open_store(load_settings(store, namespace)) as s:
        trail = s.audit_events(since=start)
    render.rows([e.to_public() for e in trail], EVENT_COLUMNS, output)
