"""The auth core in-process: throttling, what never reaches argon2, the verification cache,
static hashes and SIGHUP reload, last-use bookkeeping."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import generate_token
from finops_mcp_admin.server.auth import parse_static_hashes
from finops_mcp_admin.server.throttle import FailureThrottle
from tests.server.asgi import FAST, CountingHasher, call, make_envelope


@pytest.fixture
def store(backend):
    with load_settings().open_store() as s:
        yield s


def issue(store, name, scopes=("tools:read",)):
    return lifecycle.create_key(store, CountingHasher(), name=name, actor="t", now=utcnow(),
                                scopes=scopes).token.reveal()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def run(coro_fn, *args, **kw):
    return anyio.run(lambda: coro_fn(*args, **kw))


def test_unknown_ids_and_malformed_tokens_never_reach_argon2(store, tmp_path):
    app, inner, hasher = make_envelope(store, tmp_path)
    key = issue(store, "real")
    corrupted = key[:-1] + ("Q" if key[-1] != "Q" else "R")  # never the real key by accident
    for token in [generate_token()[1].reveal() for _ in range(20)] + [corrupted, "x" * 40, "short"]:
        status, _, _ = run(call, app, headers=bearer(token))
        assert status == 401
    assert hasher.verifications == 0
    assert inner.admitted == []


def test_cache_makes_argon2_run_once_per_key(store, tmp_path):
    app, inner, hasher = make_envelope(store, tmp_path)
    key = issue(store, "cached")
    for _ in range(5):
        assert run(call, app, headers=bearer(key))[0] == 200
    assert hasher.verifications == 1 and len(inner.admitted) == 5
    user = inner.admitted[0]["user"]
    assert user.access_token.client_id == key[5:17] and user.scopes == ["tools:read"]
    assert key not in repr(user.access_token.model_dump())


def test_repeated_failures_from_one_ip_are_throttled_with_retry_after(store, tmp_path):
    app, _, _ = make_envelope(store, tmp_path, throttle=FailureThrottle(3, 30))
    good = issue(store, "victim")
    for _ in range(3):
        assert run(call, app, headers=bearer(generate_token()[1].reveal()), client="10.9.9.9")[0] == 401
    status, headers, _ = run(call, app, headers=bearer(good), client="10.9.9.9")
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 30
    assert run(call, app, headers=bearer(good), client="10.1.1.1")[0] == 200  # other IPs unaffected
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "rate_limited" and events[-1]["client_ip"] == "10.9.9.9"


def test_guesses_at_a_key_id_are_limited_per_ip_before_argon2_never_per_key_id(store, tmp_path):
    app, _, hasher = make_envelope(store, tmp_path, throttle=FailureThrottle(3, 30))
    key = issue(store, "target")
    for _ in range(3):
        _, forged = generate_token(key[5:17])
        assert run(call, app, headers=bearer(forged.reveal()), client="10.0.1.1")[0] == 401
    spent = hasher.verifications
    _, forged = generate_token(key[5:17])
    status, headers, _ = run(call, app, headers=bearer(forged.reveal()), client="10.0.1.1")
    assert status == 429 and headers["retry-after"] and hasher.verifications == spent
    # The key id is public: guesses at it from elsewhere are no lever on its holder, who has
    # never used the key yet.
    assert run(call, app, headers=bearer(key), client="10.0.2.1")[0] == 200


def test_strangers_behind_the_holders_ip_cannot_lock_out_a_key_verified_on_another_replica(
        store, tmp_path):
    key = issue(store, "holder")
    first, _, _ = make_envelope(store, tmp_path)
    assert run(call, first, headers=bearer(key), client="10.5.5.5")[0] == 200  # verified once
    # A replica that never saw the key (a new verifier: nothing in memory), sharing the store.
    fresh, _, hasher = make_envelope(store, tmp_path, throttle=FailureThrottle(3, 30))
    for _ in range(5):  # strangers behind the same NAT guess at the public id
        _, forged = generate_token(key[5:17])
        run(call, fresh, headers=bearer(forged.reveal()), client="10.5.5.5")
    _, forged = generate_token(key[5:17])
    assert run(call, fresh, headers=bearer(forged.reveal()), client="10.5.5.5")[0] == 429
    spent = hasher.verifications
    assert run(call, fresh, headers=bearer(key), client="10.5.5.5")[0] == 200
    assert hasher.verifications == spent + 1  # recognised, then still verified with argon2
    fresh.verifier.invalidate()  # any store change anywhere drops the whole cache
    assert run(call, fresh, headers=bearer(key), client="10.5.5.5")[0] == 200


def test_a_revoked_key_loses_its_exemption_everywhere(store, tmp_path):
    key = issue(store, "leaver")
    key_id = key[5:17]
    app, _, _ = make_envelope(store, tmp_path, throttle=FailureThrottle(2, 30))
    assert run(call, app, headers=bearer(key))[0] == 200
    assert store.verified_digest(key_id) is not None
    lifecycle.revoke_key(store, key_id, reason=None, now=utcnow())
    app.verifier.invalidate()
    assert run(call, app, headers=bearer(key))[0] == 401  # exempt once more: argon2 says revoked
    assert store.verified_digest(key_id) is None and not app.verifier.previously_verified(key)
    assert run(call, app, headers=bearer(key))[0] == 401
    assert run(call, app, headers=bearer(key))[0] == 429  # an ordinary guess again


def test_static_hashes_with_and_without_key_ids(tmp_path):
    hasher = CountingHasher()
    from finops_mcp_admin.keys import Secret

    plain_key = "static-deployment-key-0123456789"
    key_id, mcpk = generate_token()
    lines = f"# comment\n{hasher.hash(Secret(plain_key))}\n{key_id}:{hasher.hash(mcpk)}\n"
    entries = parse_static_hashes(lines)
    assert [e.key_id for e in entries] == [None, key_id]
    as_env = ",".join(line for line in lines.splitlines() if not line.startswith("#"))
    assert parse_static_hashes(as_env) == entries  # MCP_API_KEY_HASHES: comma-separated
    app, _, _ = make_envelope(None, tmp_path, static=entries)
    assert run(call, app, headers=bearer(plain_key))[0] == 200
    assert run(call, app, headers=bearer(mcpk.reveal()))[0] == 200
    assert run(call, app, headers=bearer("not-the-static-key-000000"))[0] == 401
    from finops_mcp_admin.errors import InvalidInput

    with pytest.raises(InvalidInput):
        parse_static_hashes("not-a-phc")


def test_sighup_reload_keeps_old_hashes_when_the_file_is_broken(tmp_path, monkeypatch):
    from finops_mcp_admin.keys import KeyHasher, Secret
    from finops_mcp_admin.server.run import ServeOptions, build

    monkeypatch.delenv("MCP_API_KEY_HASHES", raising=False)
    hashes = tmp_path / "hashes.txt"
    first, second = "first-static-key-000000000000", "second-static-key-00000000000"
    hashes.write_text(KeyHasher(FAST).hash(Secret(first)) + "\n")
    settings = load_settings()
    settings = settings.__class__(**{**settings.__dict__, "hash_params": FAST})
    server = build(settings, ServeOptions(use_store=False, hashes_file=str(hashes),
                                          app_ref="tests.server.asgi:Recorder",
                                          log_stdout=False, log_file=str(tmp_path / "ev.jsonl")))
    server.app.app = __import__("tests.server.asgi", fromlist=["Recorder"]).Recorder()
    assert run(call, server.app, headers=bearer(first))[0] == 200
    hashes.write_text(KeyHasher(FAST).hash(Secret(second)) + "\n")
    server.reload_static_hashes()
    assert run(call, server.app, headers=bearer(first))[0] == 401  # cache dropped, hash gone
    assert run(call, server.app, headers=bearer(second))[0] == 200
    hashes.write_text("garbage\n")
    server.reload_static_hashes()
    assert run(call, server.app, headers=bearer(second))[0] == 200
    assert "config_reload_failed" in (tmp_path / "ev.jsonl").read_text()


def test_last_use_is_recorded_at_most_once_a_minute(store, tmp_path):
    app, _, _ = make_envelope(store, tmp_path)
    key = issue(store, "used")
    key_id = key[5:17]
    assert store.get(key_id).key.last_used_at is None
    for _ in range(3):
        assert run(call, app, headers=bearer(key))[0] == 200
    deadline = time.monotonic() + 2
    while store.get(key_id).key.last_used_at is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first = store.get(key_id).key.last_used_at
    store.touch(key_id, first.replace(year=2020))  # if the server wrote again we would see it
    for _ in range(3):
        assert run(call, app, headers=bearer(key))[0] == 200
    time.sleep(0.2)
    assert store.get(key_id).key.last_used_at.year == 2020


def test_duplicate_json_keys_cannot_smuggle_a_write_tool(store, tmp_path):
    app, inner, _ = make_envelope(store, tmp_path)
    key = issue(store, "smuggler")
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_tool","name":"write_tool"}}'
    assert run(call, app, headers=bearer(key), body=body)[0] == 400
    batch = json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "write_tool"}}])
    status, headers, _ = run(call, app, headers=bearer(key), body=batch.encode())
    assert status == 403 and 'scope="tools:write"' in headers["www-authenticate"]
    write = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "write_tool"}})
    for encoding in ("utf-16-le", "utf-16-be", "utf-16", "utf-32"):  # json.loads(bytes) would read these
        assert run(call, app, headers=bearer(key), body=write.encode(encoding))[0] == 400, encoding
    assert inner.admitted == []


def test_a_request_ended_by_revocation_gets_the_same_challenge_as_any_401(store, tmp_path):
    # The session registry answers requests it cuts short; its 401 must name the RFC 9728
    # metadata like every other 401 of the envelope (MCP 2025-11-25).
    from finops_mcp_admin.keys import KeyHasher
    from finops_mcp_admin.security_events.writer import SecurityEventLog
    from finops_mcp_admin.server._asgi import Request
    from finops_mcp_admin.server.auth import KeyVerifier
    from finops_mcp_admin.server.sessions import SessionRegistry

    events = SecurityEventLog(to_stdout=False, path=str(tmp_path / "registry.jsonl"))
    verifier = KeyVerifier(store, KeyHasher(FAST))
    registry = SessionRegistry(events, verifier)
    app, _, _ = make_envelope(store, tmp_path, sessions=registry)
    bad = anyio.run(call, app, "POST", "/mcp", {"Authorization": "Bearer " + "x" * 40})
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [(b"host", b"localhost")],
             "client": ("10.0.0.1", 5555), "scheme": "https", "query_string": b""}
    challenge = registry.challenge_for(Request(scope)).decode()
    assert bad[0] == 401 and "resource_metadata=" in challenge
    assert challenge == bad[1]["www-authenticate"]


def test_parallel_first_requests_of_one_key_share_one_verification(store, tmp_path):
    # A client with a pool of 8 connections starting at once: none is refused as client_busy
    # (at most 2 verifications per IP may run), and argon2 runs once for all of them.
    app, inner, hasher = make_envelope(store, tmp_path)
    key = issue(store, "pooled")
    statuses: list[int] = []

    async def burst():
        async def one():
            statuses.append((await call(app, headers=bearer(key)))[0])

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)

    anyio.run(burst)
    assert statuses == [200] * 8
    assert hasher.verifications == 1 and len(inner.admitted) == 8


def test_parallel_wrong_guesses_each_count_as_a_failure(store, tmp_path):
    # Single flight must not turn 8 guesses into one: each waiter that did not verify makes its
    # own attempt, so the failure window sees every guess.
    throttle = FailureThrottle(max_failures=3, window=60)
    app, inner, _ = make_envelope(store, tmp_path, throttle=throttle)
    key = issue(store, "guessed")
    wrong = key[:5] + generate_token()[1].reveal()[5:]
    statuses: list[int] = []

    async def burst():
        async def one():
            statuses.append((await call(app, headers=bearer(wrong)))[0])

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)

    anyio.run(burst)
    assert 429 in statuses and set(statuses) <= {401, 429} and inner.admitted == []


def test_a_flood_that_ignores_retry_after_is_answered_late_and_a_polite_client_at_once(store, tmp_path):
    from finops_mcp_admin.server.throttle import Tarpit

    app, _, _ = make_envelope(store, tmp_path, throttle=FailureThrottle(1, 60))
    # One frozen second: a burst that straddled a second's turn (slow under a loaded machine)
    # started a fresh count and was answered at once.
    app.tarpit = Tarpit(after=4, delay=(30.0, 30.0), clock=lambda: 1000.0)
    answered: list[int] = []

    async def flood():
        async def guess():
            answered.append((await call(app, headers=bearer(generate_token()[1].reveal()),
                                        client="10.6.6.6"))[0])

        held = 0
        with anyio.move_on_after(20):  # cancelled once the held ones are counted
            async with anyio.create_task_group() as tg:
                for _ in range(12):
                    tg.start_soon(guess)
                while len(answered) < 5 or app.tarpit.held < 7:
                    await anyio.sleep(0.01)
                held = app.tarpit.held
                tg.cancel_scope.cancel()
        return held

    held = run(flood)
    # one guess reached argon2 (401); four refusals in that second were answered at once (429);
    # the other seven, sent regardless, wait in the tarpit instead of costing the loop
    assert sorted(answered) == [401, 429, 429, 429, 429] and held == 7
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "rate_limited" for e in events) == 11  # each logged on arrival
    # another client at the same moment is not slowed
    status, _, _ = run(call, app, headers=bearer(generate_token()[1].reveal()), client="10.7.7.7")
    assert status == 401
