"""Options shared by commands, declared once (Annotated types) so help and env vars agree."""

from __future__ import annotations

from typing import Annotated

import typer

from ._render import OutputFormat

StoreOpt = Annotated[str | None, typer.Option(
    "--store", envvar="MCPADMIN_STORE", show_envvar=True, metavar="URL",
    help="Key store: sqlite:///path (default: $XDG_DATA_HOME/mcpadmin/mcpadmin.db) or "
         "redis[s]://[user@]host:port/db (password from MCPADMIN_REDIS_PASSWORD).")]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", envvar="MCPADMIN_NAMESPACE", show_envvar=True,
    help="Redis key prefix, so several environments can share one Redis [default: mcpadmin].")]
OutputOpt = Annotated[OutputFormat, typer.Option(
    "--output", "-o", case_sensitive=False, help="Output format.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the essential value (key, ids); no messages.")]

