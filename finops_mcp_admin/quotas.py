"""Per-key quotas as an administrator writes them: a request rate (`600/min`) and a cap on open
MCP sessions. Stored with the key (ApiKey.rate, ApiKey.max_sessions); the server enforces them
(server/quotas.py, server/sessions.py) and falls back to its own defaults for keys without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

_RATE = re.compile(r"^(\d{1,9})\s*/\s*(s|sec|second|m|min|minute|h|hour)$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600}
_UNIT_NAME = {1: "s", 60: "min", 3600: "h"}
#: "none" (or "-") in `keys update` removes a key's own value: the server default applies again.
CLEAR = ("none", "-")
MAX_SESSIONS_LIMIT = 100_000


@dataclass(frozen=True)
class Rate:
    """`count` requests per `seconds`: a token bucket of `count` tokens refilled at that pace."""

    count: int
    seconds: int

    @property
    def per_second(self) -> float:
        """Refill speed of the bucket."""
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count}/{_UNIT_NAME[self.seconds]}"


def parse_rate(text: str) -> Rate:
    """`N/s`, `N/min` or `N/h` (N ≥ 1); InvalidInput otherwise."""
    match = _RATE.match(text.strip().lower())
    if not match or int(match.group(1)) < 1:
        raise InvalidInput(f"invalid rate {text!r}: use N/s, N/min or N/h with N >= 1, e.g. 600/min")
    return Rate(int(match.group(1)), _UNIT_SECONDS[match.group(2)])


def canonical_rate(text: str | None) -> str | None:
    """The stored form of a rate (`600/min`), or None for no rate of the key's own."""
    return None if text is None else str(parse_rate(text))


def check_max_sessions(value: int | None) -> int | None:
    """A per-key session cap: 1..100000, or None (the server default applies)."""
    if value is not None and not 1 <= value <= MAX_SESSIONS_LIMIT:
        raise InvalidInput(f"invalid session cap {value}: use 1..{MAX_SESSIONS_LIMIT}")
    return value


def parse_max_sessions(text: str) -> int:
    """A session cap given as text (CLI, environment)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"invalid session cap {text!r}: use a whole number, e.g. 64") from None
    checked = check_max_sessions(value)
    assert checked is not None
    return checked
