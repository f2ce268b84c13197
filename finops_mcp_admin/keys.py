"""API keys: the token format, generation, argon2id hashing and the stored record.

Token format (GitHub-style, so malformed tokens are rejected before any store or hash work and
secret scanners can find leaked keys):

    mcpk_<id>_<secret><crc>

`id` is 12 base62 characters, public (lists, logs, lookups — like a Vault accessor); `secret`
is 32 base62 characters from `secrets` (≈190 bits); `crc` is CRC32 of everything before it,
6 base62 characters. The plaintext token exists only in the output of create/rotate; at rest
there is an argon2id PHC string.

`read_token` is the one parser of this format: everything else (verification, the server's
throttle, imports) asks it, never slices a token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .durations import iso
from .errors import InvalidInput, MalformedKey

if TYPE_CHECKING:  # argon2 is imported lazily: `keys list` never needs it
    from argon2 import PasswordHasher

PREFIX = "mcpk_"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LEN = 12
SECRET_LEN = 32
CRC_LEN = 6
#: Imported keys may carry longer secrets; anything longer than this is not a key.
MAX_TOKEN_LEN = 256
#: A presented non-mcpk (legacy) key: no import stores a shorter one, and nothing longer is a
#: credential rather than junk to hash.
LEGACY_MIN_LEN = 16
LEGACY_MAX_LEN = 512
_TOKEN = re.compile(r"^mcpk_([0-9A-Za-z]{12})_([0-9A-Za-z]{38,200})$")
#: The id a token claims, read before any other check (throttling guesses at one id).
_CLAIMED_ID = re.compile(r"mcpk_([0-9A-Za-z]{12})_")
_ID = re.compile(r"^[0-9A-Za-z]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,63}$")
#: Legacy (imported, non-mcpk) keys are found through a 12-bit keyed fingerprint: small enough
#: to reveal almost nothing about the key, large enough that an unknown token almost never
#: reaches argon2. See README "Importing existing keys".
LEGACY_BUCKETS = 4096

ACTIVE, REVOKED, EXPIRED = "active", "revoked", "expired"
STATUSES = (ACTIVE, REVOKED, EXPIRED)


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CRC_LEN)


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


class Secret:
    """A plaintext key. Redacted in repr/str so it cannot leak through logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext, for the one place that prints it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A token that passed the format and checksum checks; only the id is public."""

    key_id: str


@dataclass(frozen=True, slots=True)
class TokenReading:
    """What one reading of a presented token says, without any store or hash work.

    `key_id` is the id an mcpk token names: checked when the token is well-formed; for a
    malformed token only a claim, used to throttle guesses at that id and for nothing else.
    `legacy` is true for a token not in our format (an imported key, found by fingerprint).
    `problem` says why the token is malformed (None when it is not); it never quotes the token.
    """

    key_id: str | None
    legacy: bool = False
    problem: str | None = None

    @property
    def malformed(self) -> bool:
        """True when the token can be refused without looking anything up."""
        return self.problem is not None


def new_key_id() -> str:
    """A fresh random public key id."""
    return _random_base62(ID_LEN)


def generate_token(key_id: str | None = None) -> tuple[str, Secret]:
    """A fresh key: (id, plaintext token)."""
    key_id = key_id or new_key_id()
    body = f"{PREFIX}{key_id}_{_random_base62(SECRET_LEN)}"
    return key_id, Secret(body + _checksum(body))


def looks_like_mcpk(token: str) -> bool:
    """True when the token claims our format (and so must pass its checks)."""
    return token.startswith(PREFIX)


def read_token(token: str) -> TokenReading:
    """Classify a presented token: a well-formed mcpk key (format and checksum hold), a legacy
    key, or malformed (an mcpk token failing its checks; anything else outside
    LEGACY_MIN_LEN..LEGACY_MAX_LEN printable characters)."""
    if token.startswith(PREFIX):
        return _read_mcpk(token)
    if LEGACY_MIN_LEN <= len(token) <= LEGACY_MAX_LEN and token.isprintable():
        return TokenReading(None, legacy=True)
    return TokenReading(None, legacy=True,
                       problem="key is malformed: neither an mcpk key nor a plausible imported one")


def parse_token(token: str) -> ParsedToken:
    """An mcpk token whose format and checksum hold; MalformedKey otherwise (no store touched)."""
    reading = _read_mcpk(token)
    if reading.problem is not None or reading.key_id is None:
        raise MalformedKey(reading.problem or "key is malformed")
    return ParsedToken(reading.key_id)


def _read_mcpk(token: str) -> TokenReading:
    if len(token) > MAX_TOKEN_LEN:
        return _malformed(token, "too long")
    match = _TOKEN.match(token)
    if not match:
        return _malformed(token, "expected mcpk_<id>_<secret>")
    body, crc = token[:-CRC_LEN], token[-CRC_LEN:]
    if not hmac.compare_digest(_checksum(body), crc):
        return _malformed(token, "checksum mismatch (truncated or mistyped?)")
    return TokenReading(match.group(1))


def _malformed(token: str, why: str) -> TokenReading:
    claim = _CLAIMED_ID.match(token)
    return TokenReading(claim.group(1) if claim else None, problem=f"key is malformed: {why}")


def is_key_id(text: str) -> bool:
    """True when text has the shape of a key id."""
    return bool(_ID.match(text))


def legacy_bucket(salt: str, token: str) -> int:
    """The keyed fingerprint bucket of a legacy token (salt is per store)."""
    digest = hmac.new(salt.encode(), token.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:2], "big") % LEGACY_BUCKETS


def _printable(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{what} is too long ({len(value)} characters, at most {limit})")
    if not value.isprintable():
        raise InvalidInput(f"{what} contains non-printable characters")
    return value


def validate_name(name: str) -> str:
    """A key name: 1-64 characters of letters, digits, '.', '_' and '-', starting alphanumeric."""
    _printable(name, "name", 64)
    if not _NAME.match(name):
        raise InvalidInput(
            f"invalid name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_scope(scope: str) -> str:
    """A scope such as `tools:read`."""
    _printable(scope, "scope", 64)
    if not _SCOPE.match(scope):
        raise InvalidInput(f"invalid scope {scope!r}: use letters, digits and ':._/-'")
    return scope


def validate_text(value: str | None, what: str, limit: int = 256) -> str | None:
    """Free text (owner, description, reason): printable and bounded."""
    return None if value is None else _printable(value, what, limit)


# --- hashing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HashParams:
    """argon2id cost. Defaults are OWASP's minimum (m=19 MiB, t=2, p=1): ≈30 ms per verify."""

    time_cost: int = 2
    memory_cost: int = 19456
    parallelism: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.time_cost <= 100):
            raise InvalidInput("argon2 time_cost must be between 1 and 100")
        if not (8 * self.parallelism <= self.memory_cost <= 4 * 1024 * 1024):
            raise InvalidInput("argon2 memory_cost must be between 8*parallelism and 4194304 KiB")
        if not (1 <= self.parallelism <= 64):
            raise InvalidInput("argon2 parallelism must be between 1 and 64")


class KeyHasher:
    """argon2id hashing with rehash detection. Verification is constant-time (libargon2)."""

    def __init__(self, params: HashParams | None = None) -> None:
        from argon2 import PasswordHasher, Type

        self.params = params or HashParams()
        self._ph: PasswordHasher = PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_cost,
            parallelism=self.params.parallelism,
            type=Type.ID,
        )

    def hash(self, token: Secret) -> str:
        """The PHC string for a token."""
        return self._ph.hash(token.reveal())

    def verify(self, phc: str, token: Secret) -> bool:
        """True when the token matches the PHC string; InvalidInput if phc is not a PHC string."""
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._ph.verify(phc, token.reveal())
        except VerificationError:
            return False
        except InvalidHashError:
            raise InvalidInput("not an argon2 PHC hash string") from None

    def needs_rehash(self, phc: str) -> bool:
        """True when phc was made with other parameters than ours (upgrade on next use)."""
        return self._ph.check_needs_rehash(phc)


# --- the record ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """A key's record. Never holds the plaintext or the hash."""

    id: str
    name: str
    created_at: datetime
    created_by: str
    scopes: tuple[str, ...] = ()
    owner: str | None = None
    description: str | None = None
    state: str = ACTIVE  # stored: active | revoked; "expired" is derived from expires_at
    expires_at: datetime | None = None
    rotated_from: str | None = None
    rotated_to: str | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    last_used_at: datetime | None = None
    legacy: bool = False
    rate: str | None = None  # e.g. "600/min" (quotas.parse_rate); None: the server default
    max_sessions: int | None = None  # open MCP sessions; None: the server default
    allow_cidr: tuple[str, ...] = ()  # networks the key may be used from (allowlist.py); () any
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def status(self, now: datetime) -> str:
        """active | revoked | expired, at `now`."""
        if self.state == REVOKED:
            return REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return EXPIRED
        return ACTIVE

    def is_valid(self, now: datetime) -> bool:
        """True when the key may authenticate at `now`."""
        return self.status(now) == ACTIVE

    def with_changes(self, **changes: Any) -> ApiKey:
        """A copy with fields replaced."""
        return replace(self, **changes)

    def to_public(self, now: datetime) -> dict[str, Any]:
        """The record as JSON-able data, with the status at `now`. No secret, no hash."""
        data = self.to_stored()
        del data["state"]
        data["status"] = self.status(now)
        return data

    def to_stored(self) -> dict[str, Any]:
        """The record as the stores persist it (ISO times). Written out field by field:
        dataclasses.asdict deep-copies and was the top cost of listing 10,000 keys."""
        return {
            "id": self.id, "name": self.name, "created_at": iso(self.created_at),
            "created_by": self.created_by, "scopes": list(self.scopes), "owner": self.owner,
            "description": self.description, "state": self.state,
            "expires_at": iso(self.expires_at), "rotated_from": self.rotated_from,
            "rotated_to": self.rotated_to, "revoked_at": iso(self.revoked_at),
            "revoked_reason": self.revoked_reason, "last_used_at": iso(self.last_used_at),
            "legacy": self.legacy, "rate": self.rate, "max_sessions": self.max_sessions,
            "allow_cidr": list(self.allow_cidr), **self.extra,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ApiKey:
        """Inverse of to_stored; unknown fields (from a newer version) are kept, not lost."""
        unknown = data.keys() - _STORED_FIELDS
        extra = {k: data.pop(k) for k in unknown} if unknown else {}
        for name in _TIME_FIELDS:
            value = data.get(name)
            if value is not None:
                data[name] = datetime.fromisoformat(value)
        data["scopes"] = tuple(data.get("scopes") or ())
        data["legacy"] = bool(data.get("legacy"))
        data["allow_cidr"] = tuple(data.get("allow_cidr") or ())
        return cls(**data, extra=extra)


_TIME_FIELDS = ("created_at", "expires_at", "revoked_at", "last_used_at")
_STORED_FIELDS = frozenset(f for f in ApiKey.__dataclass_fields__ if f != "extra")
