"""`mcpadmin config show | path`: the effective settings and where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import config_path
from ..config_report import effective_settings
from . import _render as render
from ._options import OutputOpt, QuietOpt
from ._render import OutputFormat
from ._store import command_settings

app = typer.Typer(no_args_is_help=True, help="Show the effective settings and the config file's path.")
COLUMNS = [("setting", "SETTING"), ("value", "VALUE"), ("origin", "ORIGIN")]


@app.command()
def show(
    # No envvar= on these: the environment is read by the settings resolver, so that `origin`
    # tells a flag from an environment variable.
    store: Annotated[str | None, typer.Option(
        "--store", metavar="URL", help="As other commands' --store.")] = None,
    namespace: Annotated[str | None, typer.Option(help="As other commands' --namespace.")] = None,
    server_name: Annotated[str | None, typer.Option(
        "--redis-server-name", metavar="NAME", help="As other commands' --redis-server-name.")] = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Every effective setting, its value and its origin: flag, env, profile, file or default.

    Precedence: flag > environment > [profile.NAME] section > top level of the config file >
    default. Secrets are masked (********), never shown in part.

    \b
    Example: mcpadmin --profile prod config show -o json
    """
    rows = effective_settings(command_settings(store, namespace, server_name))
    render.rows(rows, COLUMNS, output, quiet_field="setting", quiet=quiet)


@app.command()
def path() -> None:
    """Print the config file's path: $MCPADMIN_CONFIG, else $XDG_CONFIG_HOME/mcpadmin/config.toml.

    \b
    Example: ${EDITOR:-vi} "$(mcpadmin config path)"
    """
    where = config_path()
    render.out(str(where))
    if not where.exists():
        render.note("(the file does not exist yet: every setting has its default)")
