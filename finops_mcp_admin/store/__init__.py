"""Key stores, selected by URL: `sqlite:///path` (embedded default) or `redis[s]://...`."""

from __future__ import annotations

from ..config import Settings
from ..errors import InvalidInput
from .base import AuditEvent, KeyStore, StoredKey, Transaction

__all__ = ["AuditEvent", "KeyStore", "StoredKey", "Transaction", "open_store"]


def open_store(settings: Settings, retries: int = 0) -> KeyStore:
    """Open the store named by settings.store_url (imports only the backend it needs).
    retries: Redis command retries (0 for the CLI: fail fast; servers use 1)."""
    url = settings.store_url
    if url.startswith("sqlite://"):
        from .sqlite import SqliteStore

        return SqliteStore(url, actor=settings.actor)
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisStore

        return RedisStore(url, namespace=settings.namespace, actor=settings.actor,
                          password=settings.redis_password, ca_file=settings.redis_ca_file,
                          audit_maxlen=settings.audit_maxlen, retries=retries)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise InvalidInput(f"unsupported store URL scheme {scheme!r}: use sqlite:///path, redis:// or rediss://")
