"""The `mcpadmin` command: the root Typer app and the one error boundary.

Typer lives only in this package. Commands parse, build clients from settings, make one core
call and render; every AdminError is caught here, once, and becomes one stderr line and its
exit code. Tracebacks only with --debug (locals are never shown: they can hold keys).
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from enum import StrEnum
from typing import Annotated

import typer

from .. import __version__
from ..errors import EXIT_CODES, INTERRUPTED, USAGE, AdminError
from . import _store, audit, bridge, config, cors, keys, oauth, stack
from ._help import HelpGroup
from .serve import serve

EPILOG = "Exit codes: " + " · ".join(f"{code} {text}" for code, text in EXIT_CODES.items())

app = typer.Typer(
    name="mcpadmin", no_args_is_help=True, cls=HelpGroup, add_completion=False,
    pretty_exceptions_enable=False, pretty_exceptions_show_locals=False, rich_markup_mode=None,
    help="Security administration for remote MCP servers: API keys, CORS, stack, audit.",
    epilog=EPILOG,
)
app.add_typer(keys.app, name="keys", cls=HelpGroup)
app.add_typer(cors.app, name="cors", cls=HelpGroup)
app.add_typer(audit.app, name="audit", cls=HelpGroup)
app.add_typer(bridge.app, name="bridge")
app.add_typer(stack.app, name="stack", cls=HelpGroup)
app.add_typer(oauth.app, name="oauth", cls=HelpGroup)
app.add_typer(config.app, name="config", cls=HelpGroup)
app.command()(serve)

_debug = False


class Shell(StrEnum):
    """Shells with completion scripts."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(metavar="bash|zsh|fish", help="The shell.")]) -> None:
    """Print the shell completion script.

    \b
    Example: mcpadmin completion bash > /etc/bash_completion.d/mcpadmin
    """
    from ._completion import render

    typer.echo(render(app, shell.value), nl=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcpadmin {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="MCPADMIN_DEBUG", help="Show tracebacks for unexpected errors.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    profile: Annotated[str | None, typer.Option(
        "--profile", metavar="NAME",
        help="Use the config file's [profile.NAME] section (or MCPADMIN_PROFILE); not the AWS "
             "profile, which AWS commands take after their name.")] = None,
) -> None:
    """Security administration for remote MCP servers: API keys, CORS, stack, audit."""
    global _debug
    _debug = debug
    _store.selected_profile = profile


def _fail(prog: str, message: str, code: int) -> None:
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.exit(code)


# A key (mcpk_…), or a long token-like word: letters and digits, no path or URL punctuation.
_SECRET_SHAPED = re.compile(r"(?i)mcpk_\S*|(?=[\w+=-]*\d)(?=[\w+=-]*[a-z])[\w+=-]{24,}")


def _without_secrets(message: str, argv: list[str]) -> str:
    """A usage error with no secret-shaped argument in it, whole or in part: the parser quotes
    what it could not place ("unexpected extra argument (mcpk_…)"), and keys belong on stdin."""
    for arg in argv:
        for secret in _SECRET_SHAPED.findall(arg):
            message = message.replace(secret, "<redacted>")
            # Any 8-character piece still there (a truncated or re-quoted echo): say less.
            if any(secret[i:i + 8] in message for i in range(len(secret) - 7)):
                message = message.split(":")[0].split("(")[0].strip() + " (value not shown)"
    return message


def _fail_on_missing_module(prog: str, exc: ModuleNotFoundError) -> None:
    """A module of an extra that is not installed: one line naming the extra (exit 5)."""
    from ..extras import missing_extra

    error = missing_extra(exc)
    if error is None:
        if _debug:
            traceback.print_exc()
        _fail(prog, f"unexpected ModuleNotFoundError: {exc.name} (run with --debug for details)", 1)
    else:
        _fail(prog, str(error), error.exit_code)


def run_app(typer_app: typer.Typer, prog: str) -> None:
    """Run a Typer app; map every failure to one stderr line and an exit code."""
    global _debug
    _debug = _debug or os.environ.get("MCPADMIN_DEBUG", "") not in ("", "0", "false")
    try:
        code = typer_app(standalone_mode=False, prog_name=prog)
    except AdminError as exc:
        _fail(prog, str(exc), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail(prog, "interrupted", INTERRUPTED)
    except typer.TyperException as exc:  # usage errors from the parser
        ctx = getattr(exc, "ctx", None)
        hint = f" (try '{ctx.command_path} --help')" if ctx is not None else ""
        message = _without_secrets(exc.format_message(), sys.argv[1:])
        _fail(prog, f"{message}{hint}", getattr(exc, "exit_code", USAGE))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    except ModuleNotFoundError as exc:
        _fail_on_missing_module(prog, exc)
    except Exception as exc:
        if _debug:
            traceback.print_exc()
        _fail(prog, f"unexpected {type(exc).__name__} (run with --debug for details)", 1)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """Console-script entry point for mcpadmin."""
    run_app(app, "mcpadmin")
