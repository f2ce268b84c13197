"""The one way a command reaches the store: settings resolved from --store/--namespace, the
environment and the config file, then the store they name (closed when the command ends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..config import Settings, load_settings
from ..store import KeyStore


@contextmanager
def command_store(store: str | None, namespace: str | None,
                  server_name: str | None = None) -> Iterator[tuple[KeyStore, Settings]]:
    """The opened store and the settings it came from (for the hasher and the actor)."""
    settings = load_settings(store, namespace, server_name)
    with settings.open_store() as opened:
        yield opened, settings
