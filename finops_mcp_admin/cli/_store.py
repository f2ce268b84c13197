"""The one way a command reaches its settings and the store: resolved from its flags, the global
--profile, the environment and the config file, then the store they name (closed when the
command ends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from ..config import Settings, load_settings
from ..store import KeyStore
from . import _render as render

#: The global `mcpadmin --profile NAME` (set by the root callback; MCPADMIN_PROFILE otherwise).
selected_profile: str | None = None


def command_settings(store: str | None = None, namespace: str | None = None,
                     server_name: str | None = None, **flags: Any) -> Settings:
    """Settings for this command: its flags win, then the environment, profile, file, default."""
    return load_settings(store, namespace, server_name, profile=selected_profile, **flags)


@contextmanager
def command_store(store: str | None, namespace: str | None, server_name: str | None = None, *,
                  create: bool) -> Iterator[tuple[KeyStore, Settings]]:
    """The opened store and the settings it came from (for the hasher and the actor).
    create: only commands that add something may make a missing SQLite store (and say so);
    the others exit 3 naming the path."""
    settings = command_settings(store, namespace, server_name)
    with open_command_store(settings, create=create) as opened:
        yield opened, settings


class _FirstUse:
    """Stands for the store until a core call first touches it, then opens it. Input the core
    refuses before that (a bad name, scope or origin, an empty import) leaves no new store behind."""

    def __init__(self, settings: Settings, create: bool) -> None:
        self._settings, self._create = settings, create
        self.opened: KeyStore | None = None

    def open(self) -> KeyStore:
        """The store, opened now if it is not yet."""
        if self.opened is None:
            self.opened = self._settings.open_store(create=self._create)
            if self.opened.created:
                # Not muted by -q: a mistyped --store must not go unnoticed.
                render.note(f"created store at {getattr(self.opened, 'path', self.opened.display_url)}")
        return self.opened

    def __getattr__(self, name: str) -> Any:
        return getattr(self.open(), name)


@contextmanager
def open_command_store(settings: Settings, *, create: bool) -> Iterator[KeyStore]:
    """The store of already-resolved settings, opened at its first use (and closed at the end);
    says so on stderr when opening created it."""
    lazy = _FirstUse(settings, create)
    if not (create and settings.store_url.startswith("sqlite:")):
        lazy.open()  # nothing to leave behind: open now, so an unreachable Redis fails first
    try:
        yield cast(KeyStore, lazy)
    finally:
        if lazy.opened is not None:
            lazy.opened.close()
