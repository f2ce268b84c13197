"""Bearer-key verification for the server (R19): a verification cache in front of the store.

Hot path (`cached`): token → keyed BLAKE2b under a per-process random key → dict
lookup → constant-time digest compare → expiry check. No store access, no argon2; ≈ µs.
Cold path (`verify`, run in a worker thread): the store lookup (an unknown id never reaches
argon2), argon2id, status. Any store change bumps the version; the watcher then drops the whole
cache, so a revocation, rotation or expiry edit anywhere reaches every replica on its next
request. A lookup that began before a change never repopulates the cache after it
(generation check).

While the store is unreachable, keys verified before the outage stay admitted for at most
`stale_grace` seconds after the last successful contact (nobody can revoke in a store that is
down, and the version check on reconnect drops the cache if anything changed meanwhile);
everything else gets 503. Nothing unknown, revoked or expired is ever admitted.

Known tokens: every replica and restart must recognise a token that verified before, so that
strangers guessing at its public key id cannot throttle its holder (server/throttle.py). Each
process remembers the tokens it verified; the store shares `shared_digest` of each verified
mcpk token between replicas. Recognition only exempts a token from the failure throttle: it is
still verified with argon2 before it is admitted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import lifecycle
from ..errors import AdminError, BackendUnavailable, InvalidInput
from ..keys import KeyHasher, Secret, TokenReading, read_token
from ..store import KeyStore

#: Reasons an authentication fails; they appear in security events, never in responses.
MALFORMED, UNKNOWN, WRONG, REVOKED, EXPIRED, UNAVAILABLE = (
    "malformed_token", "unknown_key", "wrong_secret", "revoked", "expired", "store_unavailable")
_STATIC_LINE = re.compile(r"^(?:([0-9A-Za-z]{12}):)?(\$argon2id?\$\S+)$")
#: How long "the store knows no verified token for this key id" is believed without asking again.
SHARED_MISS_TTL = 1.0
_MAX_REMEMBERED = 100_000


def shared_digest(token: str, key_id: str) -> bytes:
    """What the store keeps of a verified mcpk token so every replica recognises it.

    Unkeyed on purpose: any key the replicas could all fetch would sit next to the digest (in
    the store, or in the secret the same task role reads), so it would add nothing against
    someone holding a copy. What protects the token is its secret's ~190 random bits (from
    `secrets`): finding a preimage of a 256-bit BLAKE2b is a 2^190 search, fast hash or not.
    The key id as salt and a purpose string make the digest useless for anything else. Never
    computed for legacy (imported, maybe human-chosen) tokens: for those a fast hash would be
    cheap to brute-force offline."""
    return hashlib.blake2b(token.encode(), digest_size=32, person=b"mcpadmin-vt-v1",
                           salt=key_id.encode()).digest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    expires_at: datetime | None = None  # checked on every cache hit
    rate: str | None = None  # the key's own quotas (None: the server's defaults)
    max_sessions: int | None = None
    subject: str | None = None  # OAuth (server/oauth/): the token's `sub`
    client_id: str | None = None  # OAuth: the client the token was issued to
    allow_cidr: tuple[str, ...] = ()  # the key's IP allowlist (allowlist.py); () any address


@dataclass(frozen=True)
class AuthResult:
    """Outcome of a cold-path verification."""

    principal: Principal | None
    reason: str = "valid"
    key_id: str | None = None


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


@dataclass(frozen=True)
class StaticHash:
    """A hash configured outside the store (MCP_API_KEY_HASHES or a hashes file)."""

    phc: str
    key_id: str | None  # an `ID:PHC` entry only ever matches tokens with that id


def parse_static_hashes(text: str) -> list[StaticHash]:
    """Entries separated by newlines, spaces or commas: `PHC` or `KEYID:PHC`; `#` comments.
    (PHC strings contain commas — `m=19456,t=2,p=1` — so only a comma that starts a new entry
    separates.)"""
    out = []
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    for raw in re.split(r"\s+|,(?=(?:[0-9A-Za-z]{12}:)?\$argon2)", "\n".join(lines)):
        entry = raw.strip()
        if not entry:
            continue
        match = _STATIC_LINE.match(entry)
        if not match:
            raise InvalidInput("a static key hash is not an argon2id PHC string")
        out.append(StaticHash(match.group(2), match.group(1)))
    return out


def load_static_hashes(env_value: str | None, path: str | None) -> list[StaticHash]:
    """MCP_API_KEY_HASHES plus the hashes file (re-read on SIGHUP)."""
    entries = parse_static_hashes(env_value or "")
    if path:
        try:
            entries += parse_static_hashes(Path(path).read_text())
        except OSError as exc:
            raise InvalidInput(f"cannot read hashes file {path}: {exc.strerror}") from None
    return entries


def bearer_token(value: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
    None when there are no Bearer credentials at all (no header, or another scheme: §3.1 says
    no error code then); "" for a Bearer header without a usable token."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class KeyVerifier:
    """The cache and the cold path. Thread-safe; the store is used under one lock."""

    def __init__(self, store: KeyStore | None, hasher: KeyHasher,
                 static_hashes: list[StaticHash] | None = None,
                 static_scopes: tuple[str, ...] = ("tools:read",), stale_grace: float = 300.0) -> None:
        self.store = store
        self.hasher = hasher
        self.static_hashes = static_hashes or []
        self.static_scopes = static_scopes
        self.stale_grace = stale_grace
        self.store_lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._cache: dict[bytes, _Entry] = {}
        # Digests of tokens that once verified. Not an authorisation cache (it survives every
        # invalidation and grants nothing): it only lets a key's rightful holder past the
        # per-key-id throttle that strangers can trip by guessing at a public key id.
        self._known_good: dict[bytes, None] = {}
        # What the store said about verified tokens, per key id: (digest or None, when asked).
        self._shared: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        self._generation = 0
        self._cache_lock = threading.Lock()
        self._last_ok = time.monotonic()
        self._healthy = True

    # -- cache ------------------------------------------------------------------------------

    def _digest(self, token: str) -> bytes:
        # Keyed BLAKE2b is a MAC in one C call (HMAC-SHA256 objects cost 3x more per request).
        return hashlib.blake2b(token.encode(), key=self._secret, digest_size=32).digest()

    def token_digest(self, token: str) -> bytes:
        """The keyed digest that names a token in memory (the cache, verifications in flight)."""
        return self._digest(token)

    def cached(self, token: str, now: datetime | None = None) -> Principal | None:
        """The hot path: a previously verified, still valid key, or None."""
        digest = self._digest(token)
        entry = self._cache.get(digest[:16])
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return None
        expires_at = entry.principal.expires_at
        if expires_at is not None and (now or datetime.now(UTC)) >= expires_at:
            return None
        if not self._healthy and time.monotonic() - self._last_ok > self.stale_grace:
            return None  # outage longer than the documented grace: fail closed
        return entry.principal

    def invalidate(self) -> None:
        """Drop every cached verification (the store changed)."""
        with self._cache_lock:
            self._generation += 1
            self._cache = {}

    def set_healthy(self, healthy: bool) -> None:
        """Called by the watcher after each contact with the store."""
        if healthy:
            self._last_ok = time.monotonic()
        self._healthy = healthy

    @property
    def healthy(self) -> bool:
        """True when the last contact with the store succeeded."""
        return self._healthy

    # -- cold path --------------------------------------------------------------------------

    def verify(self, token: str, now: datetime, parsed: TokenReading | None = None) -> AuthResult:
        """Full verification (blocking: run it in a worker thread). `parsed` is the token's one
        reading (keys.read_token) when the caller already made it."""
        generation = self._generation
        parsed = parsed or read_token(token)
        if parsed.malformed:
            return AuthResult(None, MALFORMED)
        key_id = parsed.key_id
        store = self.store
        from_store = (AuthResult(None, UNKNOWN, key_id) if store is None
                      else self._verify_store(store, token, now, parsed))
        result = from_store
        if result.reason == UNKNOWN and self.static_hashes:
            result = self._verify_static(token, key_id) or result
        if result.principal is not None:
            digest = self._digest(token)
            with self._cache_lock:  # check and insert as one step against invalidate()
                if generation == self._generation:
                    self._cache[digest[:16]] = _Entry(digest, result.principal)
                shared_before = digest in self._known_good
                self._remember(digest)
            if store is not None and key_id and result is from_store and not shared_before:
                self._share(store, key_id, shared_digest(token, key_id))
        elif result.reason in (REVOKED, EXPIRED) and key_id and store is not None:
            self._forget(store, token, key_id)
        return result

    def previously_verified(self, token: str) -> bool:
        """True when this exact token verified successfully before in this process."""
        return self._digest(token) in self._known_good

    def _remember(self, digest: bytes) -> None:
        if len(self._known_good) >= _MAX_REMEMBERED:
            self._known_good.pop(next(iter(self._known_good)))
        self._known_good[digest] = None

    # -- tokens verified by other replicas ----------------------------------------------------

    def shared_verdict(self, token: str, key_id: str) -> bool | None:
        """From what this process last heard from the store: True when this token verified
        before somewhere, False when not (or a lookup is under way), None when the store must be
        asked (`verified_elsewhere`, blocking). Never blocks."""
        entry = self._shared.get(key_id)
        now = time.monotonic()
        if entry is None or (entry[0] is None and now - entry[1] > SHARED_MISS_TTL):
            self._note_shared(key_id, None, now)  # concurrent arrivals wait for this one lookup
            return None
        return entry[0] is not None and hmac.compare_digest(entry[0], shared_digest(token, key_id))

    def verified_elsewhere(self, token: str, key_id: str) -> bool:
        """Ask the store whether this mcpk token verified before on any replica (blocking)."""
        store = self.store
        if store is None:
            return False
        try:
            with self.store_lock:
                stored = store.verified_digest(key_id)
        except AdminError:
            return False  # no exemption: the ordinary throttle applies
        self._note_shared(key_id, stored, time.monotonic())
        if stored is None or not hmac.compare_digest(stored, shared_digest(token, key_id)):
            return False
        with self._cache_lock:
            self._remember(self._digest(token))
        return True

    def _note_shared(self, key_id: str, digest: bytes | None, now: float) -> None:
        with self._cache_lock:
            self._shared[key_id] = (digest, now)
            self._shared.move_to_end(key_id)
            if len(self._shared) > _MAX_REMEMBERED:
                self._shared.popitem(last=False)

    def _share(self, store: KeyStore, key_id: str, digest: bytes) -> None:
        try:
            with self.store_lock:
                store.record_verified(key_id, digest)
        except AdminError:
            return  # bookkeeping only: this replica still knows the token itself
        self._note_shared(key_id, digest, time.monotonic())

    def _forget(self, store: KeyStore, token: str, key_id: str) -> None:
        """A recognised token of a revoked or expired key loses its exemption everywhere."""
        digest = self._digest(token)
        shared = self._shared.get(key_id)
        if digest not in self._known_good and (shared is None or shared[0] is None):
            return
        with self._cache_lock:
            self._known_good.pop(digest, None)
            self._shared.pop(key_id, None)
        try:
            with self.store_lock:
                store.record_verified(key_id, None)
        except AdminError:
            pass  # bookkeeping only: the key is refused by its status either way

    def _verify_store(self, store: KeyStore, token: str, now: datetime, parsed: TokenReading) -> AuthResult:
        try:
            with self.store_lock:
                outcome = lifecycle.verify_key(store, self.hasher, Secret(token), now, parsed)
        except BackendUnavailable:
            self.set_healthy(False)
            return AuthResult(None, UNAVAILABLE, parsed.key_id)
        except AdminError:  # e.g. a read-only store refusing a rehash: fail closed
            return AuthResult(None, UNAVAILABLE, parsed.key_id)
        key = outcome.key
        if not outcome.valid or key is None:
            return AuthResult(None, outcome.reason, outcome.key_id)
        return AuthResult(Principal(key.id, key.name, key.scopes, key.expires_at, key.rate,
                                    key.max_sessions, allow_cidr=key.allow_cidr), "valid", key.id)

    def _verify_static(self, token: str, key_id: str | None) -> AuthResult | None:
        secret = Secret(token)
        for index, entry in enumerate(self.static_hashes):
            if entry.key_id is not None and entry.key_id != key_id:
                continue  # labelled entries never cost argon2 for other ids
            if self.hasher.verify(entry.phc, secret):
                label = entry.key_id or key_id or f"static-{index + 1}"
                return AuthResult(Principal(label, "static", self.static_scopes), "valid", label)
        return None

    def touch(self, key_id: str) -> None:
        """Record use (the server calls this at most once a minute per key)."""
        if self.store is not None:
            with self.store_lock:
                self.store.touch(key_id, datetime.now(UTC).replace(microsecond=0))
