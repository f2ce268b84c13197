"""CORS origins: validation, normalisation and the allowlist decision (R20).

An allowlist entry is an origin: scheme + host + optional port, nothing else. Entries are stored
in canonical form (lower case, IDNA/punycode host, default port dropped), the form browsers send
in the Origin header. A request's Origin must *equal* an entry byte for byte: a header in any
other form (mixed case, trailing dot, explicit default port, userinfo, path) did not come from a
browser following the spec, and is refused rather than "normalised into" an allowed value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import InvalidInput, NotFound
from .store import KeyStore, Transaction

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
ENV_VAR = "CORS_ALLOWED_ORIGINS"


def _canonical_host(host: str, original: str) -> str:
    if host.startswith("["):  # IPv6 literal
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise InvalidInput(f"invalid origin {original!r}: bad IPv6 address") from None
    if host.endswith("."):
        raise InvalidInput(f"invalid origin {original!r}: trailing dot in host")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidInput(f"invalid origin {original!r}: host is not a valid domain name") from None
    try:
        return str(ipaddress.IPv4Address(ascii_host))
    except ValueError:
        pass
    if not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise InvalidInput(f"invalid origin {original!r}: host is not a valid domain name")
    return ascii_host


def normalize_origin(text: str) -> str:
    """Canonical `scheme://host[:port]` for an allowlist entry; InvalidInput for anything that is
    not exactly an origin (path, query, fragment, credentials, wildcard, `null`)."""
    raw = text.strip()
    if not raw or len(raw) > 2048 or not raw.isprintable():
        raise InvalidInput(f"invalid origin {text!r}")
    if "*" in raw:
        raise InvalidInput(f"invalid origin {raw!r}: wildcards are not allowed; list each origin")
    if raw.lower() == "null":
        raise InvalidInput("invalid origin 'null': opaque origins cannot be allowlisted")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"invalid origin {raw!r}: bad port") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidInput(f"invalid origin {raw!r}: scheme must be http or https")
    if "@" in parts.netloc:
        raise InvalidInput(f"invalid origin {raw!r}: credentials are not part of an origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise InvalidInput(f"invalid origin {raw!r}: an origin has no path, query or fragment")
    hostport = parts.netloc
    host = hostport.rsplit(":", 1)[0] if port is not None or hostport.endswith(":") else hostport
    if not host:
        raise InvalidInput(f"invalid origin {raw!r}: no host")
    host = _canonical_host(host, raw)
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    if not 0 < port < 65536:
        raise InvalidInput(f"invalid origin {raw!r}: bad port")
    return f"{scheme}://{host}:{port}"


def normalize_all(values: Iterable[str]) -> set[str]:
    """Normalise many entries (all must be valid)."""
    return {normalize_origin(v) for v in values}


def origins_from_env(environ: dict[str, str] | None = None) -> set[str]:
    """The comma-separated CORS_ALLOWED_ORIGINS value, normalised (a `*` entry is not an
    origin: see is_wildcard_config)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "")
    return normalize_all(v for v in value.split(",") if v.strip() and v.strip() != "*")


def is_wildcard_config(environ: dict[str, str] | None = None) -> bool:
    """True when CORS_ALLOWED_ORIGINS asks for `*` (refused in production)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "")
    return any(v.strip() == "*" for v in value.split(","))


@dataclass(frozen=True)
class OriginPolicy:
    """The allowlist as one immutable value, swapped whole on reload."""

    allowed: frozenset[str]
    #: CORS_ALLOWED_ORIGINS='*' outside production mode (development only; refused in production).
    any_origin: bool = False

    def allows(self, origin: str) -> bool:
        """Exact match of the header value against canonical entries."""
        return origin in self.allowed or (self.any_origin and origin != "null")


def add_origins(store: KeyStore, origins: Iterable[str]) -> list[str]:
    """Add entries to the stored allowlist; returns those that were new."""
    wanted = normalize_all(origins)

    def run(tx: Transaction) -> list[str]:
        new = sorted(wanted - tx.cors_origins())
        if new:
            tx.set_cors_origins(set(new), set())
            for origin in new:
                tx.audit("cors_add", None, None, origin=origin)
        return new

    return store.transaction(run)


def remove_origins(store: KeyStore, origins: Iterable[str]) -> list[str]:
    """Remove entries; NotFound if none of them was listed."""
    wanted = normalize_all(origins)

    def run(tx: Transaction) -> list[str]:
        present = sorted(wanted & tx.cors_origins())
        if not present:
            raise NotFound(f"not in the stored allowlist: {', '.join(sorted(wanted))}")
        tx.set_cors_origins(set(), set(present))
        for origin in present:
            tx.audit("cors_remove", None, None, origin=origin)
        return present

    return store.transaction(run)


def effective_policy(store_origins: Iterable[str], extra: Iterable[str] = (),
                     environ: dict[str, str] | None = None) -> OriginPolicy:
    """The union of CORS_ALLOWED_ORIGINS, the store's list and extra (already normalised) entries."""
    return OriginPolicy(frozenset(origins_from_env(environ) | set(store_origins) | set(extra)),
                        any_origin=is_wildcard_config(environ))


def list_origins(store: KeyStore, environ: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every allowed origin, sorted, with where it comes from: "store" or "env"."""
    stored = store.cors_origins()
    return [{"origin": o, "source": "store" if o in stored else "env"}
            for o in sorted(stored | origins_from_env(environ))]


def check_origin(store: KeyStore, origin: str, environ: dict[str, str] | None = None) -> bool:
    """Would a server using this store (and this environment) allow this Origin header?"""
    return effective_policy(store.cors_origins(), environ=environ).allows(origin)
