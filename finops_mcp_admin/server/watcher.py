"""Noticing store changes on a running server: a background thread that reads the store's
version on every change announcement, every poll interval and every reconnect, and reports
changes (the server then drops its verification cache and reloads the CORS allowlist)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from ..store.base import ChangeFeed, KeyStore
from .auth import KeyVerifier


class StoreWatcher:
    """Background thread that notices store changes: the store's change feed (Redis pub/sub) for
    speed, plus a version read after every message, every `poll_interval` and on every
    reconnect, so a lost message delays a change by at most one interval. A store without a
    feed (SQLite): version polling only."""

    def __init__(self, verifier: KeyVerifier, on_change: Callable[[int], None],
                 poll_interval: float = 0.25) -> None:
        if verifier.store is None:
            raise ValueError("a StoreWatcher needs a verifier with a store")
        self.verifier = verifier
        self.store: KeyStore = verifier.store
        self.on_change = on_change
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
        self.version: int | None = None

    def start(self) -> None:
        """Read the version once (so start-up fails loudly on a bad store), then watch."""
        self._check()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (if it was started)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _check(self) -> None:
        with self.verifier.store_lock:
            version = self.store.version()
        self.verifier.set_healthy(True)
        if version != self.version:
            self.on_change(version)
            self.version = version  # only now: a failed reload is retried on the next check

    def _run(self) -> None:
        feed: ChangeFeed | None = None
        push = True  # until the store says it has no feed
        while not self._stop.is_set():
            try:
                if push and feed is None:
                    feed = self.store.change_feed(self.poll_interval)
                    push = feed is not None
                    if feed is not None:
                        self._check()  # (re)subscribed: anything may have changed meanwhile
                if feed is not None:
                    feed.wait(self.poll_interval)
                else:
                    self._stop.wait(self.poll_interval)
                self._check()
            except Exception:  # any failure means "store unreachable": retry
                self.verifier.set_healthy(False)
                _close(feed)
                feed = None
                self._stop.wait(min(self.poll_interval, 0.2))
        _close(feed)


def _close(feed: ChangeFeed | None) -> None:
    """Close a feed that may already be broken."""
    if feed is not None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail too
            feed.close()
