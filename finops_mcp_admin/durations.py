"""Times and durations as the CLI accepts them: `30m`, `24h`, `90d`, `2w`, `0`, or ISO 8601.

All times are timezone-aware UTC, truncated to whole seconds so that what is stored, shown and
compared is the same value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import overload

from .errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
#: Far enough for any key lifetime, near enough that datetime arithmetic cannot overflow.
MAX_DURATION = timedelta(days=36500)
HELP = "a duration like 30m, 24h, 90d, 2w, or an ISO 8601 date/time (UTC unless an offset is given)"


def utcnow() -> datetime:
    """The current time, UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


# Overloads: a datetime in gives a str out, only None gives None (callers need not re-check).
@overload
def iso(when: datetime) -> str: ...
@overload
def iso(when: None) -> None: ...
@overload
def iso(when: datetime | None) -> str | None: ...


def iso(when: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z suffix (`2026-11-22T02:00:00Z`), or None."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@overload
def from_iso(text: str) -> datetime: ...
@overload
def from_iso(text: None) -> None: ...
@overload
def from_iso(text: str | None) -> datetime | None: ...


def from_iso(text: str | None) -> datetime | None:
    """Parse what iso() wrote (or any ISO 8601 string with an offset); None passes through."""
    if text is None:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """`30m` / `24h` / `90d` / `2w` / `45s` / `0` as a timedelta; InvalidInput otherwise."""
    raw = text.strip().lower()
    if raw == "0":
        return timedelta(0)
    match = _DURATION.match(raw)
    if not match:
        raise InvalidInput(f"invalid duration {text!r}: use e.g. 30m, 24h, 90d or 2w")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(f"duration {text!r} is too long (at most {MAX_DURATION.days} days)")
    delta = timedelta(seconds=seconds)
    if delta > MAX_DURATION:
        raise InvalidInput(f"duration {text!r} is too long (at most {MAX_DURATION.days} days)")
    return delta


def _parse_instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise InvalidInput(f"time {text!r} is out of range") from None


def parse_future(text: str, now: datetime) -> datetime:
    """An expiry: a duration from now (`90d`) or an ISO instant, which must lie in the future."""
    instant = _parse_instant(text)
    if instant is None:
        try:
            delta = parse_duration(text)
        except InvalidInput:
            raise InvalidInput(f"invalid time {text!r}: use {HELP}") from None
        if delta <= timedelta(0):
            # `--expires 0` would make a key that is expired the moment it is printed.
            raise InvalidInput(f"invalid time {text!r}: an expiry must lie in the future, "
                               "use a positive duration such as 90d")
        return now + delta
    if instant <= now:
        raise InvalidInput(f"time {text!r} is in the past")
    if instant - now > MAX_DURATION:
        raise InvalidInput(f"time {text!r} is too far in the future")
    return instant


def parse_past(text: str, now: datetime) -> datetime:
    """A start of a window: a duration back from now (`24h`) or an ISO instant."""
    instant = _parse_instant(text)
    if instant is not None:
        return instant
    try:
        return now - parse_duration(text)
    except InvalidInput:
        raise InvalidInput(f"invalid time {text!r}: use {HELP}") from None
