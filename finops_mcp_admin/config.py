"""Settings, resolved as: flag > environment > config file > default.

Config file: `$MCPADMIN_CONFIG`, else `$XDG_CONFIG_HOME/mcpadmin/config.toml`
(`~/.config/mcpadmin/config.toml`). Example:

    store = "rediss://mcpadmin@cache.internal:6379/0"
    namespace = "prod"
    redis_server_name = "master.mcp.abc123.use1.cache.amazonaws.com"   # through a tunnel
    redis_password_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:..."
    [argon2]
    time_cost = 2
    memory_cost = 19456
    parallelism = 1
    default_tool_scope = "tools:read"   # serve: tools not in [tool_scopes] (unset: refused under --app)
    [tool_scopes]            # serve: scope needed per tool
    update_tagging_policy = "tools:write"
    [method_scopes]          # serve: scopes for MCP methods the built-in map lacks
    "x-vendor/report" = "reports:read"
    [key_policy]             # keys policy: defaults for its flags (key_policy.py)
    max_age = "90d"

Secrets (the Redis password) come from the environment or the file, never from argv; or,
best, from AWS Secrets Manager by `redis_password_secret_arn` / MCPADMIN_REDIS_PASSWORD_SECRET_ARN:
fetched when the store is opened, held only in this process's memory (not in argv, not in the
environment a shell or `ps e` shows, not in shell history).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .keys import HashParams, KeyHasher, validate_scope
from .store import KeyStore, open_store

_NAMESPACE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def env_flag(name: str) -> bool:
    """True when the environment variable is 1/true/yes/on (any case)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def config_path() -> Path:
    """Where the config file is looked for."""
    explicit = os.environ.get("MCPADMIN_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcpadmin" / "config.toml"


def default_store_url() -> str:
    """The embedded SQLite store under $XDG_DATA_HOME (~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'mcpadmin' / 'mcpadmin.db'}"


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Settings:
    """Everything the core needs to open a store and hash keys."""

    store_url: str
    namespace: str = "mcpadmin"
    hash_params: HashParams = field(default_factory=HashParams)
    actor: str = ""
    redis_password: str | None = field(default=None, repr=False)
    redis_ca_file: str | None = None
    #: TLS name of the Redis server when the URL's host is another address (a tunnel).
    redis_server_name: str | None = None
    #: Secrets Manager secret holding the Redis password, fetched when the store is opened.
    redis_password_secret_arn: str | None = None
    audit_maxlen: int = 100_000
    #: serve: the scope each tool needs, from the `[tool_scopes]` table (flags add to it).
    tool_scopes: dict[str, str] = field(default_factory=dict)
    #: serve: the `[method_scopes]` table, added to the built-in method map.
    method_scopes: dict[str, str] = field(default_factory=dict)
    #: serve: `default_tool_scope`, for tools not in tool_scopes (None: built-in default).
    default_tool_scope: str | None = None
    #: keys policy: the `[key_policy]` table (key_policy.py reads it).
    key_policy: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAMESPACE.match(self.namespace):
            raise InvalidInput(
                f"invalid namespace {self.namespace!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )

    def open_store(self, retries: int = 0) -> KeyStore:
        """The store these settings name. retries: Redis command retries (0 for the CLI: fail
        fast; servers use 1)."""
        return open_store(self.store_url, namespace=self.namespace, actor=self.actor,
                          password=self._password(), ca_file=self.redis_ca_file,
                          audit_maxlen=self.audit_maxlen, retries=retries,
                          server_name=self.redis_server_name)

    def _password(self) -> str | None:
        """The Redis password: given directly, else read from Secrets Manager (Redis URLs only,
        so a SQLite command never calls AWS)."""
        if self.redis_password or not self.redis_password_secret_arn:
            return self.redis_password
        if not self.store_url.startswith(("redis://", "rediss://")):
            return None
        from .aws.secrets import secret_string

        return secret_string(self.redis_password_secret_arn)

    def hasher(self) -> KeyHasher:
        """The argon2id hasher with these settings' parameters."""
        return KeyHasher(self.hash_params)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise InvalidInput(f"cannot read config file {path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an integer, not {value!r}") from None


def load_settings(store: str | None = None, namespace: str | None = None,
                  redis_server_name: str | None = None) -> Settings:
    """Resolve settings from the given flags, the environment, the config file and defaults."""
    env = os.environ
    file = _read_file(config_path())
    argon = file.get("argon2", {}) if isinstance(file.get("argon2", {}), dict) else {}

    def pick(flag: Any, env_name: str, file_value: Any, default: Any) -> Any:
        for value in (flag, env.get(env_name), file_value):
            if value not in (None, ""):
                return value
        return default

    defaults = HashParams()
    params = HashParams(
        time_cost=_int(pick(None, "MCPADMIN_ARGON2_TIME_COST", argon.get("time_cost"),
                            defaults.time_cost), "argon2 time_cost"),
        memory_cost=_int(pick(None, "MCPADMIN_ARGON2_MEMORY_COST", argon.get("memory_cost"),
                              defaults.memory_cost), "argon2 memory_cost"),
        parallelism=_int(pick(None, "MCPADMIN_ARGON2_PARALLELISM", argon.get("parallelism"),
                              defaults.parallelism), "argon2 parallelism"),
    )
    return Settings(
        store_url=str(pick(store, "MCPADMIN_STORE", file.get("store"), default_store_url())),
        namespace=str(pick(namespace, "MCPADMIN_NAMESPACE", file.get("namespace"), "mcpadmin")),
        hash_params=params,
        actor=str(pick(None, "MCPADMIN_ACTOR", file.get("actor"), "") or _default_actor()),
        redis_password=pick(None, "MCPADMIN_REDIS_PASSWORD", file.get("redis_password"), None),
        redis_ca_file=pick(None, "MCPADMIN_REDIS_CA", file.get("redis_ca_file"), None),
        redis_server_name=pick(redis_server_name, "MCPADMIN_REDIS_SERVER_NAME",
                               file.get("redis_server_name"), None),
        redis_password_secret_arn=pick(None, "MCPADMIN_REDIS_PASSWORD_SECRET_ARN",
                                       file.get("redis_password_secret_arn"), None),
        audit_maxlen=_int(pick(None, "MCPADMIN_AUDIT_MAXLEN", file.get("audit_maxlen"), 100_000),
                          "audit_maxlen"),
        tool_scopes=_scope_table(file.get("tool_scopes", {}), "tool_scopes"),
        method_scopes=_scope_table(file.get("method_scopes", {}), "method_scopes"),
        default_tool_scope=_default_tool_scope(file.get("default_tool_scope")),
        key_policy=_table(file.get("key_policy", {}), "key_policy"),
    )


def _table(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"config [{name}] must be a table")
    return dict(value)


def _scope_table(table: Any, name: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in table.items()):
        raise InvalidInput(f"config [{name}] must map names to scope strings")
    for scope in table.values():
        validate_scope(scope)
    return dict(table)


def _default_tool_scope(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("config default_tool_scope must be a scope string")
    return validate_scope(value)
