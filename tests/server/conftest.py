"""Fixtures for the server tests: certificates, a store with keys, `mcpadmin serve` processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_ARGON2
from tests.server.harness import Certs, ServerProcess, base_env, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def cli_in(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finops_mcp_admin", *args], env=env, input=stdin,
                          capture_output=True, text=True,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def new_key(env: dict[str, str], name: str, *extra: str) -> str:
    r = cli_in(env, "keys", "create", name, "-q", *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("store")
    return base_env({"MCPADMIN_STORE": f"sqlite:///{d / 'keys.db'}", "MCPADMIN_ACTOR": "tester",
                     "XDG_CONFIG_HOME": str(d), **FAST_ARGON2})


@pytest.fixture(scope="module")
def tls_server(certs: Certs, sqlite_env: dict[str, str], tmp_path_factory) -> Iterator[ServerProcess]:
    """One HTTPS server on the SQLite store, with a redirect listener."""
    from tests.redis_server import free_port

    log = tmp_path_factory.mktemp("logs") / "events.jsonl"
    redirect = free_port()
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--redirect-port", str(redirect), "--cors-origin", "https://finops.example.com",
                            "--max-failures", "1000", "--poll-interval", "0.1"],
                           sqlite_env, log, extra_ports={"redirect": redirect}).start()
    yield server
    server.stop()


def events_since(server: ServerProcess, count: int) -> list[dict]:
    return server.events()[count:]


#: The real npm MCP clients of issue 11 (point 6), at whatever is current: compatibility with
#: today's clients is the point.
NPM_CLIENTS = ("mcp-remote@latest", "@modelcontextprotocol/inspector@latest")
NPM_INSTALL_TIMEOUT = 300


@pytest.fixture(scope="session")
def npm_bin(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """mcp-remote and the MCP Inspector, `npm install`ed once per test session into a temporary
    prefix (npm's download cache lives in .pytest_cache, so later sessions are fast). Skipped
    only when node or npm is absent; an install that fails or overruns is a test failure."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("node and npm are not installed: the real mcp-remote / MCP Inspector tests "
                    "need them (apt-get install nodejs npm)")
    prefix = tmp_path_factory.mktemp("npm-clients")
    # With the cache plugin off (-p no:cacheprovider), npm's own default cache is used.
    cache = getattr(pytestconfig, "cache", None)
    cache_dir = {"npm_config_cache": str(cache.mkdir("npm-cache"))} if cache is not None else {}
    env = {**os.environ, **cache_dir,
           "npm_config_update_notifier": "false"}
    try:
        # --ignore-scripts: the clients run from their JS entry points; no install hooks needed.
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                            "--prefix", str(prefix), *NPM_CLIENTS], env=env, capture_output=True,
                           text=True, timeout=NPM_INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm install {' '.join(NPM_CLIENTS)} took over {NPM_INSTALL_TIMEOUT} s")
    if r.returncode != 0:
        pytest.fail(f"npm install {' '.join(NPM_CLIENTS)} failed: {r.stderr[-2000:]}")
    return prefix / "node_modules" / ".bin"
