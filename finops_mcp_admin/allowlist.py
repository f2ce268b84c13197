"""Per-key IP allowlists: the CIDRs a key may be used from (IPv4 and IPv6, `ipaddress`).

Stored with the key (ApiKey.allow_cidr, canonical network strings); the server checks the client
IP *after* it was resolved through the trusted proxies only (uvicorn's ProxyHeadersMiddleware),
so a client cannot claim an allowed address with its own X-Forwarded-For. An empty list admits
any address. Anything the check cannot read ("unknown", garbage) is refused: fail closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from .errors import InvalidInput

#: More entries than this is a firewall's job, not a key record's.
MAX_CIDRS = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def canonical_cidrs(values: Iterable[str]) -> tuple[str, ...]:
    """The stored form of an allowlist: each entry a network (`10.0.0.0/8`, `2001:db8::/32`; a
    bare address is a /32 or /128), duplicates dropped. InvalidInput for anything else, and for
    an address with host bits set (`10.0.0.1/8` is a typo more often than a network)."""
    out: dict[str, None] = {}
    for value in values:
        text = value.strip()
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InvalidInput(f"invalid --allow-cidr {text[:64]!r}: {exc}") from None
        out[str(network)] = None
    if len(out) > MAX_CIDRS:
        raise InvalidInput(f"too many --allow-cidr entries ({len(out)}, at most {MAX_CIDRS})")
    return tuple(out)


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def allows(cidrs: tuple[str, ...], client_ip: str) -> bool:
    """True when `client_ip` lies in one of `cidrs`, or the list is empty. An IPv4-mapped IPv6
    address (`::ffff:10.0.0.1`, a dual-stack listener) is checked as the IPv4 address it is."""
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False  # "unknown" (no peer address) or garbage: fail closed
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(cidrs))
