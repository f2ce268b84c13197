"""Fixtures for the server tests: certificates, a store with keys, `mcpadmin serve` processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

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
