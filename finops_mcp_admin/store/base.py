"""The KeyStore protocol shared by the Redis and SQLite backends.

Every mutation is a function of a `Transaction`: the backend runs it atomically (SQLite
`BEGIN IMMEDIATE`; Redis WATCH/MULTI/EXEC, re-run on a concurrent change), then in the same
atomic step bumps the version counter, appends the audit entries and (Redis) publishes a change
message. The lifecycle rules live once, in `finops_mcp_admin.lifecycle`; backends only store.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from ..durations import iso
from ..keys import ApiKey

T = TypeVar("T")


@dataclass(frozen=True)
class StoredKey:
    """A record with its argon2id hash (never shown, not even in repr)."""

    key: ApiKey
    key_hash: str = field(repr=False)


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the admin audit trail: who did what to which key, when. Never a secret."""

    ts: datetime
    actor: str
    action: str
    key_id: str | None = None
    name: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_public(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"ts": iso(self.ts), "actor": self.actor, "action": self.action,
                "key_id": self.key_id, "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class PendingAudit:
    """An audit entry written by the commit of the transaction that produced it."""

    action: str
    key_id: str | None
    name: str | None
    detail: dict[str, Any]
    actor: str | None = None  # who, when the caller says; else the store's configured actor

    def detail_json(self) -> str:
        """The detail as compact JSON."""
        return json.dumps(self.detail, separators=(",", ":"), sort_keys=True)


class Transaction(Protocol):
    """What a mutation may read and write. Reads are consistent with the commit."""

    def get(self, key_id: str) -> StoredKey | None:
        """The stored key with this id, or None."""

    def current_id(self, name: str) -> str | None:
        """The id of the newest key issued under this name, or None."""

    def all_keys(self) -> list[ApiKey]:
        """Every record (used by bulk operations)."""

    def put(self, key: ApiKey, key_hash: str | None = None, legacy_bucket: int | None = None) -> None:
        """Insert or update a record; key_hash is required for a new record."""

    def set_current(self, name: str, key_id: str) -> None:
        """Point the name at its newest key."""

    def audit(self, action: str, key_id: str | None, name: str | None, *, actor: str | None = None,
              **detail: Any) -> None:
        """Append an audit entry (committed with the transaction)."""

    def lookup_salt(self) -> str:
        """The per-store salt of the legacy fingerprint, created (in this transaction) if absent."""

    def cors_origins(self) -> set[str]:
        """The stored CORS allowlist."""

    def set_cors_origins(self, add: set[str], remove: set[str]) -> None:
        """Add and remove allowlist entries."""


class ChangeFeed(ABC):
    """A push channel announcing each committed mutation (Redis pub/sub). A message only says
    "look again": readers re-read `version()`, so a lost message costs a poll interval."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to timeout seconds for an announcement; True when one arrived."""

    @abstractmethod
    def close(self) -> None:
        """Unsubscribe and release the connection."""


class KeyStore(ABC):
    """Persistence for keys, the CORS allowlist, the version counter and the audit trail."""

    #: The store URL with any password removed, for messages.
    display_url: str
    #: True when opening it made a new, empty store (the CLI says so once, on stderr).
    created: bool = False

    @abstractmethod
    def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run fn atomically; bump the version and write its audit entries if it wrote anything.
        fn may run more than once (optimistic retry), so it must not have outside effects."""

    @abstractmethod
    def get(self, key_id: str) -> StoredKey | None:
        """The stored key with this id, or None."""

    @abstractmethod
    def current_id(self, name: str) -> str | None:
        """The id of the newest key issued under this name, or None."""

    @abstractmethod
    def list_keys(self) -> list[ApiKey]:
        """Every record, with last_used_at, in one batched read."""

    @abstractmethod
    def legacy_candidates(self, bucket: int) -> list[StoredKey]:
        """Imported non-mcpk keys in a fingerprint bucket."""

    @abstractmethod
    def lookup_salt(self) -> str | None:
        """The per-store salt of the legacy fingerprint; None until a legacy key was imported."""

    @abstractmethod
    def set_hash(self, key_id: str, key_hash: str) -> None:
        """Replace a hash after a successful verify with outdated parameters (no version bump)."""

    @abstractmethod
    def touch(self, key_id: str, when: datetime) -> None:
        """Record use of a key (no version bump: not a security-relevant change)."""

    @abstractmethod
    def verified_digest(self, key_id: str) -> bytes | None:
        """The digest (server/auth.py `shared_digest`) of the token that verified for this key
        id on some server, or None. Never the token, nor anything it can be recovered from."""

    @abstractmethod
    def record_verified(self, key_id: str, digest: bytes | None) -> None:
        """Remember that a token verified for this key id (None: forget it). No version bump:
        it grants nothing, it only spares the holder the failure throttle."""

    @abstractmethod
    def version(self) -> int:
        """The change counter: bumped by every mutation."""

    @abstractmethod
    def audit_events(self, since: datetime | None = None) -> list[AuditEvent]:
        """The admin audit trail, oldest first."""

    @abstractmethod
    def cors_origins(self) -> set[str]:
        """The stored CORS allowlist."""

    def change_feed(self, max_wait: float) -> ChangeFeed | None:
        """A new subscription to change announcements, on its own connection (the caller closes
        it), subscribed before this returns; max_wait is the longest one `wait` will be asked to
        block. None when the backend has no push channel: poll `version()` instead."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

