"""Completions are generated from the CLI and kept fresh; every command documents itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from finops_mcp_admin.cli import app
from finops_mcp_admin.cli._completion import FILES, _walk, command_tree, render

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("shell", sorted(FILES))
def test_committed_completions_are_not_stale(shell):
    committed = (COMPLETIONS / FILES[shell]).read_text()
    assert committed == render(app, shell), (
        f"completions/{FILES[shell]} is stale: run "
        "python -m finops_mcp_admin.cli._completion completions/")


def test_completion_command_prints_the_committed_script(cli):
    r = cli("completion", "bash")
    assert r.code == 0 and r.stdout == (COMPLETIONS / FILES["bash"]).read_text()


def _bash_complete(line: str) -> list[str]:
    words = line.split(" ")
    script = (f"source {COMPLETIONS / FILES['bash']}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              "_mcpadmin; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return [w for w in out.stdout.splitlines() if w]


def test_bash_completion_offers_commands_options_and_choices():
    assert _bash_complete("mcpadmin ke") == ["keys"]
    assert set(_bash_complete("mcpadmin keys ")) >= {"create", "list", "rotate", "revoke", "import"}
    assert "--expiring-within" in _bash_complete("mcpadmin keys list --")
    assert sorted(_bash_complete("mcpadmin keys list -o ")) == ["csv", "json", "table"]
    assert "--grace" in _bash_complete("mcpadmin keys rotate ci --g")


def test_every_command_has_help_with_an_example():
    leaves = [n for n in _walk(command_tree(app)) if not n.children and n.path]
    assert len(leaves) >= 9
    for node in leaves:
        assert node.help, f"{' '.join(node.path)} has no help"
    for node in leaves:
        r = subprocess.run(["python", "-m", "finops_mcp_admin", *node.path, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0
        assert "Example:" in r.stdout and "mcpadmin" in r.stdout.split("Example:")[1], node.path


def test_root_help_documents_exit_codes(cli):
    r = cli("--help")
    assert r.code == 0
    for code in ("0 ok", "2 bad usage", "3 not found", "4 already exists", "5 backend",
                 "6 permission", "130 interrupted"):
        assert code in " ".join(r.stdout.split())


def test_version(cli):
    from finops_mcp_admin import __version__

    r = cli("--version")
    assert r.code == 0 and r.stdout.strip() == f"mcpadmin {__version__}"
