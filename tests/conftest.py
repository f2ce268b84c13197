"""Shared fixtures: a real Redis-protocol server, both stores, and the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.redis_server import ADMIN_PASSWORD, RedisServer, _wait_for_port, free_port, server_binary

# Fast argon2 for the suite (the OWASP defaults are pinned by their own test); every CLI
# subprocess inherits these.
FAST_ARGON2 = {"MCPADMIN_ARGON2_TIME_COST": "1", "MCPADMIN_ARGON2_MEMORY_COST": "1024"}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(server_binary(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own HOME/XDG dirs and no inherited mcpadmin settings."""
    for name in list(os.environ):
        if name.startswith("MCPADMIN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("MCPADMIN_ACTOR", "tester@ci")
    for name, value in FAST_ARGON2.items():
        monkeypatch.setenv(name, value)


@dataclass
class Backend:
    """One store under test: its URL and a way to dump everything in it."""

    kind: str
    url: str
    namespace: str
    redis_port: int | None = None
    sqlite_path: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"MCPADMIN_STORE": self.url, "MCPADMIN_NAMESPACE": self.namespace}

    def dump(self) -> dict[str, object]:
        """Every value in the store, for canary scans and "nothing changed" checks."""
        if self.kind == "sqlite":
            return dump_sqlite(self.sqlite_path)
        return dump_redis(self.url, self.namespace)


def dump_sqlite(path: Path) -> dict[str, object]:
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        db.close()


def dump_redis(url: str, namespace: str | None = None) -> dict[str, object]:
    """Every key (SCAN is fine in a test) and its value, whatever its type."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    out: dict[str, object] = {}
    pattern = "{" + namespace + "}:*" if namespace else "*"
    for key in client.scan_iter(match=pattern, count=1000):
        kind = client.type(key)
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "set":
            out[key] = sorted(client.smembers(key))
        elif kind == "stream":
            out[key] = [[i, f] for i, f in client.xrange(key)]
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = f"<{kind}>"
    client.close()
    return out


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """Each contract test runs once per store."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        path = tmp_path / "store" / "keys.db"
        b = Backend("sqlite", f"sqlite:///{path}", namespace, sqlite_path=path)
    else:
        server = request.getfixturevalue("redis_server")
        b = Backend("redis", server.url, namespace, redis_port=server.port)
    for name, value in b.env.items():
        monkeypatch.setenv(name, value)
    return b


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> Result:
    """mcpadmin in a real subprocess (python -m, so it is the code under test)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "finops_mcp_admin", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def admin_password() -> str:
    return ADMIN_PASSWORD


# --- AWS: moto's server mode over HTTP stands in for AWS (never in-process mocks) -----------


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=log)
    _wait_for_port(port, proc, timeout=30)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def aws_env(moto_url, monkeypatch) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-canary-99",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_url}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def certificate_arn(aws_env) -> str:
    import boto3

    acm = boto3.client("acm", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    return acm.request_certificate(DomainName="mcp.example.com")["CertificateArn"]
