"""The README's two set-up commands stay true, and CI runs the second one verbatim."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from finops_mcp_admin.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    section = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands_near_the_top():
    assert README.index("## Set-up") < 1200
    commands = setup_commands()
    assert len(commands) == 2
    assert commands[0].startswith("pip install . && mcpadmin keys create ")
    assert commands[1] == "pip install -e '.[test]' && pytest"


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()


def test_first_setup_command_creates_a_key_on_the_default_store(tmp_path):
    # The install half is what CI does anyway; run the rest as a user would.
    _, run = setup_commands()[0].split(" && ", 1)
    argv = shlex.split(run)
    assert argv[0] == "mcpadmin"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "finops_mcp_admin", *argv[1:]], env=env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "mcpk_" in r.stdout and (tmp_path / "mcpadmin" / "mcpadmin.db").exists()


def test_readme_documents_every_exit_code():
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", README, re.M), code
