"""Per-key quotas on a real server with the official MCP client: the session cap (429, other keys
unaffected, per-key override, sessions that end free their place), the request rate, and the
session security events (a digest of the session id, never the id)."""

from __future__ import annotations

import hashlib
import json
import time

import anyio
import pytest

from tests.server.conftest import cli_in, events_since, new_key
from tests.server.harness import ServerProcess, http_client, mcp_session
from tests.server.test_e2e import HEADERS, INIT

INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@pytest.fixture(scope="module")
def quota_server(certs, sqlite_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("quota-logs") / "events.jsonl"
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--max-failures", "1000", "--poll-interval", "0.1",
                            "--max-sessions-per-key", "3"], sqlite_env, log).start()
    yield server
    server.stop()


async def _open(server, certs, key):
    """A raw initialize: (status, session id or None, Retry-After)."""
    async with http_client(certs, key, headers=HEADERS, timeout=10) as http:
        r = await http.post(server.url, content=json.dumps(INIT))
        sid = r.headers.get("mcp-session-id")
        if r.status_code == 200 and sid:
            await http.post(server.url, content=json.dumps(INITIALIZED),
                            headers={"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
        return r.status_code, sid, r.headers.get("retry-after")


def open_session(server, certs, key):
    return anyio.run(_open, server, certs, key)


def delete_session(server, certs, key, sid) -> int:
    async def go():
        async with http_client(certs, key, timeout=10) as http:
            return (await http.delete(server.url, headers={"mcp-session-id": sid})).status_code

    return anyio.run(go)


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()[:12]


def test_session_cap_gives_429_with_retry_after_and_an_event_and_spares_other_keys(
        quota_server, certs, sqlite_env):
    greedy = new_key(sqlite_env, "q-greedy", "--scope", "tools:read")
    other = new_key(sqlite_env, "q-other", "--scope", "tools:read")
    before = len(quota_server.events())
    opened = [open_session(quota_server, certs, greedy) for _ in range(3)]
    assert [status for status, _, _ in opened] == [200, 200, 200]
    status, sid, retry_after = open_session(quota_server, certs, greedy)
    assert status == 429 and sid is None and int(retry_after) >= 1
    assert open_session(quota_server, certs, other)[0] == 200  # another key is not starved
    events = events_since(quota_server, before)
    refusal = [e for e in events if e["event"] == "quota_exceeded"]
    assert len(refusal) == 1 and refusal[0]["reason"] == "max_sessions"
    assert refusal[0]["key_id"] == greedy[5:17] and refusal[0]["client_ip"] == "127.0.0.1"
    opened_events = [e for e in events if e["event"] == "session_opened"]
    assert sorted(e["session"] for e in opened_events if e["key_id"] == greedy[5:17]) == sorted(
        digest(sid) for _, sid, _ in opened)
    # Closing one session frees its place.
    assert delete_session(quota_server, certs, greedy, opened[0][1]) == 200
    closed = [e for e in events_since(quota_server, before) if e["event"] == "session_closed"]
    assert [(e["reason"], e["session"]) for e in closed] == [("deleted", digest(opened[0][1]))]
    assert open_session(quota_server, certs, greedy)[0] == 200
    log = quota_server.log_file.read_text()
    assert all(sid not in log for _, sid, _ in opened)  # the id is a capability: never logged


def test_per_key_session_cap_overrides_the_server_default(quota_server, certs, sqlite_env):
    wide = new_key(sqlite_env, "q-wide", "--scope", "tools:read", "--max-sessions", "5")
    narrow = new_key(sqlite_env, "q-narrow", "--scope", "tools:read", "--max-sessions", "1")
    assert [open_session(quota_server, certs, wide)[0] for _ in range(6)] == [200] * 5 + [429]
    assert [open_session(quota_server, certs, narrow)[0] for _ in range(2)] == [200, 429]


def test_a_hundred_sessions_opened_and_closed_in_turn_never_hit_the_cap(quota_server, certs, sqlite_env):
    key = new_key(sqlite_env, "q-sequential", "--scope", "tools:read")

    async def one_session():
        async with mcp_session(quota_server.url, certs, key) as session:  # DELETEs on exit
            return (await session.call_tool("whoami", {})).structured_content["key_id"]

    async def many():
        return [await one_session() for _ in range(100)]

    assert anyio.run(many) == [key[5:17]] * 100


def test_request_rate_gives_429_and_an_update_lifts_it(quota_server, certs, sqlite_env):
    key = new_key(sqlite_env, "q-rated", "--scope", "tools:read", "--rate", "5/min")
    before = len(quota_server.events())

    async def burst(n):
        async with http_client(certs, key, headers=HEADERS, timeout=10) as http:
            out = []
            for _ in range(n):
                r = await http.post(quota_server.url, content=json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "ping"}))
                out.append((r.status_code, r.headers.get("retry-after")))
            return out

    results = anyio.run(burst, 7)
    assert [s for s, _ in results[:5]] != [429] * 5 and results[5][0] == 429 == results[6][0]
    assert 1 <= int(results[5][1]) <= 12  # one token comes back every 12 s at 5/min
    refused = [e for e in events_since(quota_server, before) if e["event"] == "quota_exceeded"]
    assert [e["reason"] for e in refused] == ["rate", "rate"]
    assert cli_in(sqlite_env, "keys", "update", "q-rated", "--rate", "none").returncode == 0
    deadline = time.monotonic() + 3
    while anyio.run(burst, 1)[0][0] == 429:
        assert time.monotonic() < deadline, "rate still applied after keys update --rate none"
        time.sleep(0.1)


def test_idle_sessions_are_ended_in_the_app_and_free_their_place(certs, sqlite_env, tmp_path):
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--max-sessions-per-key", "2", "--session-idle-timeout", "1"],
                           sqlite_env, tmp_path / "events.jsonl").start()
    try:
        key = new_key(sqlite_env, "q-idle", "--scope", "tools:read")
        first = [open_session(server, certs, key) for _ in range(2)]
        assert open_session(server, certs, key)[0] == 429
        deadline = time.monotonic() + 5
        while open_session(server, certs, key)[0] == 429:
            assert time.monotonic() < deadline, "idle sessions were never ended"
            time.sleep(0.2)
        idle = [e for e in server.events() if e["event"] == "session_closed"]
        assert digest(first[0][1]) in {e["session"] for e in idle if e["reason"] == "idle"}
        # Ended in the app too, not only forgotten by the envelope: the id is unknown there now.
        assert delete_session(server, certs, key, first[0][1]) == 404
    finally:
        server.stop()
