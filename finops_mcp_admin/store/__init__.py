"""Key stores, selected by URL: `sqlite:///path` (embedded default) or `redis[s]://...`.

Takes plain values, never the settings: resolving flags, environment and config file is the
caller's job (`config.Settings.open_store`).
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import AuditEvent, KeyStore, StoredKey, Transaction

__all__ = ["AuditEvent", "KeyStore", "StoredKey", "Transaction", "open_store"]


def open_store(url: str, *, namespace: str = "mcpadmin", actor: str = "", password: str | None = None,
               ca_file: str | None = None, audit_maxlen: int = 100_000, retries: int = 0,
               server_name: str | None = None, create: bool = True) -> KeyStore:
    """Open the store named by url (imports only the backend it needs).
    namespace, password, ca_file, audit_maxlen: Redis only (SQLite has one store per file).
    server_name: rediss:// only, the name the TLS certificate is verified against (SNI) when the
    URL's host is another address, e.g. a tunnel's 127.0.0.1.
    retries: Redis command retries (0 for the CLI: fail fast; servers use 1).
    create: SQLite only; False makes a missing file NotFound instead of a new, empty store."""
    if url.startswith("sqlite://"):
        from .sqlite import SqliteStore

        return SqliteStore(url, actor=actor, create=create)
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisStore

        return RedisStore(url, namespace=namespace, actor=actor, password=password, ca_file=ca_file,
                          audit_maxlen=audit_maxlen, retries=retries, server_name=server_name)
    if server_name:
        raise InvalidInput("a Redis server name applies only to a rediss:// store")
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise InvalidInput(f"unsupported store URL scheme {scheme!r}: use sqlite:///path, redis:// or rediss://")
