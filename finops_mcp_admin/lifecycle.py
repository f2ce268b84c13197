"""Key lifecycle over any KeyStore: create, rotate, revoke, import, verify, list.

The rules live here once; each mutation is one store transaction. argon2 hashing happens before
the transaction opens (it is slow and does not depend on the store), so transactions stay short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .allowlist import canonical_cidrs
from .errors import Conflict, InvalidInput, MalformedKey, NotFound
from .keys import (
    ACTIVE,
    STATUSES,
    ApiKey,
    KeyHasher,
    Secret,
    TokenReading,
    generate_token,
    is_key_id,
    legacy_bucket,
    looks_like_mcpk,
    new_key_id,
    parse_token,
    read_token,
    validate_name,
    validate_scope,
    validate_text,
)
from .quotas import canonical_rate, check_max_sessions
from .store import KeyStore, StoredKey, Transaction

#: A stray multi-megabyte "key" on stdin is input error, not something to hash.
MIN_IMPORTED_KEY_LEN = 16


@dataclass(frozen=True)
class IssuedKey:
    """A key just created or rotated: the record plus the plaintext, shown once."""

    key: ApiKey
    token: Secret


@dataclass(frozen=True)
class Verification:
    """The answer to "is this key valid?": reason is "valid", "unknown_key", "wrong_secret",
    "revoked" or "expired"; key_id is the id the token names (None for a legacy key not found)."""

    valid: bool
    reason: str
    key: ApiKey | None = None
    key_id: str | None = None


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(validate_scope(s) for s in scopes))


def resolve(tx: Transaction | KeyStore, ref: str) -> StoredKey:
    """ID or NAME to a stored key; a name means the newest key issued under it."""
    if is_key_id(ref):
        stored = tx.get(ref)
        if stored is not None:
            return stored
    if len(ref) <= 64:
        key_id = tx.current_id(ref)
        if key_id is not None:
            stored = tx.get(key_id)
            if stored is not None:
                return stored
    raise NotFound(f"no key with id or name {ref!r}")


def _ensure_name_free(tx: Transaction, name: str, now: datetime) -> None:
    current = tx.current_id(name)
    if current is None:
        return
    stored = tx.get(current)
    if stored is not None and stored.key.is_valid(now):
        raise Conflict(f"an active key named {name!r} already exists ({current}); "
                       "rotate or revoke it instead")


def _ensure_id_free(tx: Transaction, key_id: str) -> None:
    if tx.get(key_id) is not None:
        raise Conflict(f"a key with id {key_id} already exists")


def create_key(store: KeyStore, hasher: KeyHasher, *, name: str, actor: str, now: datetime,
               scopes: Sequence[str] = (), expires_at: datetime | None = None,
               owner: str | None = None, description: str | None = None,
               rate: str | None = None, max_sessions: int | None = None,
               allow_cidr: Sequence[str] = ()) -> IssuedKey:
    """Issue a new key. Conflict if an active key already has this name."""
    record = ApiKey(
        id="", name=validate_name(name), created_at=now, created_by=actor,
        scopes=_check_scopes(scopes), owner=validate_text(owner, "owner", 128),
        description=validate_text(description, "description", 512), expires_at=expires_at,
        rate=canonical_rate(rate), max_sessions=check_max_sessions(max_sessions),
        allow_cidr=canonical_cidrs(allow_cidr),
    )
    key_id, token = generate_token()
    record = record.with_changes(id=key_id)
    key_hash = hasher.hash(token)

    def run(tx: Transaction) -> None:
        _ensure_name_free(tx, record.name, now)
        _ensure_id_free(tx, key_id)
        tx.put(record, key_hash)
        tx.set_current(record.name, key_id)
        tx.audit("create", key_id, record.name, actor=actor, scopes=list(record.scopes),
                 expires_at=record.to_stored()["expires_at"], rate=record.rate,
                 max_sessions=record.max_sessions, allow_cidr=list(record.allow_cidr))

    store.transaction(run)
    return IssuedKey(record, token)


def rotate_key(store: KeyStore, hasher: KeyHasher, ref: str, *, grace: timedelta, actor: str,
               now: datetime) -> tuple[ApiKey, IssuedKey]:
    """Replace a key with a new one (same name, owner, scopes); the old one expires after grace.

    A NAME rotates the newest key of that name, so concurrent rotations form one chain.
    An ID must be the newest key of its lineage (Conflict otherwise).
    """
    key_id, token = generate_token()
    key_hash = hasher.hash(token)

    def run(tx: Transaction) -> tuple[ApiKey, ApiKey]:
        old = resolve(tx, ref).key
        if old.rotated_to is not None:
            raise Conflict(f"key {old.id} was already rotated to {old.rotated_to}; "
                           f"rotate {old.name!r} to rotate the current key")
        if not old.is_valid(now):
            raise Conflict(f"key {old.id} is {old.status(now)}; create a new key instead")
        _ensure_id_free(tx, key_id)
        grace_end = now + grace
        old_expiry = grace_end if old.expires_at is None else min(old.expires_at, grace_end)
        new = ApiKey(
            id=key_id, name=old.name, created_at=now, created_by=actor, scopes=old.scopes,
            owner=old.owner, description=old.description, rotated_from=old.id,
            expires_at=_rotated_expiry(old, now), rate=old.rate, max_sessions=old.max_sessions,
            allow_cidr=old.allow_cidr,
        )
        updated_old = old.with_changes(rotated_to=key_id, expires_at=old_expiry)
        tx.put(updated_old)
        tx.put(new, key_hash)
        tx.set_current(old.name, key_id)
        tx.audit("rotate", old.id, old.name, actor=actor, new_key_id=key_id,
                 grace_seconds=int(grace.total_seconds()))
        return updated_old, new

    old, new = store.transaction(run)
    return old, IssuedKey(new, token)


def _rotated_expiry(old: ApiKey, now: datetime) -> datetime | None:
    """The new key keeps the old key's lifetime length (a 90-day key rotates to a 90-day key)."""
    if old.expires_at is None:
        return None
    return now + (old.expires_at - old.created_at)


#: `update_key` leaves a quota alone when given this (None means "clear: the server default").
UNCHANGED: Any = object()


def update_key(store: KeyStore, ref: str, *, actor: str, now: datetime, rate: str | None = UNCHANGED,
               max_sessions: int | None = UNCHANGED, allow_cidr: Sequence[str] = UNCHANGED) -> ApiKey:
    """Change a key's quotas (None clears one: the server default applies) or its IP allowlist
    (replaced whole; empty: any address). Audited as "update" with the old and new values; a
    revoked or expired key cannot be updated."""
    changes: dict[str, Any] = {}
    if allow_cidr is not UNCHANGED:
        changes["allow_cidr"] = canonical_cidrs(allow_cidr)
    if rate is not UNCHANGED:
        changes["rate"] = canonical_rate(rate)
    if max_sessions is not UNCHANGED:
        changes["max_sessions"] = check_max_sessions(max_sessions)
    if not changes:
        raise InvalidInput("nothing to update: give --rate, --max-sessions or --allow-cidr")

    def run(tx: Transaction) -> ApiKey:
        key = resolve(tx, ref).key
        if not key.is_valid(now):
            raise Conflict(f"key {key.id} is {key.status(now)}; there is nothing to update")
        before = {name: getattr(key, name) for name in changes}
        if before == changes:
            return key
        updated = key.with_changes(**changes)
        tx.put(updated)
        tx.audit("update", key.id, key.name, actor=actor, before=_listed(before), after=_listed(changes))
        return updated

    return store.transaction(run)


def _listed(values: dict[str, Any]) -> dict[str, Any]:
    """Audit detail: tuples as lists, so the trail reads the same from every store."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _revoke(tx: Transaction, key: ApiKey, reason: str | None, now: datetime) -> ApiKey:
    revoked = key.with_changes(state="revoked", revoked_at=now, revoked_reason=reason)
    tx.put(revoked)
    tx.audit("revoke", key.id, key.name, reason=reason)
    return revoked


def revoke_key(store: KeyStore, ref: str, *, reason: str | None, now: datetime) -> list[ApiKey]:
    """Revoke at once. An ID revokes that key; a NAME revokes every still-valid key of that
    name (the current one and any predecessors in their rotation grace). Returns what changed;
    empty when everything named was already revoked or expired."""
    reason = validate_text(reason, "reason", 256)

    def run(tx: Transaction) -> list[ApiKey]:
        target = resolve(tx, ref).key
        if target.id == ref:
            victims = [target] if target.status(now) != "revoked" else []
        else:
            victims = [k for k in tx.all_keys() if k.name == target.name and k.is_valid(now)]
        return [_revoke(tx, k, reason, now) for k in victims]

    return store.transaction(run)


def _bulk_targets(keys: Iterable[ApiKey], owner: str | None, now: datetime) -> list[ApiKey]:
    return [k for k in keys if k.is_valid(now) and (owner is None or k.owner == owner)]


def revoke_keys(store: KeyStore, *, owner: str | None, reason: str | None,
                now: datetime) -> list[ApiKey]:
    """Bulk revocation: every valid key (of one owner, if given)."""
    reason = validate_text(reason, "reason", 256)

    def run(tx: Transaction) -> list[ApiKey]:
        return [_revoke(tx, k, reason, now) for k in _bulk_targets(tx.all_keys(), owner, now)]

    return store.transaction(run)


def select_bulk(store: KeyStore, *, owner: str | None, now: datetime) -> list[ApiKey]:
    """What revoke_keys would revoke now (for the confirmation prompt)."""
    return _bulk_targets(store.list_keys(), owner, now)


def import_keys(store: KeyStore, hasher: KeyHasher, entries: Sequence[tuple[str, Secret]], *,
                actor: str, now: datetime, scopes: Sequence[str] = (),
                owner: str | None = None) -> list[ApiKey]:
    """Store hashes of existing plaintext keys, all or nothing.

    mcpk keys keep their id; other keys get a fresh id and a legacy fingerprint bucket.
    """
    scopes_t = _check_scopes(scopes)
    owner = validate_text(owner, "owner", 128)
    if not entries:
        raise InvalidInput("no keys to import on stdin")
    names = [validate_name(name) for name, _ in entries]
    if len(set(names)) != len(names):
        raise InvalidInput("the input names the same key name twice")
    tokens = [token.reveal() for _, token in entries]
    if len(set(tokens)) != len(tokens):
        raise InvalidInput("the input contains the same key twice")
    prepared: list[tuple[ApiKey, str, Secret | None]] = []
    for line, (name, token) in enumerate(entries, start=1):
        plain = token.reveal()
        if looks_like_mcpk(plain):
            key_id, legacy = parse_token(plain).key_id, None
        else:
            if len(plain) < MIN_IMPORTED_KEY_LEN:
                raise InvalidInput(f"key {line} ({name}) is shorter than {MIN_IMPORTED_KEY_LEN} "
                                   "characters: too weak to keep, issue a new key instead")
            if not plain.isprintable() or any(c.isspace() for c in plain):
                raise InvalidInput(f"key {line} ({name}) contains spaces or control characters")
            key_id, legacy = new_key_id(), token
        record = ApiKey(id=key_id, name=name, created_at=now, created_by=actor, scopes=scopes_t,
                        owner=owner, legacy=legacy is not None, description="imported")
        prepared.append((record, hasher.hash(token), legacy))

    def run(tx: Transaction) -> list[ApiKey]:
        for record, key_hash, legacy in prepared:
            _ensure_name_free(tx, record.name, now)
            _ensure_id_free(tx, record.id)
            bucket = None if legacy is None else legacy_bucket(tx.lookup_salt(), legacy.reveal())
            tx.put(record, key_hash, legacy_bucket=bucket)
            tx.set_current(record.name, record.id)
            tx.audit("import", record.id, record.name, actor=actor, legacy=record.legacy)
        return [record for record, _, _ in prepared]

    return store.transaction(run)


def verify_key(store: KeyStore, hasher: KeyHasher, token: Secret, now: datetime,
               parsed: TokenReading | None = None) -> Verification:
    """Check a presented key, read once by `keys.read_token` (pass `parsed` when you have it).

    MalformedKey for an mcpk token that fails its checks (no store access); an unknown id never
    reaches argon2. A legacy token is looked up by fingerprint even when read_token calls it
    implausible (the server refuses those itself; `keys verify` answers "invalid" for them).
    Upgrades outdated hashes on success."""
    plain = token.reveal()
    parsed = parsed or read_token(plain)
    if parsed.legacy:
        salt = store.lookup_salt()
        candidates = [] if salt is None else store.legacy_candidates(legacy_bucket(salt, plain))
    elif parsed.problem is not None or parsed.key_id is None:
        raise MalformedKey(parsed.problem or "key is malformed")
    else:
        candidates = [c for c in [store.get(parsed.key_id)] if c is not None]
    if not candidates:
        return Verification(False, "unknown_key", key_id=parsed.key_id)
    for stored in candidates:
        if hasher.verify(stored.key_hash, token):
            break
    else:
        return Verification(False, "wrong_secret", key_id=parsed.key_id)
    key = stored.key
    status = key.status(now)
    if status != ACTIVE:
        return Verification(False, status, key, key.id)
    if hasher.needs_rehash(stored.key_hash):
        store.set_hash(key.id, hasher.hash(token))
    return Verification(True, "valid", key, key.id)


@dataclass(frozen=True)
class KeyFilter:
    """Which keys `keys list` shows."""

    include_all: bool = False
    owner: str | None = None
    status: str | None = None
    expiring_within: timedelta | None = None
    unused_for: timedelta | None = None
    older_than: timedelta | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(f"invalid status {self.status!r}: use one of {', '.join(STATUSES)}")

    def matches(self, key: ApiKey, now: datetime) -> bool:
        """True when the key passes every given condition."""
        status = key.status(now)
        if self.status is not None:
            if status != self.status:
                return False
        elif not self.include_all and status != ACTIVE:
            return False
        if self.owner is not None and key.owner != self.owner:
            return False
        if self.expiring_within is not None and (
                key.expires_at is None or key.expires_at > now + self.expiring_within):
            return False
        if self.unused_for is not None:
            last = key.last_used_at or key.created_at
            if last > now - self.unused_for:
                return False
        return self.older_than is None or key.created_at <= now - self.older_than


def list_keys(store: KeyStore, key_filter: KeyFilter, now: datetime) -> list[ApiKey]:
    """Records passing the filter, ordered by name then creation time."""
    keys = [k for k in store.list_keys() if key_filter.matches(k, now)]
    return sorted(keys, key=lambda k: (k.name, k.created_at, k.id))
