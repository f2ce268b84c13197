"""Per-key request rate for the envelope: one token bucket per key id, in this process.

A key's own rate (`keys create/update --rate`) wins over the server's `--rate-per-key`; a key
with neither is not rate-limited. A bucket holds `count` tokens and refills at count/period,
so a key may burst up to `count` requests and then keeps to the rate. Buckets are per replica
(sharing them through the store would cost a round trip on every request): N replicas admit up
to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache

from ..quotas import Rate, parse_rate
from .auth import Principal

_cached_rate = lru_cache(maxsize=1024)(parse_rate)


class RateLimiter:
    """Token buckets by key id. Loop-thread only (no lock: the envelope calls it from the event
    loop, between awaits)."""

    def __init__(self, default: Rate | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self._clock = clock
        # key id -> [tokens, last refill, the Rate the bucket was made for, its count, per second]
        self._buckets: dict[str, list] = {}

    def wait(self, principal: Principal) -> int | None:
        """None when the request may go ahead (a token is taken), else whole seconds until the
        next token (for Retry-After)."""
        rate = _cached_rate(principal.rate) if principal.rate else self.default
        if rate is None:
            return None
        now = self._clock()
        bucket = self._buckets.get(principal.key_id)
        # `is`: the parsed rates are cached, so the same rate is the same object (== for the rest)
        if bucket is None or (bucket[2] is not rate and bucket[2] != rate):  # first use, or changed
            if len(self._buckets) >= 100_000:
                self._forget_full(now)
            bucket = self._buckets[principal.key_id] = [float(rate.count), now, rate,
                                                        float(rate.count), rate.per_second]
        tokens = bucket[0] + (now - bucket[1]) * bucket[4]
        if tokens > bucket[3]:
            tokens = bucket[3]
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return max(1, math.ceil((1.0 - tokens) / bucket[4]))

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no state worth keeping."""
        for key_id, (tokens, last, _rate, count, per_second) in list(self._buckets.items()):
            if tokens + (now - last) * per_second >= count:
                del self._buckets[key_id]
