"""Install extras (issue 12, point 10): the core install manages keys; a command whose extra is
missing says which one in one line, exit 5. The missing install is simulated by a
sitecustomize that makes the extra's modules unimportable (nothing is uninstalled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVER_MODULES = "mcp,uvicorn,re2,anyio,httpx,starlette,pydantic"
AWS_MODULES = "boto3,botocore,cfnlint"

BLOCKER = '''
import importlib.abc, os, sys

BLOCKED = set(filter(None, os.environ.get("TEST_BLOCK_MODULES", "").split(",")))


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


@pytest.fixture
def without(tmp_path: Path):
    """Run mcpadmin (or the bridge) as if the given modules were not installed."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    store = f"sqlite:///{tmp_path / 'store' / 'keys.db'}"

    def run(blocked: str, *args: str, module: str = "finops_mcp_admin",
            env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        full = {**os.environ, "PYTHONPATH": path, "TEST_BLOCK_MODULES": blocked,
                "MCPADMIN_STORE": store, "MCPADMIN_ARGON2_TIME_COST": "1",
                "MCPADMIN_ARGON2_MEMORY_COST": "1024", **(env or {})}
        cmd = [sys.executable, "-m", module, *args] if module else [sys.executable, *args]
        return subprocess.run(cmd, env=full, capture_output=True, text=True, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL, timeout=60)

    return run


def _one_line(r: subprocess.CompletedProcess, extra: str) -> None:
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"pip install 'finops-mcp-admin[{extra}]'" in r.stderr, r.stderr


def test_the_blocker_blocks(without):
    r = without("mcp", "-c", "import mcp", module="")
    assert r.returncode == 1 and "No module named 'mcp'" in r.stderr


def test_the_core_install_creates_lists_and_verifies_keys(without):
    blocked = f"{SERVER_MODULES},{AWS_MODULES}"
    created = without(blocked, "keys", "create", "core-only", "--scope", "tools:read", "--expires", "90d",
                      "-q")
    assert created.returncode == 0, created.stderr
    listed = without(blocked, "keys", "list", "-o", "json")
    assert listed.returncode == 0 and "core-only" in listed.stdout, listed.stderr
    verified = without(blocked, "keys", "verify", stdin=created.stdout)
    assert verified.returncode == 0, verified.stderr
    for args in (["--help"], ["cors", "list"], ["audit", "events"]):
        r = without(blocked, *args)
        assert r.returncode == 0, (args, r.stderr)


@pytest.mark.parametrize("args", [["serve", "--port", "18443"], ["bridge", "https://mcp.example.com/mcp"]])
def test_server_commands_name_the_server_extra(without, args):
    _one_line(without(SERVER_MODULES, *args), "server")


def test_the_standalone_bridge_names_the_server_extra(without):
    r = without(SERVER_MODULES, "-c", "from finops_mcp_admin.cli.bridge import main; main()",
                "https://mcp.example.com/mcp", module="")
    _one_line(r, "server")
    assert r.stderr.startswith("finops-mcp-bridge: error:")


@pytest.mark.parametrize("args", [["stack", "validate"], ["stack", "status", "mcp"],
                                  ["audit", "failures", "--source", "cloudwatch", "--log-group", "g"]])
def test_aws_commands_name_the_aws_extra(without, args):
    _one_line(without(AWS_MODULES, *args, env={"AWS_REGION": "us-east-1"}), "aws")


def test_a_module_of_no_extra_stays_an_unexpected_error(without):
    """Only modules an extra installs get the install hint; anything else is not hidden."""
    assert without("", "keys", "create", "listed", "--scope", "tools:read", "-q").returncode == 0
    r = without("tabulate", "keys", "list")
    assert r.returncode == 1 and "ModuleNotFoundError: tabulate" in r.stderr and "pip install" not in r.stderr


def test_the_core_dependencies_and_the_extras_are_what_the_readme_promises():
    import re
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requirements}

    extras = project["optional-dependencies"]
    assert names(project["dependencies"]) == {"typer", "redis", "argon2-cffi", "tabulate"}
    assert names(extras["server"]) == {"mcp", "uvicorn", "google-re2", "pyjwt"}
    assert names(extras["aws"]) == {"boto3", "cfn-lint"}
    assert extras["all"] == ["finops-mcp-admin[server,aws]"]
    assert "finops-mcp-admin[all]" in extras["test"]
