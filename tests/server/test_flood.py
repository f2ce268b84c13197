"""Guessing floods against a real `mcpadmin serve`: attempts are throttled when they arrive, and
no stranger can make a valid key fail, not even on a replica that never saw it."""

from __future__ import annotations

import json
from collections import Counter

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import KeyHasher, generate_token
from tests.server.harness import ServerProcess, base_env

INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "t", "version": "1"}}})
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
FLOOD = 200


@pytest.fixture
def key(backend):
    with load_settings().open_store() as store:
        return lifecycle.create_key(store, KeyHasher(load_settings().hash_params), name="holder",
                                    actor="t", now=utcnow(), scopes=["tools:read"]).token.reveal()


def serve(tmp_path, name: str, *args: str) -> ServerProcess:
    return ServerProcess(["--no-log-stdout", "--poll-interval", "0.1", *args],
                         base_env(), tmp_path / f"{name}.jsonl", tls=False).start()


async def _flood(url: str, key_id: str, holder_key: str | None = None):
    """FLOOD concurrent wrong guesses at key_id over FLOOD connections; the holder's own request
    goes in the middle of them when given. Returns the guesses' responses and the holder's."""
    import httpx2

    limits = httpx2.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
    async with httpx2.AsyncClient(limits=limits, timeout=60.0) as http:
        async def post(token: str):
            return await http.post(url, content=INIT, headers={**HEADERS, "Authorization": f"Bearer {token}"})

        guesses, holder = [], []

        async def guess():
            guesses.append(await post(generate_token(key_id)[1].reveal()))

        async def own():
            await anyio.sleep(0.05)
            holder.append(await post(holder_key or ""))

        async with anyio.create_task_group() as tg:
            for _ in range(FLOOD):
                tg.start_soon(guess)
            if holder_key:
                tg.start_soon(own)
        after = await post(holder_key) if holder_key else None
    return guesses, holder, after


def test_concurrent_guesses_are_throttled_on_arrival_not_after_argon2(tmp_path, key):
    server = serve(tmp_path, "flood", "--max-failures", "10", "--max-verifying", "2")
    try:
        guesses, _, _ = anyio.run(_flood, server.url, key[5:17])
        events = server.events()
    finally:
        server.stop()
    statuses = Counter(r.status_code for r in guesses)
    assert set(statuses) <= {401, 429}, statuses  # in particular, no 5xx
    reached_argon2 = [e for e in events if e["event"] == "auth_failure" and e["reason"] == "wrong_secret"]
    assert 1 <= len(reached_argon2) <= 10 and len(reached_argon2) == statuses[401]
    assert statuses[429] >= FLOOD - 10
    assert all(int(r.headers["retry-after"]) >= 1 for r in guesses if r.status_code == 429)
    limited = [e for e in events if e["event"] == "rate_limited"]
    assert len(limited) == statuses[429]
    assert {e["reason"] for e in limited} <= {"too_many_failures", "client_busy", "server_busy"}
    assert all(e["key_id"] == key[5:17] and e["client_ip"] == "127.0.0.1" for e in limited)


def test_a_fresh_replica_admits_the_holder_while_strangers_flood_its_key_id(tmp_path, key):
    first = serve(tmp_path, "first")
    try:  # the holder used the key once, on another replica
        import httpx2

        r = httpx2.post(first.url, content=INIT, headers={**HEADERS, "Authorization": f"Bearer {key}"})
        assert r.status_code == 200
    finally:
        first.stop()
    fresh = serve(tmp_path, "fresh", "--max-failures", "10", "--max-verifying", "2")
    try:  # a new process that never saw the key; the strangers share the holder's IP...
        import httpx2

        for _ in range(11):  # ...and have used up its failure window
            last = httpx2.post(fresh.url, content=INIT, headers={
                **HEADERS, "Authorization": f"Bearer {generate_token(key[5:17])[1].reveal()}"})
        assert last.status_code == 429
        guesses, during, after = anyio.run(_flood, fresh.url, key[5:17], key)
    finally:
        fresh.stop()
    assert {r.status_code for r in guesses} <= {401, 429}
    assert sum(r.status_code == 429 for r in guesses) >= FLOOD - 10  # the flood was throttled...
    assert during[0].status_code == 200  # ...not the holder, neither during it...
    assert after is not None and after.status_code == 200  # ...nor after it
