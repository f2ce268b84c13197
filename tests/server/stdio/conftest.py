"""Fixtures for `serve --stdio`: the in-repo fixture server behind the real `mcpadmin serve`
over HTTPS, and /proc helpers to see the children it runs."""

from __future__ import annotations

import json
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.server.harness import Certs, ServerProcess, http_client

REPO = Path(__file__).resolve().parents[3]
FIXTURE = [sys.executable, "-m", "tests.server.stdio.fixture_server"]
FIXTURE_TOKEN = "fixture-secret-value-7Q2w"


def stdio_server(certs: Certs, env: dict[str, str], log: Path, *extra: str,
                 command: list[str] | None = None) -> ServerProcess:
    """`mcpadmin serve --stdio ... -- COMMAND` over HTTPS (not started)."""
    return ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                          "--poll-interval", "0.1", "--stdio", "--stdio-cwd", str(REPO), *extra,
                          "--", *(command or FIXTURE)], env, log)


@asynccontextmanager
async def session(server: ServerProcess, certs: Certs, key: str, **callbacks):
    """An initialised official-SDK ClientSession (callbacks: sampling_callback, ...)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (http_client(certs, key) as http,
                streamable_http_client(server.url, http_client=http) as (read, write),
                ClientSession(read, write, **callbacks) as s):
        await s.initialize()
        yield s


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


async def raw_call(http, url: str, session_id: str | None, message: dict) -> tuple[str | None, dict | None]:
    """One POST without the SDK (so no GET stream is held open): (session id, the JSON-RPC
    message the answer carries, if any: a JSON body, or the last event of an SSE one)."""
    headers = {**HEADERS, **({"mcp-session-id": session_id} if session_id else {})}
    r = await http.post(url, json=message, headers=headers)
    assert r.status_code in (200, 202), r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.headers.get("mcp-session-id", session_id), r.json() if r.content else None
    data = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
    return r.headers.get("mcp-session-id", session_id), json.loads(data[-1]) if data and data[-1] else None


async def raw_pid(http, url: str) -> tuple[str, int]:
    """Open a session by hand and return (its id, its child's pid)."""
    sid, _ = await raw_call(http, url, None, INIT)
    assert sid is not None
    await raw_call(http, url, sid, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    _, answer = await raw_call(http, url, sid, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                "params": {"name": "pid", "arguments": {}}})
    assert answer is not None
    return sid, int(answer["result"]["content"][0]["text"])


def proc_children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(pid) and not fields.get("State", "").startswith("Z"):
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists (a zombie counts: it was not reaped)."""
    return Path(f"/proc/{pid}").exists()


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def stdio_env(sqlite_env: dict[str, str]) -> dict[str, str]:
    return {**sqlite_env, "FIXTURE_TOKEN": FIXTURE_TOKEN, "NOT_ALLOWED": "nope"}
