"""Brute-force defence: sliding-window counts of failed authentications per client IP and per
key id, and how long a throttled caller must wait."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class FailureThrottle:
    """Sliding-window failure counts per client IP and per key id (brute-force defence)."""

    def __init__(self, max_failures: int = 10, window: float = 60.0, max_tracked: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._max_tracked = max_tracked
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _retry(self, name: str, now: float) -> int | None:
        times = self._failures.get(name)
        if not times:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.max_failures:
            return None
        return max(1, int(times[0] + self.window - now + 0.999))

    def retry_after(self, client_ip: str, key_id: str | None) -> int | None:
        """Seconds to wait when the IP or the key id is throttled, else None."""
        waits = [w for w in (self.ip_wait(client_ip), self.key_wait(key_id)) if w]
        return max(waits) if waits else None

    def ip_wait(self, client_ip: str) -> int | None:
        """Seconds to wait when this client IP is throttled."""
        with self._lock:
            return self._retry(f"ip:{client_ip}", self._clock())

    def key_wait(self, key_id: str | None) -> int | None:
        """Seconds to wait when guesses at this key id are throttled."""
        if not key_id:
            return None
        with self._lock:
            return self._retry(f"key:{key_id}", self._clock())

    def record(self, client_ip: str, key_id: str | None) -> None:
        """Count one failure against the IP (and the key id, when the token named one)."""
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_tracked:  # bounded memory under a spray attack
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}
            for name in (f"ip:{client_ip}", f"key:{key_id}" if key_id else None):
                if name:
                    self._failures.setdefault(name, deque(maxlen=self.max_failures * 2)).append(now)
