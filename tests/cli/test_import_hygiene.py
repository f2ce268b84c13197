"""Fast paths stay fast: `--help` and `keys list` never import boto3, cfn-lint, argon2 or redis
(measured in benchmarks/bench_cli_startup.py; this pins the cause, not a time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "cfnlint", "argon2", "redis", "mcp", "pydantic")


@pytest.mark.parametrize("args", [["--help"], ["keys", "list"], ["keys", "list", "-o", "json"],
                                  ["audit", "events"]])
def test_fast_paths_do_not_import_heavy_modules(args, cli):
    # Reads need an existing store (they never create one): a write makes it first.
    assert cli("cors", "add", "https://seed.example").code == 0
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "finops_mcp_admin", *args],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-500:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines()
                if line.startswith("import time:")}
    assert "finops_mcp_admin" in imported  # the probe itself works
    assert not imported & set(HEAVY), imported & set(HEAVY)
