"""Every `--help` of every command renders clean, completion offers what an option takes, and
every entry point has --version (issue 12, point 7)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from finops_mcp_admin import __version__
from finops_mcp_admin.cli import app
from finops_mcp_admin.cli._completion import _walk, command_tree, render


def _paths() -> list[tuple[str, ...]]:
    return [node.path for node in _walk(command_tree(app))]


def _help(path: tuple[str, ...], columns: int) -> str:
    r = subprocess.run([sys.executable, "-m", "finops_mcp_admin", *path, "--help"], capture_output=True,
                       text=True, env={**os.environ, "COLUMNS": str(columns)}, timeout=60)
    assert r.returncode == 0, (path, r.stderr)
    return r.stdout


def _defects(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        usage = line.startswith("Usage:")
        if "--no-no-" in line:
            found.append(f"double negative flag: {line.strip()}")
        if usage and re.search(r"\{[a-z_]+\}", line):
            found.append(f"parameter name in usage: {line.strip()}")
        if "{shell}" in line:
            found.append(f"{{shell}} literal: {line.strip()}")
        if not usage and re.search(r"(\w,?\.\.\.|\(e\.g\.)$", line.rstrip()):
            found.append(f"text cut short: {line.strip()}")
    return found


@pytest.mark.parametrize("columns", [80, 60])
def test_every_help_page_renders_without_the_known_defects(columns):
    pages = {path: _help(path, columns) for path in _paths()}
    assert len(pages) > 30
    defects = {" ".join(p) or "(root)": d for p, text in pages.items() if (d := _defects(text))}
    assert not defects, defects
    assert "--version" in pages[()]


@pytest.mark.parametrize("text,expected", [
    ("  --no-store / --no-no-store  Use only static hashes", "double negative"),
    ("Usage: mcpadmin completion [OPTIONS] {shell}:<bash|zsh|fish>", "usage"),
    ("  serve       Run the secured MCP server: bearer keys, CORS allowlist,...", "cut short"),
    ("  outputs   The stack's outputs (e.g.", "cut short"),
])
def test_the_help_checker_sees_each_defect(text, expected):
    assert any(expected in d for d in _defects(text))


def test_flag_pairs_only_where_both_make_sense():
    """`--x / --no-x` only for a flag that is on by default, can be set from the environment, or
    is unset by default so that the config file decides (then --no-x overrides it, e.g. `keys
    policy --no-require-expiry` over `[key_policy] require_expiry = true`); a plain
    off-by-default flag has only its positive form."""
    def walk(command, path=()):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    pairs = []
    for path, command in walk(typer.main.get_command(app)):
        for param in command.params:
            if getattr(param, "is_flag", False) and param.secondary_opts and not (
                    param.default is True or param.default is None or param.envvar):
                pairs.append((" ".join(path), param.opts, param.secondary_opts))
    assert not pairs, pairs


def _bash_complete(line: str, cwd: Path) -> list[str]:
    script_file = cwd / "mcpadmin.bash"
    script_file.write_text(render(app, "bash"))
    words = line.split(" ")
    script = (f"source {script_file}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              "_mcpadmin; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, cwd=cwd)
    return sorted(w for w in out.stdout.splitlines() if w)


def test_completion_offers_choices_files_only_for_file_options_and_nothing_else(tmp_path):
    (tmp_path / "cert.pem").write_text("x")
    assert _bash_complete("mcpadmin keys list --status ", tmp_path) == ["active", "expired", "revoked"]
    assert _bash_complete("mcpadmin audit failures --by ", tmp_path) == ["ip", "key", "none", "path",
                                                                         "reason"]
    assert _bash_complete("mcpadmin serve --tls-cert ", tmp_path) == ["cert.pem", "mcpadmin.bash"]
    assert _bash_complete("mcpadmin audit failures --event cors", tmp_path) == ["cors_rejected"]
    assert _bash_complete("mcpadmin keys list --owner ", tmp_path) == []
    assert _bash_complete("mcpadmin audit failures --since ", tmp_path) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_shell_script_marks_file_options_and_choices(shell):
    script = render(app, shell)
    assert "active revoked expired" in script
    if shell == "fish":
        assert "-l tls-cert -r -F" in script and "-l owner -x" in script
    else:
        assert "@files" in script


def _console_script(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


@pytest.mark.parametrize("argv,expected", [
    (["-m", "finops_mcp_admin", "--version"], f"mcpadmin {__version__}"),
    (["-m", "finops_mcp_admin", "bridge", "--version"], f"finops-mcp-bridge {__version__}"),
    (["mcpadmin", "--version"], f"mcpadmin {__version__}"),
    (["finops-mcp-bridge", "--version"], f"finops-mcp-bridge {__version__}"),
])
def test_every_entry_point_has_version(argv, expected):
    cmd = [sys.executable, *argv] if argv[0] == "-m" else [_console_script(argv[0]), *argv[1:]]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == expected, (r.stdout, r.stderr)
