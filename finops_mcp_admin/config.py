"""Settings, resolved as: flag > environment > profile section > config file > default.

Config file: `$MCPADMIN_CONFIG`, else `$XDG_CONFIG_HOME/mcpadmin/config.toml`
(`~/.config/mcpadmin/config.toml`). Example:

    store = "rediss://mcpadmin@cache.internal:6379/0"
    namespace = "prod"
    redis_server_name = "master.mcp.abc123.use1.cache.amazonaws.com"   # through a tunnel
    redis_password_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:..."
    default_tool_scope = "tools:read"   # serve: tools not in [tool_scopes] (unset: refused under --app)
    log_file = "/var/log/mcp/events.jsonl"   # audit failures|cors|watch (or log_group = "/mcp/prod")
    default_expires = "90d"                  # keys create without --expires
    default_scopes = ["tools:read"]          # keys create without --scope
    [argon2]
    time_cost = 2
    memory_cost = 19456
    parallelism = 1
    [profile.prod]                           # --profile prod / MCPADMIN_PROFILE=prod
    store = "rediss://127.0.0.1:16379/0"
    [tool_scopes]            # serve: scope needed per tool
    update_tagging_policy = "tools:write"
    [method_scopes]          # serve: scopes for MCP methods the built-in map lacks
    "x-vendor/report" = "reports:read"
    auth = "oauth"           # serve: api-key | oauth | both (MCPADMIN_AUTH)
    oauth_issuer = "https://login.example.com/realms/mcp"   # MCPADMIN_OAUTH_ISSUER
    public_url = "https://mcp.example.com/mcp"   # the canonical URL (MCPADMIN_PUBLIC_URL)
    oauth_introspection_url = "https://login.example.com/introspect"  # opaque tokens (RFC 7662)
    [oauth_scope_map]        # serve: the issuer's scope names onto the server's
    "mcp:tools" = "tools:read"
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
from datetime import timedelta
from pathlib import Path
from typing import Any

from .config_layers import DEFAULT, ENV, Layers, Resolved
from .durations import parse_duration
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
    #: serve: `auth` (api-key | oauth | both) and the OAuth resource-server settings.
    auth: str | None = None
    oauth_issuer: str | None = None
    public_url: str | None = None
    oauth_introspection_url: str | None = None
    oauth_scope_map: dict[str, str] = field(default_factory=dict)
    #: audit: security-event logs (`log_file`, MCPADMIN_LOG_FILE, --log-file).
    log_files: tuple[str, ...] = ()
    #: audit: the server's CloudWatch Logs group (`log_group`, MCPADMIN_LOG_GROUP, --log-group).
    log_group: str | None = None
    #: keys create: the lifetime of a key created without --expires (`default_expires`).
    default_expires: timedelta | None = None
    #: keys create: the scopes of a key created without --scope (`default_scopes`).
    default_scopes: tuple[str, ...] | None = None
    #: The `[profile.NAME]` in use, and the config file read.
    profile: str | None = None
    config_file: str = ""
    #: Where each setting came from (flag, env, profile, file, default), for `config show`.
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    #: keys policy: the `[key_policy]` table (key_policy.py reads it).
    key_policy: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAMESPACE.match(self.namespace):
            raise InvalidInput(
                f"invalid namespace {self.namespace!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )

    def open_store(self, retries: int = 0, create: bool = True) -> KeyStore:
        """The store these settings name. retries: Redis command retries (0 for the CLI: fail
        fast; servers use 1). create=False: a missing SQLite store is NotFound, never made."""
        return open_store(self.store_url, namespace=self.namespace, actor=self.actor,
                          password=self._password(), ca_file=self.redis_ca_file,
                          audit_maxlen=self.audit_maxlen, retries=retries,
                          server_name=self.redis_server_name, create=create)

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
                  redis_server_name: str | None = None, *, profile: str | None = None,
                  log_files: list[str] | None = None, log_group: str | None = None) -> Settings:
    """Resolve settings from the given flags, the environment, the chosen profile of the config
    file, its top level and defaults (in that order; see config_layers)."""
    path = config_path()
    layers = Layers(_read_file(path), path, os.environ, profile)
    got: dict[str, Resolved] = {}

    def pick(key: str, flag: Any = None, default: Any = None) -> Any:
        got[key] = layers.get(key, flag, default)
        return got[key].value

    defaults = HashParams()
    params = HashParams(**{name: _int(pick(f"argon2.{name}", None, getattr(defaults, name)),
                                      f"argon2 {name}")
                           for name in ("time_cost", "memory_cost", "parallelism")})
    actor = str(pick("actor", None, "") or _default_actor())
    values: dict[str, Any] = dict(
        store_url=str(pick("store", store, default_store_url())),
        namespace=str(pick("namespace", namespace, "mcpadmin")),
        hash_params=params, actor=actor,
        redis_password=pick("redis_password"), redis_ca_file=pick("redis_ca_file"),
        redis_server_name=pick("redis_server_name", redis_server_name),
        redis_password_secret_arn=pick("redis_password_secret_arn"),
        audit_maxlen=_int(pick("audit_maxlen", None, 100_000), "audit_maxlen"),
        tool_scopes=_scope_table(pick("tool_scopes", None, {}), "tool_scopes"),
        method_scopes=_scope_table(pick("method_scopes", None, {}), "method_scopes"),
        default_tool_scope=_default_tool_scope(pick("default_tool_scope")),
        log_files=_paths(pick("log_file", log_files)), log_group=pick("log_group", log_group),
        default_expires=_default_expires(pick("default_expires")),
        default_scopes=_default_scopes(pick("default_scopes")),
        profile=layers.profile.value, config_file=str(path),
        auth=pick("auth"), oauth_issuer=pick("oauth_issuer"), public_url=pick("public_url"),
        oauth_introspection_url=pick("oauth_introspection_url"),
        oauth_scope_map=_scope_table(pick("oauth_scope_map", None, {}), "oauth_scope_map"),
        key_policy=_table(pick("key_policy", None, {}), "key_policy"),
    )
    got["profile"], got["config_file"] = layers.profile, Resolved(
        str(path), ENV if os.environ.get("MCPADMIN_CONFIG") else DEFAULT)
    return Settings(**values, origins={key: r.origin for key, r in got.items()})


def _paths(value: Any) -> tuple[str, ...]:
    """log_file: one path (flag list, env, file) or a list of paths in the config file."""
    items = value if isinstance(value, list | tuple) else [] if value is None else [value]
    if not all(isinstance(item, str) and item for item in items):
        raise InvalidInput("config log_file must be a path or a list of paths")
    return tuple(os.path.expanduser(item) for item in items)


def _default_expires(value: Any) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"config default_expires must be a duration such as \"90d\", not {value!r}")
    try:
        delta = parse_duration(value)
    except InvalidInput as exc:
        raise InvalidInput(f"config default_expires: {exc}") from None
    if delta <= timedelta(0):
        raise InvalidInput(f"config default_expires {value!r} must be a positive duration such as \"90d\"")
    return delta


def _default_scopes(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput('config default_scopes must be a non-empty list such as ["tools:read"]')
    try:
        return tuple(validate_scope(v) for v in value)
    except InvalidInput as exc:
        raise InvalidInput(f"config default_scopes: {exc}") from None


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
