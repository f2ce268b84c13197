"""Store-level contract: what both backends promise beyond the CLI (version, audit, change
messages, last-use and rehash that cannot undo a revocation, namespaces, TLS)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import trustme

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.errors import BackendUnavailable, Conflict, InvalidInput
from finops_mcp_admin.keys import HashParams, KeyHasher
from finops_mcp_admin.store.redis import RedisStore
from finops_mcp_admin.store.redis_client import redact_url
from tests.redis_server import server_binary, start_tls_redis

FAST = HashParams(time_cost=1, memory_cost=1024)


@pytest.fixture
def store(backend):
    with load_settings().open_store() as s:
        yield s


def _create(store, name="k", **kw):
    return lifecycle.create_key(store, KeyHasher(FAST), name=name, actor="t", now=utcnow(), **kw)


def test_touch_and_rehash_do_not_bump_the_version_or_undo_a_revocation(store):
    issued = _create(store)
    v = store.version()
    store.touch(issued.key.id, utcnow())
    assert store.version() == v
    assert store.get(issued.key.id).key.last_used_at is not None
    lifecycle.revoke_key(store, issued.key.id, reason=None, now=utcnow())
    store.touch(issued.key.id, utcnow())  # a late write from a server must not resurrect it
    store.set_hash(issued.key.id, KeyHasher(FAST).hash(issued.token))
    assert store.get(issued.key.id).key.status(utcnow()) == "revoked"


def test_outdated_hash_is_upgraded_on_successful_verify(store):
    issued = _create(store)
    stronger = KeyHasher(HashParams(time_cost=2, memory_cost=2048))
    old_hash = store.get(issued.key.id).key_hash
    assert stronger.needs_rehash(old_hash)
    assert lifecycle.verify_key(store, stronger, issued.token, utcnow()).valid
    new_hash = store.get(issued.key.id).key_hash
    assert new_hash != old_hash and not stronger.needs_rehash(new_hash)
    assert "m=2048,t=2" in new_hash
    assert lifecycle.verify_key(store, stronger, issued.token, utcnow()).valid


def test_failed_verify_never_rehashes(store):
    issued = _create(store)
    before = store.get(issued.key.id).key_hash
    from finops_mcp_admin.keys import generate_token

    _, forged = generate_token(issued.key.id)
    stronger = KeyHasher(HashParams(time_cost=2, memory_cost=2048))
    assert not lifecycle.verify_key(store, stronger, forged, utcnow()).valid
    assert store.get(issued.key.id).key_hash == before


def test_failed_transaction_writes_nothing(store):
    _create(store, "taken")
    v = store.version()
    trail = store.audit_events()
    with pytest.raises(Conflict):
        _create(store, "taken")
    assert store.version() == v and store.audit_events() == trail


def test_audit_event_shape(store):
    issued = _create(store, "audited", scopes=["tools:read"])
    (event,) = store.audit_events()
    assert event.action == "create" and event.key_id == issued.key.id
    assert event.actor == "t"  # the actor the caller named, the same as the record's created_by
    assert store.get(issued.key.id).key.created_by == "t"
    assert event.detail["scopes"] == ["tools:read"]


def test_redis_mutations_publish_a_change_message(redis_server):
    import redis

    ns = "pubsubtest"
    sub = redis.Redis.from_url(redis_server.url, decode_responses=True).pubsub()
    sub.subscribe("{" + ns + "}:changes")
    sub.get_message(timeout=1)  # subscription confirmation
    settings = load_settings(store=redis_server.url, namespace=ns)
    with settings.open_store() as store:
        issued = _create(store, "published")
        lifecycle.revoke_key(store, issued.key.id, reason="x", now=utcnow())
    messages = []
    deadline = time.monotonic() + 2
    while len(messages) < 2 and time.monotonic() < deadline:
        m = sub.get_message(timeout=0.5)
        if m and m["type"] == "message":
            messages.append(json.loads(m["data"]))
    assert [m["actions"] for m in messages] == [["create"], ["revoke"]]
    assert messages[1]["key_ids"] == [issued.key.id]
    assert issued.token.reveal() not in json.dumps(messages)


def test_change_feed_announces_each_commit_on_redis_and_is_absent_on_sqlite(store, backend):
    feed = store.change_feed(1.0)
    if backend.kind == "sqlite":
        assert feed is None  # no push channel: a server polls version()
        return
    assert feed is not None
    try:
        _create(store, "announced")
        deadline = time.monotonic() + 2
        while not feed.wait(0.2):
            assert time.monotonic() < deadline, "no announcement within 2 s"
        assert not feed.wait(0.2)  # one commit, one announcement
    finally:
        feed.close()


def test_redis_namespaces_are_isolated(redis_server):
    with load_settings(store=redis_server.url, namespace="env-a").open_store() as a, \
         load_settings(store=redis_server.url, namespace="env-b").open_store() as b:
        _create(a, "same-name")
        _create(b, "same-name")  # no conflict across namespaces
        assert [k.name for k in a.list_keys()] == ["same-name"]
        assert a.list_keys()[0].id != b.list_keys()[0].id


def test_invalid_namespace_is_rejected():
    with pytest.raises(InvalidInput):
        load_settings(store="redis://x", namespace="bad}ns")


def test_redact_url_hides_password_only():
    assert redact_url("rediss://u:hunter2@h:6380/0") == "rediss://u:***@h:6380/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


@pytest.fixture(scope="module")
def tls_redis(redis_server, tmp_path_factory):
    ca = trustme.CA()
    workdir = tmp_path_factory.mktemp("tls")
    port, handle = start_tls_redis(server_binary(), workdir, redis_server, ca)
    yield port, str(workdir / "ca.pem")
    if hasattr(handle, "stop"):
        handle.stop()


def test_rediss_with_private_ca_works_end_to_end(cli, tls_redis):
    port, ca_file = tls_redis
    env = {"MCPADMIN_REDIS_CA": ca_file, "MCPADMIN_NAMESPACE": "tlstest"}
    url = f"rediss://localhost:{port}/0"
    created = cli("keys", "create", "over-tls", "-q", "--store", url, env=env)
    assert created.code == 0, created.stderr
    verified = cli("keys", "verify", "--store", url, stdin=created.stdout, env=env)
    assert verified.code == 0, verified.stderr


def test_rediss_without_the_ca_fails_closed(cli, tls_redis):
    port, _ = tls_redis
    r = cli("keys", "list", "--store", f"rediss://localhost:{port}/0")
    assert r.code == 5 and "certificate" in r.stderr.lower()
    assert r.stderr.count("\n") == 1


def test_rediss_checks_the_hostname(tls_redis):
    port, ca_file = tls_redis
    RedisStore(f"rediss://localhost:{port}/0", ca_file=ca_file).close()
    # Same server, same CA, but the certificate names only "localhost".
    with pytest.raises(BackendUnavailable, match=r"(?i)hostname|certificate|match"):
        RedisStore(f"rediss://127.0.0.1:{port}/0", ca_file=ca_file)


def test_quotas_survive_a_round_trip_and_an_audited_update(store):
    issued = _create(store, "quota", rate="600/MIN", max_sessions=8)
    assert (issued.key.rate, issued.key.max_sessions) == ("600/min", 8)  # canonical form
    stored = store.get(issued.key.id).key
    assert (stored.rate, stored.max_sessions) == ("600/min", 8)
    assert [(k.rate, k.max_sessions) for k in store.list_keys()] == [("600/min", 8)]
    version = store.version()
    updated = lifecycle.update_key(store, "quota", actor="admin", now=utcnow(), rate="10/s",
                                   max_sessions=None)
    assert (updated.rate, updated.max_sessions) == ("10/s", None)
    assert (store.get(issued.key.id).key.rate, store.get(issued.key.id).key.max_sessions) == ("10/s", None)
    assert store.version() == version + 1
    (event,) = [e for e in store.audit_events() if e.action == "update"]
    assert event.actor == "admin" and event.key_id == issued.key.id
    assert event.detail == {"before": {"rate": "600/min", "max_sessions": 8},
                            "after": {"rate": "10/s", "max_sessions": None}}
    rotated = lifecycle.rotate_key(store, KeyHasher(FAST), "quota", grace=timedelta(0), actor="t",
                                   now=utcnow())[1].key
    assert store.get(rotated.id).key.rate == "10/s"  # a rotated key keeps its quotas


@pytest.mark.parametrize("change", [{"rate": "0/min"}, {"rate": "fast"}, {"max_sessions": 0}, {}])
def test_invalid_quota_updates_change_nothing(store, change):
    issued = _create(store, "quota-bad")
    version = store.version()
    with pytest.raises(InvalidInput):
        lifecycle.update_key(store, "quota-bad", actor="t", now=utcnow(), **change)
    assert store.version() == version and store.get(issued.key.id).key.rate is None


def test_revoked_key_cannot_be_updated(store):
    issued = _create(store, "quota-gone")
    lifecycle.revoke_key(store, issued.key.id, reason=None, now=utcnow())
    with pytest.raises(Conflict):
        lifecycle.update_key(store, issued.key.id, actor="t", now=utcnow(), rate="1/s")


def test_a_sqlite_store_written_before_quotas_still_opens_and_takes_them(tmp_path):
    """Records live as JSON in `api_keys.record`: a database (and records) from before the quota
    fields opens unchanged, reads 'no quota of its own', and accepts an update."""
    import sqlite3

    from finops_mcp_admin.store.sqlite import SqliteStore

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, record TEXT NOT NULL,
            key_hash TEXT NOT NULL, last_used_at TEXT, legacy_bucket INTEGER);
        CREATE TABLE names (name TEXT PRIMARY KEY, key_id TEXT NOT NULL);
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE cors_origins (origin TEXT PRIMARY KEY);
        CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,
            actor TEXT NOT NULL, action TEXT NOT NULL, key_id TEXT, name TEXT, detail TEXT NOT NULL);
        INSERT INTO meta VALUES ('version', '3'), ('schema', '1');
        INSERT INTO names VALUES ('old', 'AAAAAAAAAAAA');
    """)
    old_record = {"id": "AAAAAAAAAAAA", "name": "old", "created_at": "2026-01-01T00:00:00Z",
                  "created_by": "t", "scopes": ["tools:read"], "owner": None, "description": None,
                  "state": "active", "expires_at": None, "rotated_from": None, "rotated_to": None,
                  "revoked_at": None, "revoked_reason": None, "last_used_at": None, "legacy": False}
    db.execute("INSERT INTO api_keys(id, name, record, key_hash) VALUES (?,?,?,?)",
               ("AAAAAAAAAAAA", "old", json.dumps(old_record), "$argon2id$v=19$m=1024,t=1,p=1$x$y"))
    db.commit()
    db.close()
    with SqliteStore(f"sqlite:///{path}") as store:
        key = store.get("AAAAAAAAAAAA").key
        assert (key.rate, key.max_sessions, key.extra) == (None, None, {})
        lifecycle.update_key(store, "old", actor="t", now=utcnow(), max_sessions=2)
        assert store.get("AAAAAAAAAAAA").key.max_sessions == 2 and store.version() == 4


def test_verified_token_digests_are_shared_without_a_version_bump(store, backend):
    from finops_mcp_admin.server.auth import shared_digest

    issued = _create(store)
    key_id, token = issued.key.id, issued.token.reveal()
    assert store.verified_digest(key_id) is None
    v = store.version()
    digest = shared_digest(token, key_id)
    store.record_verified(key_id, digest)
    assert store.verified_digest(key_id) == digest and store.version() == v
    assert store.verified_digest("AAAAAAAAAAAA") is None
    store.record_verified(key_id, None)
    store.record_verified(key_id, None)  # forgetting twice is harmless
    assert store.verified_digest(key_id) is None and store.version() == v
    store.record_verified(key_id, digest)
    everything = backend.dump()
    assert any(name.endswith("verified") and everything[name] for name in everything)  # seen...
    dumped = json.dumps(everything, default=str)
    assert token not in dumped and token[18:50] not in dumped  # ...and no part of the secret
    assert shared_digest(token, key_id) != shared_digest(token, "BBBBBBBBBBBB")  # salted by id
