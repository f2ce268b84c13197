"""Static shell completions for bash, zsh and fish, generated from the command tree.

Static (a table of commands, options and choices baked into the script) rather than Typer's
dynamic completion: a TAB costs no Python start-up. `completions/` holds the generated files;
regenerate with `python -m finops_mcp_admin.cli._completion completions/` (a test fails when
they are stale).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import typer

PROG = "mcpadmin"
FILES = {"bash": "mcpadmin.bash", "zsh": "_mcpadmin", "fish": "mcpadmin.fish"}

#: The value choice that means "complete file names". Only options that name a file get it: the
#: others (`--since`, `--owner`…) complete nothing rather than offer the directory's files.
FILE_VALUE = "@files"
_FILE_OPTION = re.compile(r"--(?:[\w-]+-)?(?:file|cert|key|template|policy|bundle)$")


@dataclass
class Node:
    """A command or group: its path, subcommands and options."""

    path: tuple[str, ...]
    help: str = ""
    children: dict[str, Node] = field(default_factory=dict)
    options: list[tuple[list[str], bool, list[str], str]] = field(default_factory=list)
    # (option strings, takes a value, value choices, help)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _tree(command: Any, path: tuple[str, ...] = ()) -> Node:
    node = Node(path, _first_line(command.help))
    for param in command.params:
        if param.param_type_name != "option" or param.hidden:
            continue
        choices = [str(getattr(c, "value", c)) for c in getattr(getattr(param, "type", None), "choices", ())]
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if not choices and isinstance(annotation, type) and issubclass(annotation, Enum):
            choices = [m.value for m in annotation]  # typer >= 0.29 keeps the Enum here
        complete = getattr(param, "_custom_shell_complete", None)  # typer's `autocompletion=`
        if not choices and complete is not None:
            choices = [item.value for item in complete(None, param, "")]
        if not choices and any(_FILE_OPTION.match(o) for o in param.opts):
            choices = [FILE_VALUE]
        node.options.append((list(param.opts) + list(param.secondary_opts), not param.is_flag,
                             choices, _first_line(param.help)))
    node.options.append((["--help"], False, [], "Show help and exit."))
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            node.children[name] = _tree(sub, (*path, name))
    return node


def _walk(node: Node) -> list[Node]:
    return [node] + [n for child in node.children.values() for n in _walk(child)]


def command_tree(app: typer.Typer) -> Node:
    """The whole CLI as a tree of Nodes."""
    return _tree(typer.main.get_command(app))


def _q(text: str) -> str:
    return text.replace("'", "'\\''")


def _tables(root: Node) -> tuple[list[tuple[str, str]], ...]:
    """(command path, subcommands), (path, options), ("path|option", choices) for every node."""
    subs: list[tuple[str, str]] = []
    opts: list[tuple[str, str]] = []
    vals: list[tuple[str, str]] = []
    for node in _walk(root):
        key = " ".join(node.path)
        subs.append((key, " ".join(node.children)))
        opts.append((key, " ".join(o for os_, *_ in node.options for o in os_)))
        for os_, takes, choices, _ in node.options:
            if takes:
                vals.extend((f"{key}|{o}", " ".join(choices)) for o in os_)
    return subs, opts, vals


def bash(root: Node) -> str:
    """A bash completion script."""
    subs, opts, vals = ([f"        '{k}') words='{v}' ;;" for k, v in table] for table in _tables(root))
    return f"""# bash completion for {PROG} (generated; do not edit)
_{PROG}_words() {{
    # $1 = command path, $2 = kind (sub|opt|val), $3 = option
    local words=''
    case "$2" in
    sub) case "$1" in
{chr(10).join(subs)}
        esac ;;
    opt) case "$1" in
{chr(10).join(opts)}
        esac ;;
    val) case "$1|$3" in
{chr(10).join(vals)}
        *) return 1 ;;
        esac ;;
    esac
    printf '%s' "$words"
}}

_{PROG}() {{
    local cur prev path='' w i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        [[ "$w" == -* ]] && continue
        if [[ " $(_{PROG}_words "$path" sub) " == *" $w "* ]]; then
            path="${{path:+$path }}$w"
        fi
    done
    local values
    if values=$(_{PROG}_words "$path" val "$prev"); then
        if [[ "$values" == "{FILE_VALUE}" ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        elif [[ -n "$values" ]]; then
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        else
            COMPREPLY=()
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_{PROG}_words "$path" opt)" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_{PROG}_words "$path" sub)" -- "$cur"))
    fi
}}
complete -F _{PROG} {PROG}
"""


def zsh(root: Node) -> str:
    """A zsh completion script (#compdef)."""
    subs, opts, vals = ([f"  '{k}' '{v}'" for k, v in table] for table in _tables(root))
    return f"""#compdef {PROG}
# zsh completion for {PROG} (generated; do not edit)
typeset -gA _{PROG}_subs _{PROG}_opts _{PROG}_vals
_{PROG}_subs=(
{chr(10).join(subs)}
)
_{PROG}_opts=(
{chr(10).join(opts)}
)
_{PROG}_vals=(
{chr(10).join(vals)}
)

_{PROG}() {{
  local path_='' w prev="${{words[CURRENT-1]}}"
  for w in "${{(@)words[2,CURRENT-1]}}"; do
    [[ "$w" == -* ]] && continue
    if [[ " ${{_{PROG}_subs[$path_]}} " == *" $w "* ]]; then
      path_="${{path_:+$path_ }}$w"
    fi
  done
  if (( ${{+_{PROG}_vals[$path_|$prev]}} )); then
    if [[ "${{_{PROG}_vals[$path_|$prev]}}" == "{FILE_VALUE}" ]]; then
      _files
    elif [[ -n "${{_{PROG}_vals[$path_|$prev]}}" ]]; then
      compadd -- ${{=_{PROG}_vals[$path_|$prev]}}
    fi
  elif [[ "${{words[CURRENT]}}" == -* ]]; then
    compadd -- ${{=_{PROG}_opts[$path_]}}
  else
    compadd -- ${{=_{PROG}_subs[$path_]}}
  fi
}}
compdef _{PROG} {PROG}
"""


def fish(root: Node) -> str:
    """A fish completion script."""
    out = [f"# fish completion for {PROG} (generated; do not edit)", f"complete -c {PROG} -f"]
    for node in _walk(root):
        cond = " ; and ".join(f"__fish_seen_subcommand_from {p}" for p in node.path)
        child_names = " ".join(node.children)
        for name, child in node.children.items():
            guard = f"{cond} ; and not __fish_seen_subcommand_from {child_names}" if cond \
                else f"not __fish_seen_subcommand_from {child_names}"
            out.append(f"complete -c {PROG} -n '{guard}' -a {name} -d '{_q(child.help)}'")
        guard = cond or f"not __fish_seen_subcommand_from {child_names}"
        for os_, takes, choices, help_ in node.options:
            flags = " ".join(f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}" for o in os_)
            extra = ("" if not takes else " -r -F" if choices == [FILE_VALUE]
                     else f" -x -a '{' '.join(choices)}'" if choices else " -x")
            out.append(f"complete -c {PROG} -n '{guard}' {flags}{extra} -d '{_q(help_)}'")
    return "\n".join(out) + "\n"


GENERATORS = {"bash": bash, "zsh": zsh, "fish": fish}


def render(app: typer.Typer, shell: str) -> str:
    """The completion script for one shell."""
    return GENERATORS[shell](command_tree(app))


def write_all(app: typer.Typer, directory: Path) -> None:
    """Regenerate every file in completions/."""
    for shell, filename in FILES.items():
        (directory / filename).write_text(render(app, shell))


if __name__ == "__main__":
    from . import app as root_app

    write_all(root_app, Path(sys.argv[1] if len(sys.argv) > 1 else "completions"))
