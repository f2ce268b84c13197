"""The issuer's signing keys (JWKS), discovered through its metadata and cached.

Refetched when a token names a `kid` the cache lacks (key rotation: a token signed with a new key
is admitted on its first request), at most once per `min_refetch` seconds — otherwise anyone could
make the server hammer the issuer with made-up kids. Failed fetches are rate-limited the same way.

Only asymmetric signing keys are kept: a JWK with `use` other than `sig`, a symmetric (`oct`) key,
a key with private parts, or an RSA key under 2048 bits is ignored, so no token can be checked
against it. The algorithm is never taken from the token alone: it must be on ALGORITHMS, fit the
key type (and curve), and equal the key's own `alg` when the JWK names one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import BackendUnavailable

#: Asymmetric JWS algorithms accepted (RFC 7518 / RFC 8037): never `none`, never HS*.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "k")
MIN_RSA_BITS = 2048


class UnknownKey(Exception):
    """No usable key for the token's kid and algorithm."""


@dataclass(frozen=True)
class SigningKey:
    """One public key from the JWKS."""

    kid: str | None
    kty: str
    alg: str | None
    crv: str | None
    key: Any  # a cryptography public key


def usable_key(jwk: Any) -> SigningKey | None:
    """A JWK as a signing key, or None when it must never verify anything."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP") or any(part in jwk for part in _PRIVATE):
        return None
    alg = jwk.get("alg")
    if alg is not None and alg not in ALGORITHMS:
        return None
    from jwt import PyJWK
    from jwt.exceptions import PyJWKError

    try:
        # PyJWK needs an algorithm for EC/OKP keys without `alg`; the curve decides it.
        key = PyJWK(jwk, algorithm=alg or _default_alg(jwk)).key
    except (PyJWKError, ValueError, TypeError, KeyError):
        return None
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        return None
    kid = jwk.get("kid")
    return SigningKey(kid if isinstance(kid, str) else None, kty, alg, jwk.get("crv"), key)


def _default_alg(jwk: dict[str, Any]) -> str:
    if jwk["kty"] == "RSA":
        return "RS256"
    if jwk["kty"] == "OKP":
        return "EdDSA"
    return {v: k for k, v in _CURVES.items()}.get(jwk.get("crv", ""), "ES256")


def key_fits(key: SigningKey, alg: str) -> bool:
    """Whether a token's `alg` may be checked with this key."""
    if alg not in ALGORITHMS or (key.alg is not None and key.alg != alg):
        return False
    if _KTY[alg[:2]] != key.kty:
        return False
    return alg not in _CURVES or _CURVES[alg] == key.crv


class JwksCache:
    """Thread-safe: verifications run in worker threads."""

    def __init__(self, fetch: Callable[[], dict[str, Any]], min_refetch: float = 10.0,
                 max_age: float = 3600.0) -> None:
        self._fetch = fetch  # returns the JWKS document; raises BackendUnavailable
        self.min_refetch = min_refetch
        self.max_age = max_age
        self._keys: list[SigningKey] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()
        self.fetches = 0

    def key_for(self, kid: str | None, alg: str) -> SigningKey:
        """The key to check a token with. UnknownKey when there is none (after at most one
        rate-limited refetch); BackendUnavailable when the JWKS has never been fetched and
        cannot be now."""
        found = self._find(kid, alg)
        if found is not None and not self._stale():
            return found
        with self._lock:
            found = self._find(kid, alg)
            if found is not None and not self._stale():
                return found
            now = time.monotonic()
            if self._tried_at is None or now - self._tried_at >= self.min_refetch:
                self._refresh(now)
            elif self._fetched_at is None:
                raise BackendUnavailable("the issuer's JWKS could not be fetched")
        found = self._find(kid, alg)
        if found is None:
            raise UnknownKey(kid)
        return found

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        self.fetches += 1
        try:
            document = self._fetch()
        except BackendUnavailable:
            if self._fetched_at is None or now - self._fetched_at > 2 * self.max_age:
                raise
            return  # keep serving the keys we have: they were the issuer's an hour ago
        keys = document.get("keys")
        self._keys = [k for k in map(usable_key, keys) if k is not None] if isinstance(keys, list) else []
        self._fetched_at = now

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self.max_age

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        keys = self._keys
        if kid is None:  # a kid-less token only when there is exactly one candidate
            fitting = [k for k in keys if key_fits(k, alg)]
            return fitting[0] if len(fitting) == 1 else None
        for key in keys:
            if key.kid == kid and key_fits(key, alg):
                return key
        return None
