"""The production store: Redis (or Valkey / ElastiCache), shared by every server replica.

Layout under the namespace hash tag `{ns}` (one cluster slot, so multi-key transactions stay
legal on a cluster):

    {ns}:rec:<id>     STRING the JSON record (no secret, no hash)
    {ns}:hash:<id>    STRING the argon2id PHC string
    {ns}:used         HASH  id -> last use (ISO)
    {ns}:verified     HASH  id -> hex digest of the token that verified (server/auth.py)
    {ns}:ids          SET   every key id — list reads this index (then MGET), never KEYS/SCAN
    {ns}:name:<name>  STRING id of the newest key issued under the name
    {ns}:legacy:<b>   SET   ids of imported non-mcpk keys in fingerprint bucket b
    {ns}:cors         SET   the CORS allowlist
    {ns}:meta         HASH  lookup_salt, schema
    {ns}:version      INT   bumped by every mutation
    {ns}:audit        STREAM admin audit trail (actor, action, key id, time — never a secret)
    {ns}:changes      pub/sub channel announcing each committed mutation

Mutations are optimistic transactions: every key read is WATCHed, the writes, the version bump,
the audit entries and the PUBLISH go in one MULTI/EXEC, and the whole step re-runs if a watched
key changed. Last-use and rehash write keys that no mutation rewrites, so they can never undo one.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..durations import from_iso, iso, utcnow
from ..errors import BackendUnavailable
from ..keys import ApiKey
from .base import AuditEvent, ChangeFeed, KeyStore, PendingAudit, StoredKey, T
from .redis_client import SOCKET_TIMEOUT, as_members, as_stream, as_text, connect, redact_url, redis_errors

if TYPE_CHECKING:
    import redis

#: Optimistic transactions re-run on contention; 20 concurrent writers settle well within this.
MAX_ATTEMPTS = 200
_BATCH = 2000


class _RedisTx:
    def __init__(self, store: RedisStore, pipe: redis.client.Pipeline) -> None:
        self._store = store
        self._pipe = pipe
        self.writes: list[Callable[[Any], None]] = []
        self.pending: list[PendingAudit] = []
        self._salt: str | None = None

    def _watched(self, name: str) -> None:
        self._pipe.watch(name)

    def get(self, key_id: str) -> StoredKey | None:
        rec = self._store.k("rec", key_id)
        self._watched(rec)
        return self._store.decode(as_text(self._pipe.get(rec)),
                                  as_text(self._pipe.get(self._store.k("hash", key_id))))

    def current_id(self, name: str) -> str | None:
        pointer = self._store.k("name", name)
        self._watched(pointer)
        return as_text(self._pipe.get(pointer))

    def all_keys(self) -> list[ApiKey]:
        # Every mutation bumps the version, so watching it makes this bulk read consistent.
        self._watched(self._store.k("version"))
        return self._store.list_keys()

    def put(self, key: ApiKey, key_hash: str | None = None, legacy_bucket: int | None = None) -> None:
        store = self._store
        record = json.dumps(key.with_changes(last_used_at=None).to_stored(), separators=(",", ":"))

        def write(pipe: Any) -> None:
            pipe.set(store.k("rec", key.id), record)
            if key_hash is not None:
                pipe.set(store.k("hash", key.id), key_hash)
                pipe.sadd(store.k("ids"), key.id)
                if legacy_bucket is not None:
                    pipe.sadd(store.k("legacy", str(legacy_bucket)), key.id)

        self.writes.append(write)

    def set_current(self, name: str, key_id: str) -> None:
        self.writes.append(lambda pipe: pipe.set(self._store.k("name", name), key_id))

    def audit(self, action: str, key_id: str | None, name: str | None, *, actor: str | None = None,
              **detail: Any) -> None:
        self.pending.append(PendingAudit(action, key_id, name, detail, actor))

    def lookup_salt(self) -> str:
        if self._salt is None:
            meta = self._store.k("meta")
            self._watched(meta)
            self._salt = as_text(self._pipe.hget(meta, "lookup_salt"))
            if self._salt is None:
                salt = self._salt = secrets.token_hex(16)
                self.writes.append(lambda pipe: pipe.hset(meta, "lookup_salt", salt))
        return self._salt

    def cors_origins(self) -> set[str]:
        self._watched(self._store.k("cors"))
        return self._store.cors_origins()

    def set_cors_origins(self, add: set[str], remove: set[str]) -> None:
        def write(pipe: Any) -> None:
            if add:
                pipe.sadd(self._store.k("cors"), *sorted(add))
            if remove:
                pipe.srem(self._store.k("cors"), *sorted(remove))

        self.writes.append(write)


class _RedisChangeFeed(ChangeFeed):
    def __init__(self, client: redis.Redis, channel: str, display_url: str) -> None:
        # Held, not just used: a collected client closes its pool and the subscribed connection.
        self._client = client
        self._display_url = display_url
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            with redis_errors(display_url):
                self._pubsub.subscribe(channel)
        except BackendUnavailable:
            self.close()
            raise

    def wait(self, timeout: float) -> bool:
        with redis_errors(self._display_url):
            return self._pubsub.get_message(timeout=timeout) is not None

    def close(self) -> None:
        self._pubsub.close()
        self._client.close()


class RedisStore(KeyStore):
    """KeyStore on Redis; see the module docstring for the layout."""

    def __init__(self, url: str, namespace: str = "mcpadmin", actor: str = "",
                 password: str | None = None, ca_file: str | None = None,
                 audit_maxlen: int = 100_000, retries: int = 0, server_name: str | None = None) -> None:
        self.display_url = redact_url(url) + (f" (as {server_name})" if server_name else "")
        self.url, self._password, self._ca_file = url, password, ca_file
        self._server_name = server_name
        self.namespace = namespace
        self._actor = actor
        self._audit_maxlen = audit_maxlen
        self._prefix = "{" + namespace + "}:"
        with self._errors():
            self.client = connect(url, password, ca_file, retries=retries, server_name=server_name)
            self.client.ping()

    def k(self, *parts: str) -> str:
        """A namespaced Redis key."""
        return self._prefix + ":".join(parts)

    def _errors(self) -> Any:
        return redis_errors(self.display_url)

    @staticmethod
    def decode(record: str | None, key_hash: str | None, used: str | None = None) -> StoredKey | None:
        """A StoredKey from its stored parts (None when the key does not exist)."""
        if record is None:
            return None
        data = json.loads(record)
        if used:
            data["last_used_at"] = used
        return StoredKey(ApiKey.from_stored(data), key_hash or "")

    def transaction(self, fn: Callable[[Any], T]) -> T:
        from redis.exceptions import WatchError

        for attempt in range(MAX_ATTEMPTS):
            # redis-py reports a connection lost during EXEC as WatchError too; the nonce, written
            # inside the transaction, tells an applied commit from a real conflict, so a lost
            # reply never makes us run (and e.g. rotate) a second time.
            nonce = self.k("txn", secrets.token_hex(8))
            with self._errors(), self.client.pipeline(transaction=True) as pipe:
                tx = _RedisTx(self, pipe)
                try:
                    result = fn(tx)
                    if not (tx.writes or tx.pending):
                        return result
                    pipe.multi()
                    for write in tx.writes:
                        write(pipe)
                    pipe.incr(self.k("version"))
                    now = iso(utcnow())
                    for entry in tx.pending:
                        pipe.xadd(self.k("audit"), {
                            "ts": now, "actor": entry.actor or self._actor, "action": entry.action,
                            "key_id": entry.key_id or "", "name": entry.name or "",
                            "detail": entry.detail_json(),
                        }, maxlen=self._audit_maxlen, approximate=True)
                    pipe.publish(self.k("changes"), json.dumps({
                        "actions": [e.action for e in tx.pending],
                        "key_ids": [e.key_id for e in tx.pending if e.key_id],
                    }))
                    pipe.set(nonce, "1", ex=600)
                    pipe.execute()
                    return result
                except WatchError:
                    if self.client.exists(nonce):
                        return result  # it was applied; only the reply was lost
                    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise BackendUnavailable(f"Redis at {self.display_url} is too busy: gave up after "
                                 f"{MAX_ATTEMPTS} conflicting attempts")

    def get(self, key_id: str) -> StoredKey | None:
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.k("rec", key_id))
            pipe.get(self.k("hash", key_id))
            pipe.hget(self.k("used"), key_id)
            return self.decode(*pipe.execute())

    def current_id(self, name: str) -> str | None:
        with self._errors():
            return as_text(self.client.get(self.k("name", name)))

    def _load(self, ids: list[str], with_hash: bool) -> list[StoredKey]:
        """Records for ids in a few round trips: one MGET (and HMGET of last use) per batch —
        per-key commands cost 4.8x more (benchmarks/bench_redis_list.py)."""
        out: list[StoredKey] = []
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            pipe = self.client.pipeline(transaction=False)
            pipe.mget([self.k("rec", i) for i in batch])
            pipe.hmget(self.k("used"), batch)
            if with_hash:
                pipe.mget([self.k("hash", i) for i in batch])
            results = pipe.execute()
            hashes = results[2] if with_hash else [None] * len(batch)
            for record, used, key_hash in zip(results[0], results[1], hashes, strict=True):
                stored = self.decode(record, key_hash, used)
                if stored is not None:
                    out.append(stored)
        return out

    def list_keys(self) -> list[ApiKey]:
        with self._errors():
            ids = sorted(as_members(self.client.smembers(self.k("ids"))))
            # Hashes stay on the server: listing never needs them.
            return [s.key for s in self._load(ids, with_hash=False)]

    def legacy_candidates(self, bucket: int) -> list[StoredKey]:
        with self._errors():
            ids = sorted(as_members(self.client.smembers(self.k("legacy", str(bucket)))))
            return self._load(ids, with_hash=True)

    def lookup_salt(self) -> str | None:
        with self._errors():
            return as_text(self.client.hget(self.k("meta"), "lookup_salt"))

    def set_hash(self, key_id: str, key_hash: str) -> None:
        with self._errors():
            self.client.set(self.k("hash", key_id), key_hash, xx=True)

    def touch(self, key_id: str, when: datetime) -> None:
        with self._errors():
            self.client.hset(self.k("used"), key_id, iso(when))

    def verified_digest(self, key_id: str) -> bytes | None:
        with self._errors():
            value = self.client.hget(self.k("verified"), key_id)
        try:
            return bytes.fromhex(value) if isinstance(value, str) and value else None
        except ValueError:
            return None  # not ours: no exemption

    def record_verified(self, key_id: str, digest: bytes | None) -> None:
        with self._errors():
            if digest is None:
                self.client.hdel(self.k("verified"), key_id)
            else:
                self.client.hset(self.k("verified"), key_id, digest.hex())

    def version(self) -> int:
        with self._errors():
            return int(as_text(self.client.get(self.k("version"))) or 0)

    def audit_events(self, since: datetime | None = None) -> list[AuditEvent]:
        # Stream ids carry the Redis server's clock; allow an hour of skew, then filter on our ts.
        start = "-" if since is None else f"{int((since - timedelta(hours=1)).timestamp() * 1000)}-0"
        with self._errors():
            entries = as_stream(self.client.xrange(self.k("audit"), min=start, max="+"))
        events = []
        for _id, f in entries:
            ts = from_iso(f["ts"])
            if since is None or ts >= since:
                events.append(AuditEvent(ts, f["actor"], f["action"], f["key_id"] or None,
                                         f["name"] or None, json.loads(f["detail"])))
        return events

    def cors_origins(self) -> set[str]:
        with self._errors():
            return as_members(self.client.smembers(self.k("cors")))

    def change_feed(self, max_wait: float) -> ChangeFeed:
        """Pub/sub on the `changes` channel, on a separate client (a subscribed connection can
        run no other command)."""
        client = connect(self.url, self._password, self._ca_file, socket_timeout=max_wait + SOCKET_TIMEOUT,
                         server_name=self._server_name)
        return _RedisChangeFeed(client, self.k("changes"), self.display_url)

    def close(self) -> None:
        self.client.close()
