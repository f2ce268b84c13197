"""Revocation, expiry and the end of a rotation grace end what the key has open: its GET event
stream ends within the propagation bound, its sessions are ended in the app, and a
session_terminated event says why. The official MCP client holds a session alongside a raw GET
stream whose end is timed; the revocation is `mcpadmin keys revoke` in another process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.keys import HashParams, KeyHasher
from tests.conftest import FAST_ARGON2
from tests.server.harness import ServerProcess, base_env, http_client, mcp_session
from tests.server.test_e2e import HEADERS, INIT

PV = {"mcp-protocol-version": "2025-11-25"}
#: How fast each store's change reaches a server (README "Live changes"), plus process slack.
BOUND = {"redis": 0.5, "sqlite": 1.0}


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path), "MCPADMIN_ACTOR": "tester", **FAST_ARGON2}
    if request.param == "sqlite":
        env["MCPADMIN_STORE"] = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        env["MCPADMIN_STORE"] = request.getfixturevalue("redis_server").url
        env["MCPADMIN_NAMESPACE"] = f"streams{uuid.uuid4().hex[:8]}"
    return request.param, base_env(env)


@pytest.fixture
def server(store_env, certs, tmp_path):
    _, env = store_env
    proc = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)],
                         env, tmp_path / "events.jsonl").start()
    yield proc
    proc.stop()


def create(env, name, expires_at=None) -> str:
    settings = load_settings(env["MCPADMIN_STORE"], env.get("MCPADMIN_NAMESPACE"))
    with settings.open_store() as store:
        return lifecycle.create_key(store, KeyHasher(HashParams(1, 1024)), name=name, actor="t",
                                    now=datetime.now(UTC).replace(microsecond=0),
                                    scopes=["tools:read"], expires_at=expires_at).token.reveal()


async def open_stream(server, certs, key, ended: dict) -> None:
    """Initialize a session, then hold its GET event stream until the server ends it."""
    async with http_client(certs, key, headers=HEADERS) as http:
        r = await http.post(server.url, content=json.dumps(INIT))
        sid = r.headers["mcp-session-id"]
        await http.post(server.url, headers={"mcp-session-id": sid, **PV},
                        content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        async with http.stream("GET", server.url, headers={"mcp-session-id": sid, **PV,
                                                           "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            ended["opened"] = time.monotonic()
            try:
                async for _ in stream.aiter_bytes():
                    pass
            except Exception as exc:  # a cut connection also ends it; a clean end is better
                ended["error"] = repr(exc)
        ended["at"] = time.monotonic()


async def hold_and(server, certs, key, action, limit: float) -> tuple[dict, float, bool]:
    """Open the official client's session and a timed GET stream; run `action` (returns the
    monotonic time the change took effect); wait for the stream's end. (ended, t0, official
    client refused afterwards)."""
    ended: dict = {}
    refused = False
    async with mcp_session(server.url, certs, key) as session:
        assert (await session.call_tool("whoami", {})).structured_content["key_id"] == key[5:17]
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_stream, server, certs, key, ended)
            while "opened" not in ended:
                await anyio.sleep(0.01)
            t0 = await action()
            with anyio.fail_after(limit + 5):
                while "at" not in ended:
                    await anyio.sleep(0.005)
        try:
            with anyio.fail_after(10):
                result = await session.call_tool("whoami", {})
            refused = bool(result.is_error)
        except Exception:
            refused = True
    return ended, t0, refused


def terminated(server, key) -> list[dict]:
    return [e for e in server.events() if e["event"] == "session_terminated" and e["key_id"] == key[5:17]]


def test_revocation_ends_the_keys_streams_and_sessions(store_env, server, certs):
    kind, env = store_env
    key = create(env, "stream-revoked")

    async def revoke():
        proc = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "finops_mcp_admin", "keys", "revoke", "stream-revoked"],
            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL))
        assert proc.returncode == 0, proc.stderr
        return time.monotonic()

    ended, t0, refused = anyio.run(hold_and, server, certs, key, revoke, BOUND[kind])
    print(f"{kind}: stream ended {ended['at'] - t0:+.3f} s after keys revoke returned")
    assert ended["at"] - t0 < BOUND[kind], ended
    assert "error" not in ended  # ended cleanly, not cut
    assert refused
    events = terminated(server, key)
    assert len(events) == 2 and {e["reason"] for e in events} == {"revoked"}  # both sessions
    assert all(len(e["session"]) == 12 for e in events)


def test_expiry_ends_the_keys_streams(certs, tmp_path):
    env = base_env({"XDG_CONFIG_HOME": str(tmp_path), "MCPADMIN_STORE": f"sqlite:///{tmp_path / 'k.db'}",
                    **FAST_ARGON2})
    proc = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)],
                         env, tmp_path / "events.jsonl").start()
    try:
        expires_at = (datetime.now(UTC) + timedelta(seconds=2.2)).replace(microsecond=0)
        key = create(env, "stream-expiring", expires_at)

        async def wait_for_expiry():
            await anyio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))
            return time.monotonic()

        ended, t0, refused = anyio.run(hold_and, proc, certs, key, wait_for_expiry, 1.0)
        assert ended["at"] - t0 < 0.5, ended
        assert refused
        assert {e["reason"] for e in terminated(proc, key)} == {"expired"}
    finally:
        proc.stop()


def test_end_of_rotation_grace_ends_the_old_keys_streams(certs, tmp_path):
    env = base_env({"XDG_CONFIG_HOME": str(tmp_path), "MCPADMIN_STORE": f"sqlite:///{tmp_path / 'k.db'}",
                    **FAST_ARGON2})
    proc = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)],
                         env, tmp_path / "events.jsonl").start()
    try:
        key = create(env, "stream-rotated")
        grace_end: list[datetime] = []

        async def rotate():
            out = await anyio.to_thread.run_sync(lambda: subprocess.run(
                [sys.executable, "-m", "finops_mcp_admin", "keys", "rotate", "stream-rotated",
                 "--grace", "2s", "-o", "json"], env=env, capture_output=True, text=True,
                stdin=subprocess.DEVNULL))
            assert out.returncode == 0, out.stderr
            old = json.loads(subprocess.run(
                [sys.executable, "-m", "finops_mcp_admin", "keys", "show", key[5:17], "-o", "json"],
                env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout)
            grace_end.append(datetime.fromisoformat(old["expires_at"].replace("Z", "+00:00")))
            await anyio.sleep(max(0.0, (grace_end[0] - datetime.now(UTC)).total_seconds()))
            return time.monotonic()

        ended, t0, refused = anyio.run(hold_and, proc, certs, key, rotate, 3.0)
        assert ended["at"] - t0 < 0.5, ended
        assert refused
        assert {e["reason"] for e in terminated(proc, key)} == {"rotation_grace_ended"}
    finally:
        proc.stop()
