"""The credential rotation policy for cron (MCP security guide, enterprise checklist: 90-day
rotation): which active keys are too old, never expire, have no owner, or have gone unused.

Settings come from `mcpadmin keys policy` flags over the `[key_policy]` table of the config
file (config.py); with neither, the policy is a 90-day maximum age:

    [key_policy]
    max_age = "90d"          # "none" turns the age check off
    require_expiry = true
    require_owner = true
    unused_for = "30d"

A key already rotated (still valid in its grace period) is not a violation: it is on its way out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .durations import iso, parse_duration
from .errors import InvalidInput
from .keys import ApiKey

DEFAULT_MAX_AGE = timedelta(days=90)
_KNOWN = frozenset({"max_age", "require_expiry", "require_owner", "unused_for"})


@dataclass(frozen=True)
class RotationPolicy:
    """What every active key must satisfy (None / False: not checked)."""

    max_age: timedelta | None = DEFAULT_MAX_AGE
    require_expiry: bool = False
    require_owner: bool = False
    unused_for: timedelta | None = None


@dataclass(frozen=True)
class Violation:
    """A key that breaks the policy, with every reason."""

    key: ApiKey
    reasons: tuple[str, ...]

    def to_public(self) -> dict[str, Any]:
        """The violation as an output row (a ticket's worth of facts, no secret)."""
        key = self.key
        return {"id": key.id, "name": key.name, "owner": key.owner, "created_at": iso(key.created_at),
                "expires_at": iso(key.expires_at), "last_used_at": iso(key.last_used_at),
                "reasons": list(self.reasons)}


def _duration(value: Any, what: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a duration such as 90d, or none")
    return None if value.strip().lower() == "none" else parse_duration(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false")
    return value


def resolve_policy(config: Mapping[str, Any], *, max_age: str | None = None,
                   require_expiry: bool | None = None, require_owner: bool | None = None,
                   unused_for: str | None = None) -> RotationPolicy:
    """Flags over the config file's `[key_policy]` table over the defaults."""
    unknown = set(config) - _KNOWN
    if unknown:
        raise InvalidInput(f"config [key_policy] has unknown setting(s): {', '.join(sorted(unknown))}")
    age = max_age if max_age is not None else config.get("max_age")
    unused = unused_for if unused_for is not None else config.get("unused_for")
    return RotationPolicy(
        max_age=DEFAULT_MAX_AGE if age is None else _duration(age, "max_age"),
        require_expiry=_flag(require_expiry if require_expiry is not None
                             else config.get("require_expiry", False), "require_expiry"),
        require_owner=_flag(require_owner if require_owner is not None
                            else config.get("require_owner", False), "require_owner"),
        unused_for=_duration(unused, "unused_for"))


def _days(delta: timedelta) -> str:
    return f"{delta.days}d" if delta.days else f"{int(delta.total_seconds() // 3600)}h"


def reasons(key: ApiKey, policy: RotationPolicy, now: datetime) -> tuple[str, ...]:
    """Why one key breaks the policy (empty: it does not)."""
    found = []
    age = now - key.created_at
    if policy.max_age is not None and age > policy.max_age:
        found.append(f"older than {_days(policy.max_age)} (created {_days(age)} ago): rotate it")
    if policy.require_expiry and key.expires_at is None:
        found.append("never expires")
    if policy.require_owner and not key.owner:
        found.append("no owner")
    if policy.unused_for is not None:
        last = key.last_used_at
        idle = now - (last or key.created_at)
        if idle > policy.unused_for:
            found.append(f"unused for {_days(idle)}" + ("" if last else " (never used)"))
    return tuple(found)


def violations(keys: Iterable[ApiKey], policy: RotationPolicy, now: datetime) -> list[Violation]:
    """The active, not yet rotated keys that break the policy, by name then creation time."""
    out = []
    for key in keys:
        if not key.is_valid(now) or key.rotated_to is not None:
            continue
        why = reasons(key, policy, now)
        if why:
            out.append(Violation(key, why))
    return sorted(out, key=lambda v: (v.key.name, v.key.created_at, v.key.id))
