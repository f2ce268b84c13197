"""`--help` command listings with whole summaries.

click shortens each command's summary to what fits in 45-odd columns and cuts sentences at
"e.g." ("Run the secured MCP server: bearer keys, CORS allowlist,...", "The stack's outputs
(e.g."). A summary is the first paragraph of the command's help, wrapped, never cut.
Arguments are named in capitals in usage lines (`{STACK}`, not the parameter's `{stack}`)."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


def summary(command: Any) -> str:
    """The first paragraph of a command's help, on one line."""
    if command.short_help:
        return " ".join(command.short_help.split())
    paragraph = (command.help or "").strip().split("\n\n")[0]
    return " ".join(word for word in paragraph.split() if word != "\b")


class HelpGroup(TyperGroup):
    """A command group whose listing shows every summary whole (wrapped to the terminal) and
    whose commands name their arguments in capitals."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", ()):
            if param.param_type_name == "argument" and param.metavar is None and param.name:
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
