"""How many children may run, and how fast they may be started: per key, in total, and a
spawn rate for the whole server (a token bucket), so a key holder cannot fork-bomb the host
through `initialize`. Loop-thread only."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ...quotas import Rate


class SpawnLimits:
    """Reservations of child slots; `release` when the child is gone."""

    def __init__(self, per_key: int, total: int, rate: Rate,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_key, self.total, self.rate = per_key, total, rate
        self._clock = clock
        self._by_key: dict[str, int] = {}
        self._count = 0
        self._tokens = float(rate.count)
        self._refilled = clock()

    def reserve(self, key_id: str) -> tuple[str, int] | None:
        """None when a child may start for this key (a slot is taken), else (reason, seconds to
        wait) for a 429 with Retry-After."""
        if self._by_key.get(key_id, 0) >= self.per_key:
            return "stdio_children_per_key", 5
        if self._count >= self.total:
            return "stdio_children", 5
        now = self._clock()
        self._tokens = min(float(self.rate.count),
                           self._tokens + (now - self._refilled) * self.rate.per_second)
        self._refilled = now
        if self._tokens < 1:
            return "stdio_spawn_rate", max(1, math.ceil((1 - self._tokens) / self.rate.per_second))
        self._tokens -= 1
        self._by_key[key_id] = self._by_key.get(key_id, 0) + 1
        self._count += 1
        return None

    def release(self, key_id: str) -> None:
        """The child reserved for this key is gone."""
        left = self._by_key.get(key_id, 0) - 1
        if left > 0:
            self._by_key[key_id] = left
        else:
            self._by_key.pop(key_id, None)
        self._count -= 1

    def running(self, key_id: str | None = None) -> int:
        """Children reserved in total, or for one key."""
        return self._count if key_id is None else self._by_key.get(key_id, 0)
