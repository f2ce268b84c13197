"""Connecting to Redis: a client that fails fast, TLS (a private CA, a server name for tunnels),
redis-py errors as one-line AdminErrors, and the typed view of replies (decode_responses=True)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from ..errors import BackendUnavailable, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    import redis

#: Fail fast: an unreachable store must not hang a CLI or a health check (redis-py 8 otherwise
#: retries with back-off for seconds).
CONNECT_TIMEOUT = 1.5
SOCKET_TIMEOUT = 5.0


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


# redis-py types every reply as bytes | str because it cannot know decode_responses; connect()
# always sets decode_responses=True, so replies are str. These casts say so once, typed.
def as_text(reply: bytes | str | None) -> str | None:
    """A string reply."""
    return cast("str | None", reply)


def as_members(reply: set[bytes | str]) -> set[str]:
    """A set reply."""
    return cast("set[str]", reply)


def as_stream(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """XRANGE entries (id, fields); redis-py types the reply as Optional, an empty range is []."""
    return cast("list[tuple[str, dict[str, str]]]", reply or [])


def connect(url: str, password: str | None = None, ca_file: str | None = None,
            socket_timeout: float | None = SOCKET_TIMEOUT, retries: int = 0,
            server_name: str | None = None) -> redis.Redis:
    """A client that fails fast (CLI: no retries; a server passes retries=1 so one connection
    cut by a failover or CLIENT KILL costs a reconnect, not a refused request); TLS for
    rediss:// (optionally a private CA; optionally verified as `server_name`, e.g. through a
    tunnel to 127.0.0.1)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), retries),
        "decode_responses": True,
    }
    if password and urlsplit(url).password is None:
        kwargs["password"] = password
    if url.startswith("rediss://") and ca_file:
        kwargs["ssl_ca_certs"] = ca_file
    if server_name and not url.startswith("rediss://"):
        # Fail closed: a server name promises a verified TLS peer, plain redis:// has none.
        raise InvalidInput(f"a Redis server name ({server_name}) needs a rediss:// store URL, "
                           f"not {redact_url(url)}")
    if url.startswith("rediss://"):
        from .redis_tls import checked_tls_connection

        kwargs["connection_class"] = checked_tls_connection(server_name)
    return redis.Redis.from_url(url, **kwargs)


@contextmanager
def redis_errors(display_url: str) -> Iterator[None]:
    """Map redis-py exceptions to one-line AdminErrors (no URL password, no traceback)."""
    from redis import exceptions as rx

    from .redis_tls import PLAINTEXT_PEER

    try:
        yield
    except rx.AuthenticationError:
        raise PermissionDenied(f"Redis at {display_url} refused the credentials") from None
    except rx.NoPermissionError:
        raise PermissionDenied(f"Redis at {display_url}: the ACL user lacks a needed permission") from None
    except (rx.ConnectionError, rx.TimeoutError) as exc:
        if PLAINTEXT_PEER in str(exc):
            raise BackendUnavailable(f"Redis at {display_url} {PLAINTEXT_PEER}: use redis:// or "
                                     f"enable TLS on the server") from None
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            reason = str(exc).split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" .")
            raise BackendUnavailable(f"TLS certificate of Redis at {display_url} rejected: "
                                     f"{reason}") from None
        raise BackendUnavailable(f"cannot reach Redis at {display_url}: {_first_line(exc)}") from None
    except rx.ResponseError as exc:
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            raise PermissionDenied(f"Redis at {display_url} refused us: {_first_line(exc)}") from None
        if text.startswith("READONLY"):
            raise BackendUnavailable(f"Redis at {display_url} is a read-only replica") from None
        raise BackendUnavailable(f"Redis at {display_url} failed: {_first_line(exc)}") from None
    except rx.InvalidResponse:
        raise BackendUnavailable(f"the server at {display_url} does not speak the Redis protocol") from None
    except rx.RedisError as exc:
        raise BackendUnavailable(f"Redis at {display_url} failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
