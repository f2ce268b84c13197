"""`mcpadmin config show`: every effective setting, where it came from, secrets masked.

A secret is shown as `********` when set, never any part of it (not even a prefix); a password
inside a store URL (`redis://user:PASSWORD@host`) is masked the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import Settings

MASK = "********"


def mask_url(url: str) -> str:
    """The URL with any password replaced by the mask."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # an unparsable port: show nothing after the scheme rather than guess
        return url.split("://", 1)[0] + "://" + MASK
    if not has_password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def span(delta: timedelta | None) -> str | None:
    """A positive timedelta as the shortest duration string (90d, 12h, 30m, 45s)."""
    if delta is None:
        return None
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def effective_settings(settings: Settings) -> list[dict[str, Any]]:
    """One row per setting: {setting, value, origin}; origin is flag, env, profile, file or default."""
    params = settings.hash_params
    values: dict[str, Any] = {
        "config_file": settings.config_file,
        "profile": settings.profile,
        "store": mask_url(settings.store_url),
        "namespace": settings.namespace,
        "actor": settings.actor,
        "redis_password": MASK if settings.redis_password else None,
        "redis_password_secret_arn": settings.redis_password_secret_arn,
        "redis_ca_file": settings.redis_ca_file,
        "redis_server_name": settings.redis_server_name,
        "audit_maxlen": settings.audit_maxlen,
        "argon2.time_cost": params.time_cost,
        "argon2.memory_cost": params.memory_cost,
        "argon2.parallelism": params.parallelism,
        "log_file": list(settings.log_files) or None,
        "log_group": settings.log_group,
        "default_expires": span(settings.default_expires),
        "default_scopes": list(settings.default_scopes) if settings.default_scopes else None,
        "default_tool_scope": settings.default_tool_scope,
        "tool_scopes": settings.tool_scopes or None,
        "method_scopes": settings.method_scopes or None,
        "auth": settings.auth,
        "oauth_issuer": settings.oauth_issuer,
        "public_url": settings.public_url,
        "oauth_introspection_url": settings.oauth_introspection_url,
        "oauth_scope_map": settings.oauth_scope_map or None,
    }
    return [{"setting": key, "value": value, "origin": settings.origins.get(key, "default")}
            for key, value in values.items()]
