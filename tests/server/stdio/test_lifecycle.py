"""`serve --stdio` (issue 14): how children end. With the session (DELETE, idle timeout), with
the key (revocation), with the server (SIGTERM), when over a limit (children per key, spawn
rate, message size), and as a whole process group even when the child ignores SIGTERM."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.server.conftest import new_key
from tests.server.harness import http_client
from tests.server.stdio.conftest import (
    HEADERS,
    alive,
    proc_children,
    raw_pid,
    session,
    stdio_server,
    wait_gone,
)


async def pid_of(s) -> int:
    return int((await s.call_tool("pid", {})).content[0].text)


def test_revocation_ends_the_child(certs, stdio_env, tmp_path):
    from tests.server.conftest import cli_in

    key = new_key(stdio_env, "stdio-revoked", "--scope", "tools:read")
    server = stdio_server(certs, stdio_env, tmp_path / "events.jsonl").start()
    try:
        async def go():
            async with session(server, certs, key) as s:
                pid = await pid_of(s)
                assert cli_in(stdio_env, "keys", "revoke", key.split("_")[1], "--reason", "t").returncode == 0
                gone = await anyio.to_thread.run_sync(wait_gone, pid)
                return gone

        assert anyio.run(go)
        assert any(e["event"] == "session_terminated" and e["reason"] == "revoked" for e in server.events())
    finally:
        server.stop()


def test_no_child_survives_serve_being_stopped(certs, stdio_env, tmp_path):
    key = new_key(stdio_env, "stdio-sigterm", "--scope", "tools:read")
    server = stdio_server(certs, stdio_env, tmp_path / "events.jsonl").start()
    pids: list[int] = []

    async def go():
        async with session(server, certs, key) as a, http_client(certs, key) as http:
            pids.append(await pid_of(a))  # a session with its GET stream open
            pids.append((await raw_pid(http, server.url))[1])  # and one without
            assert set(pids) <= proc_children(server.proc.pid)
            await anyio.to_thread.run_sync(server.stop)  # SIGTERM

    with contextlib.suppress(Exception):  # the client may notice its server going away
        anyio.run(go)
    # It shut down by itself (uvicorn re-raises the SIGTERM it handled: -15), not SIGKILLed by stop().
    assert server.proc.returncode in (0, -signal.SIGTERM), server.all_output()[-2000:]
    assert len(pids) == 2 and not any(alive(p) for p in pids)


def test_idle_session_ends_its_child(certs, stdio_env, tmp_path):
    key = new_key(stdio_env, "stdio-idle", "--scope", "tools:read")
    server = stdio_server(certs, stdio_env, tmp_path / "events.jsonl", "--session-idle-timeout", "1").start()
    try:
        async def go():
            async with http_client(certs, key) as http:  # no GET stream: nothing in flight
                _, pid = await raw_pid(http, server.url)
                return await anyio.to_thread.run_sync(wait_gone, pid)

        assert anyio.run(go)
        assert any(e["event"] == "session_closed" and e["reason"] == "idle" for e in server.events())
    finally:
        server.stop()


def test_children_per_key_cap_answers_429(certs, stdio_env, tmp_path):
    key = new_key(stdio_env, "stdio-capped", "--scope", "tools:read")
    server = stdio_server(certs, stdio_env, tmp_path / "events.jsonl",
                          "--stdio-max-children-per-key", "1", "--stdio-spawn-rate", "2/h").start()
    try:
        async def go():
            async with http_client(certs, key) as http:  # not an initialize: costs no spawn token
                r = await http.post(server.url, headers=HEADERS,
                                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert r.status_code == 400
            async with session(server, certs, key):
                with pytest.raises(ExceptionGroup) as refused:  # the SDK raises on the 429
                    async with session(server, certs, key):
                        pass
                assert refused.group_contains(MCPError)
            async with session(server, certs, key) as s:  # the slot is free again
                return await pid_of(s)

        assert anyio.run(go) > 0
        assert [e["reason"] for e in server.events() if e["event"] == "quota_exceeded"] == [
            "stdio_children_per_key"]
    finally:
        server.stop()


def test_oversized_child_message_fails_the_session(certs, stdio_env, tmp_path):
    key = new_key(stdio_env, "stdio-big", "--scope", "tools:read")
    server = stdio_server(certs, stdio_env, tmp_path / "events.jsonl",
                          "--stdio-max-message-bytes", "65536").start()
    try:
        async def go():
            async with session(server, certs, key) as s:
                assert len((await s.call_tool("big", {"size": 1000})).content[0].text) == 1000
                with pytest.raises(MCPError) as exc:
                    await s.call_tool("big", {"size": 200_000})
                return str(exc.value)

        assert "over 65536 bytes" in anyio.run(go)
        assert [e["reason"] for e in server.events() if e["event"] == "stdio_child_failed"] == [
            "stdio server wrote a message over 65536 bytes"]
    finally:
        server.stop()


def test_a_child_ignoring_sigterm_is_killed_with_its_whole_group(certs, stdio_env, tmp_path):
    key = new_key(stdio_env, "stdio-stubborn", "--scope", "tools:read")
    env = {**stdio_env, "FIXTURE_STUBBORN": "1"}
    server = stdio_server(certs, env, tmp_path / "events.jsonl", "--stdio-env", "FIXTURE_*").start()
    try:
        async def go():
            async with session(server, certs, key) as s:
                return json.loads((await s.call_tool("family", {})).content[0].text)

        family = anyio.run(go)  # the client's DELETE at the end of the session ends the group
        assert wait_gone(family["pid"])  # SIGKILL after the grace period, and reaped
        deadline = time.monotonic() + 10
        while alive(family["grandchild"]) and not _zombie(family["grandchild"]):
            assert time.monotonic() < deadline, "the grandchild outlived its group"
            time.sleep(0.05)
    finally:
        server.stop()


def _zombie(pid: int) -> bool:
    """Killed, waiting for whoever adopted the orphan to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
