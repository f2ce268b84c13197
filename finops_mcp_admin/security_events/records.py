"""What every security-event reader shares: one line parsed into a record, the time window a
record must fall in, the event kinds it must have, and the counters of a read.

Window: `since` is inclusive, `until` exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..durations import parse_past
from ..errors import InvalidInput
from . import schema

# Bound once: contains() runs for every candidate line of a read.
_TS_WIDTH, _canonical = schema.TS_WIDTH, schema.TS_PATTERN.fullmatch


@dataclass(frozen=True)
class Window:
    """[since, until): either end may be open."""

    since: datetime | None = None
    until: datetime | None = None
    # The bounds as canonical strings, for the fast comparison.
    _s: str | None = field(default=None, init=False, repr=False, compare=False)
    _u: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until")
        object.__setattr__(self, "_s", schema.format_ts(self.since) if self.since else None)
        object.__setattr__(self, "_u", schema.format_ts(self.until) if self.until else None)

    @classmethod
    def parse(cls, since: str, until: str | None, now: datetime) -> Window:
        """The window between two `--since`/`--until` values (durations back from `now` or ISO times)."""
        return cls(parse_past(since, now), parse_past(until, now) if until else None)

    def contains(self, ts: str) -> bool:
        """True when the event time lies in the window. Canonical timestamps (schema.TS_WIDTH
        characters, UTC) compare correctly as strings; anything else is parsed."""
        if len(ts) == _TS_WIDTH and _canonical(ts):
            s, u = self._s, self._u
            return (s is None or ts >= s) and (u is None or ts < u)
        when = schema.parse_ts(ts)
        if when is None:
            return False
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)

    def accepts(self, record: dict[str, Any], kinds: Set[str]) -> bool:
        """True for a record of one of these event kinds inside the window."""
        return record.get(schema.EVENT) in kinds and self.contains(str(record.get(schema.TS, "")))


@dataclass
class ReadStats:
    """What a read saw: counted as it streams."""

    files: int = 0
    lines: int = 0
    malformed: int = 0
    matched: int = 0
    pages: int = 0


_decode = json.JSONDecoder().decode


def parse_line(raw: bytes | str, stats: ReadStats) -> dict[str, Any] | None:
    """One JSON object, or None (counted as malformed)."""
    try:
        event = _decode(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        stats.malformed += 1
        return None
    if not isinstance(event, dict):
        stats.malformed += 1
        return None
    return event
