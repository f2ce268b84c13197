"""Brute-force and flood defence for the cold path (store lookup + argon2), decided when an
attempt ARRIVES, before any work is spent on it.

- Failures in a sliding window per client IP and per (client IP, key id). An attempt in flight
  counts as a failure until it succeeds, so 200 concurrent guesses cannot all slip past the
  limit before the first of them has failed.
- Attempts in flight, globally (≈ cores: argon2 is CPU-bound, more only queues) and per client
  IP. Anything over either bound is refused at once instead of queueing for a worker thread.

Never per key id alone: key ids are public, so a limit on a key id is a lever with which
strangers lock the key's holder out. Tokens that verified before (server/auth.py) are exempt
from the failure windows and the per-IP bound and have their own lane of the global bound, so
no stranger's traffic can make a valid key fail.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio

#: Why an attempt was refused (the `reason` of its `rate_limited` event).
TOO_MANY_FAILURES, CLIENT_BUSY, SERVER_BUSY = "too_many_failures", "client_busy", "server_busy"
#: Retry-After for a refusal caused by attempts in flight: they finish within milliseconds.
BUSY_RETRY_AFTER = 1


def default_max_verifying() -> int:
    """Attempts verified at once by default: one per core, at least 2."""
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class Refusal:
    """An attempt refused on arrival: 429 with this Retry-After."""

    reason: str
    retry_after: int


@dataclass
class Attempt:
    """A reserved attempt: hand it back to `FailureThrottle.finish` exactly once."""

    client_ip: str
    names: tuple[str, ...]
    known: bool
    finished: bool = False


class _Window:
    __slots__ = ("pending", "times")

    def __init__(self, max_failures: int) -> None:
        self.times: deque[float] = deque(maxlen=max_failures)  # only the newest can matter
        self.pending = 0


class FailureThrottle:
    """Failure windows per client IP and per (IP, key id), and bounds on attempts in flight.
    Memory is bounded: at `max_tracked` windows the least recently used one is dropped, O(1)."""

    def __init__(self, max_failures: int = 10, window: float = 60.0, max_tracked: int = 100_000,
                 clock: Callable[[], float] = time.monotonic, *, max_verifying: int | None = None,
                 max_verifying_per_ip: int = 2) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_verifying = max_verifying or default_max_verifying()
        self.max_verifying_per_ip = max_verifying_per_ip
        self._max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, _Window] = OrderedDict()
        self._in_flight = {False: 0, True: 0}  # strangers' lane, known tokens' lane
        self._in_flight_ip: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- arrival ----------------------------------------------------------------------------

    def reserve(self, client_ip: str, key_id: str | None, known: bool = False) -> Attempt | Refusal:
        """Reserve one verification for this client (and the key id its token claims), or say
        why not. `known`: the token verified before, so it is nobody's guess."""
        names = (f"ip:{client_ip}",) + ((f"ipkey:{client_ip}:{key_id}",) if key_id else ())
        with self._lock:
            if self._in_flight[known] >= self.max_verifying:
                return Refusal(SERVER_BUSY, BUSY_RETRY_AFTER)
            if not known:
                if self._in_flight_ip.get(client_ip, 0) >= self.max_verifying_per_ip:
                    return Refusal(CLIENT_BUSY, BUSY_RETRY_AFTER)
                now = self._clock()
                waits = [w for w in (self._wait(name, now) for name in names) if w is not None]
                if waits:
                    return Refusal(TOO_MANY_FAILURES, max(waits))
                for name in names:
                    self._touch(name).pending += 1
            self._in_flight[known] += 1
            self._in_flight_ip[client_ip] = self._in_flight_ip.get(client_ip, 0) + 1
            return Attempt(client_ip, names, known)

    def finish(self, attempt: Attempt, failed: bool) -> None:
        """The reserved attempt is over: a failure stays counted in its windows, anything else
        (success, store unavailable) gives the reservation back."""
        with self._lock:
            if attempt.finished:
                return
            attempt.finished = True
            self._in_flight[attempt.known] -= 1
            left = self._in_flight_ip.pop(attempt.client_ip) - 1
            if left:
                self._in_flight_ip[attempt.client_ip] = left
            now = self._clock()
            for name in attempt.names if not attempt.known else ():
                entry = self._failures.get(name)
                if entry is not None:  # None: evicted meanwhile
                    entry.pending = max(0, entry.pending - 1)
            if failed:
                for name in attempt.names:
                    self._touch(name).times.append(now)

    def record(self, client_ip: str, key_id: str | None) -> None:
        """Count one failure that needed no verification (e.g. missing credentials)."""
        with self._lock:
            now = self._clock()
            self._touch(f"ip:{client_ip}").times.append(now)
            if key_id:
                self._touch(f"ipkey:{client_ip}:{key_id}").times.append(now)

    def retry_after(self, client_ip: str, key_id: str | None = None) -> int | None:
        """Seconds to wait when the IP (or the IP's guesses at this key id) are throttled."""
        with self._lock:
            now = self._clock()
            names = [f"ip:{client_ip}"] + ([f"ipkey:{client_ip}:{key_id}"] if key_id else [])
            waits = [w for w in (self._wait(name, now) for name in names) if w is not None]
            return max(waits) if waits else None

    def in_flight(self) -> int:
        """Attempts being verified now (both lanes)."""
        with self._lock:
            return self._in_flight[False] + self._in_flight[True]

    # -- windows ----------------------------------------------------------------------------

    def _wait(self, name: str, now: float) -> int | None:
        entry = self._failures.get(name)
        if entry is None:
            return None
        times = entry.times
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) + entry.pending < self.max_failures:
            return None
        if not times:
            return BUSY_RETRY_AFTER  # all counted attempts are still in flight
        return max(1, int(times[0] + self.window - now + 0.999))

    def _touch(self, name: str) -> _Window:
        """The window for name, made the most recently used; at capacity the least recently
        used window goes (one pop, never a scan of the table)."""
        entry = self._failures.get(name)
        if entry is not None:
            self._failures.move_to_end(name)
            return entry
        if len(self._failures) >= self._max_tracked:
            self._failures.popitem(last=False)
        entry = self._failures[name] = _Window(max(1, self.max_failures))
        return entry


class Tarpit:
    """Late answers for clients that ignore Retry-After (event-loop state).

    A client that honours Retry-After is answered at once: it is never refused more than
    `after` times in one second. One that keeps sending anyway (a guessing flood over hundreds
    of connections) has its refusals held `delay` seconds first (never beyond the Retry-After they
    carry, at least 1): each of its connections then costs one cheap answer a second instead of
    thousands, and the event loop stays with the clients who hold keys. At most `max_held`
    answers wait at once (half the default connection cap, so held flood connections never fill
    it); beyond that they go at once."""

    def __init__(self, after: int = 16, delay: tuple[float, float] = (0.5, 1.0), max_held: int = 500,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.after, self.delay, self.max_held = after, delay, max_held
        self.held = 0
        self._clock = clock
        self._second = 0
        self._refused: dict[str, int] = {}  # client IP -> refusals in the current second

    def delay_for(self, client_ip: str) -> float:
        """Seconds to hold this refusal (0: answer at once). Counts the refusal."""
        second = int(self._clock())
        if second != self._second:
            self._second = second
            self._refused.clear()
        count = self._refused[client_ip] = self._refused.get(client_ip, 0) + 1
        if count <= self.after or self.held >= self.max_held:
            return 0.0
        return random.uniform(*self.delay)  # spread out: held answers must not return in waves

    async def hold(self, client_ip: str) -> None:
        """Wait before a refusal is sent, when the client ignores Retry-After."""
        delay = self.delay_for(client_ip)
        if not delay:
            return
        self.held += 1
        try:
            await anyio.sleep(delay)
        finally:
            self.held -= 1
