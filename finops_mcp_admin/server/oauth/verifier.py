"""OAuth 2.1 access tokens for the resource server (R24.2-R24.4): JWTs checked against the
issuer's JWKS, opaque tokens through RFC 7662 introspection, scopes mapped onto the server's.

A JWT must carry `iss` equal to the configured issuer, `aud` naming this server's canonical URL
(RFC 8707 audience binding: a token minted for another resource is refused here, so no token
can be replayed across servers), `exp`, and pass `nbf`/`exp` with LEEWAY seconds of clock skew.
Introspection answers are believed only when `active` is true, and cached no longer than the
token lives (and at most `introspection_ttl`, so a revocation at the issuer is seen within it).

Keys come only from the configured issuer's JWKS: a token's own `jku`, `x5u`, `jwk` or `x5c`
header is never followed or believed (an attacker would name their own key).

Hot path (`cached`): keyed BLAKE2b of the token → dict → constant-time compare → expiry. The
token itself is never stored, logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from base64 import urlsafe_b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...errors import BackendUnavailable
from ...oauth_metadata import MetadataClient, discover
from ..auth import MALFORMED, UNAVAILABLE, AuthResult, Principal
from .jwks import ALGORITHMS, JwksCache, UnknownKey

LEEWAY = 30
_MAX_CACHED = 50_000
#: Failure reasons (security events only, never responses).
WRONG_AUDIENCE, WRONG_ISSUER, EXPIRED, NOT_YET_VALID = ("wrong_audience", "wrong_issuer",
                                                         "token_expired", "token_not_yet_valid")
BAD_SIGNATURE, UNKNOWN_KID, BAD_ALG, INACTIVE = ("bad_signature", "unknown_kid",
                                                 "algorithm_not_allowed", "token_inactive")
NO_INTROSPECTION, INVALID_CLAIMS = "opaque_token_no_introspection", "invalid_claims"


@dataclass(frozen=True)
class OAuthSettings:
    """The resource server's OAuth configuration."""

    issuer: str
    audience: str  # the canonical URL of the MCP endpoint
    server_scopes: frozenset[str]
    scope_map: Mapping[str, str] = field(default_factory=dict)
    introspection_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    min_refetch: float = 10.0
    introspection_ttl: float = 60.0


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal
    until: float  # epoch seconds


class OAuthVerifier:
    """Tokens in, principals out. `verify` blocks (network): run it in a worker thread."""

    def __init__(self, settings: OAuthSettings, client: MetadataClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._client_lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self.jwks = JwksCache(self._fetch_jwks, min_refetch=settings.min_refetch)
        self._secret = secrets.token_bytes(32)
        self._cache: dict[bytes, _Entry] = {}

    # -- hot path ---------------------------------------------------------------------------

    def digest(self, token: str) -> bytes:
        """The keyed digest naming a token in memory."""
        return hashlib.blake2b(token.encode(), key=self._secret, digest_size=32).digest()

    def cached(self, token: str) -> Principal | None:
        """A token verified before and not yet expired, or None."""
        digest = self.digest(token)
        entry = self._cache.get(digest[:16])
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return None
        if time.time() >= entry.until:
            return None
        return entry.principal

    # -- cold path --------------------------------------------------------------------------

    def verify(self, token: str) -> AuthResult:
        """Full verification: JWT locally, anything else by introspection."""
        header = _jwt_header(token)
        if header is not None:
            result, until = self._verify_jwt(token, header)
        elif self.settings.introspection_url:
            result, until = self._introspect(token)
        else:
            return AuthResult(None, NO_INTROSPECTION if token else MALFORMED)
        if result.principal is not None:
            self._remember(token, result.principal, until)
        return result

    def _verify_jwt(self, token: str, header: dict[str, Any]) -> tuple[AuthResult, float]:
        import jwt

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            return AuthResult(None, BAD_ALG), 0
        kid = header.get("kid")
        try:
            key = self.jwks.key_for(kid if isinstance(kid, str) else None, alg)
        except UnknownKey:
            return AuthResult(None, UNKNOWN_KID), 0
        except BackendUnavailable:
            return AuthResult(None, UNAVAILABLE), 0
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.settings.audience,
                                issuer=self.settings.issuer, leeway=LEEWAY,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            return AuthResult(None, EXPIRED), 0
        except jwt.ImmatureSignatureError:
            return AuthResult(None, NOT_YET_VALID), 0
        except jwt.InvalidAudienceError:
            return AuthResult(None, WRONG_AUDIENCE), 0
        except jwt.InvalidIssuerError:
            return AuthResult(None, WRONG_ISSUER), 0
        except jwt.InvalidSignatureError:
            return AuthResult(None, BAD_SIGNATURE), 0
        except jwt.InvalidTokenError:
            return AuthResult(None, INVALID_CLAIMS), 0
        return self._principal(claims)

    def _introspect(self, token: str) -> tuple[AuthResult, float]:
        """RFC 7662 §2: POST the token with the server's client credentials."""
        s = self.settings
        auth = (s.client_id, s.client_secret or "") if s.client_id else None
        try:
            fetched = self._metadata_client().post_form(
                s.introspection_url or "", {"token": token, "token_type_hint": "access_token"}, auth)
        except BackendUnavailable:
            return AuthResult(None, UNAVAILABLE), 0
        claims = fetched.document
        if claims is None:
            return AuthResult(None, UNAVAILABLE), 0  # 401 from the issuer: our credentials
        if claims.get("active") is not True:
            return AuthResult(None, INACTIVE), 0
        if claims.get("iss", s.issuer) != s.issuer:
            return AuthResult(None, WRONG_ISSUER), 0
        aud = claims.get("aud")
        if s.audience not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
            return AuthResult(None, WRONG_AUDIENCE), 0
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return AuthResult(None, INVALID_CLAIMS), 0
        if exp <= time.time():
            return AuthResult(None, EXPIRED), 0
        result, until = self._principal(claims)
        return result, min(until, time.time() + s.introspection_ttl)

    def _principal(self, claims: dict[str, Any]) -> tuple[AuthResult, float]:
        sub, client = claims.get("sub"), claims.get("client_id", claims.get("azp"))
        sub = sub if isinstance(sub, str) and sub else None
        client = client if isinstance(client, str) and client else None
        if sub is None and client is None:
            return AuthResult(None, INVALID_CLAIMS), 0
        exp = float(claims["exp"])
        # The caller as events, quotas and the session cap see it: one user through one client
        # app (two apps of the same user are two callers, each with its own sessions).
        caller = f"oauth:{client or ''}/{sub or ''}"
        principal = Principal(caller[:200], client or "", self.map_scopes(claims),
                              datetime.fromtimestamp(exp, UTC), subject=sub, client_id=client)
        return AuthResult(principal, "valid", principal.key_id), exp

    def map_scopes(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """The server scopes a token's `scope` (or `scp`) grants: a server scope by its name,
        others through the configured map; the rest grant nothing."""
        raw = claims.get("scope", claims.get("scp", ""))
        names = raw.split() if isinstance(raw, str) else [n for n in raw if isinstance(n, str)] \
            if isinstance(raw, list) else []
        granted = set()
        for name in names:
            if name in self.settings.scope_map:
                granted.add(self.settings.scope_map[name])
            elif name in self.settings.server_scopes:
                granted.add(name)
        return tuple(sorted(granted))

    def _remember(self, token: str, principal: Principal, until: float) -> None:
        if len(self._cache) >= _MAX_CACHED:
            now = time.time()
            self._cache = {k: e for k, e in self._cache.items() if e.until > now}
            if len(self._cache) >= _MAX_CACHED:
                self._cache = {}
        digest = self.digest(token)
        self._cache[digest[:16]] = _Entry(digest, principal, until)

    # -- the issuer's documents -------------------------------------------------------------

    def _metadata_client(self) -> MetadataClient:
        with self._client_lock:
            if self._client is None:
                self._client = MetadataClient()
            return self._client

    def _fetch_jwks(self) -> dict[str, Any]:
        client = self._metadata_client()
        if self._metadata is None:
            found = discover(client, self.settings.issuer)
            if found is None or found.document is None:
                raise BackendUnavailable("no authorization server metadata at the issuer")
            if found.document.get("issuer") != self.settings.issuer:
                raise BackendUnavailable("the issuer's metadata names another issuer")
            self._metadata = found.document
        uri = self._metadata.get("jwks_uri")
        if not isinstance(uri, str) or (not uri.startswith("https://") and not _loopback_http(uri)):
            raise BackendUnavailable("the issuer's metadata has no usable jwks_uri")
        fetched = client.get(uri)
        if fetched.document is None:
            raise BackendUnavailable(f"the issuer's JWKS answered {fetched.status}")
        return fetched.document


def _loopback_http(url: str) -> bool:
    from ...oauth_metadata import is_loopback

    return url.startswith("http://") and is_loopback(url)


def _jwt_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, or None when the token is not one (opaque)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or len(parts[0]) > 2048:
        return None
    try:
        header = json.loads(urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None
