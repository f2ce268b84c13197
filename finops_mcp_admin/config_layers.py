"""Where each setting comes from: flag > environment > profile section > top level of the config
file > default.

The config file may hold `[profile.NAME]` sections with the same keys as its top level; one is
chosen by `--profile NAME` or MCPADMIN_PROFILE. Unknown keys, at the top level, in a profile or in
a table such as `[argon2]`, are an error naming them: a typo (`stor = ...`) must not silently fall
back to the default store, nor a misplaced `default_tool_scope` under `[argon2]` be ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInput

FLAG, ENV, PROFILE, FILE, DEFAULT = "flag", "env", "profile", "file", "default"
#: Lower is stronger: used to pick between two configured values (a log file and a log group).
RANK = {FLAG: 0, ENV: 1, PROFILE: 2, FILE: 3, DEFAULT: 4}
PROFILE_ENV = "MCPADMIN_PROFILE"

#: Every key allowed at the top level (and in a profile), with its environment variable (or None).
SCALARS: dict[str, str | None] = {
    "store": "MCPADMIN_STORE",
    "namespace": "MCPADMIN_NAMESPACE",
    "actor": "MCPADMIN_ACTOR",
    "redis_password": "MCPADMIN_REDIS_PASSWORD",
    "redis_ca_file": "MCPADMIN_REDIS_CA",
    "redis_server_name": "MCPADMIN_REDIS_SERVER_NAME",
    "redis_password_secret_arn": "MCPADMIN_REDIS_PASSWORD_SECRET_ARN",
    "audit_maxlen": "MCPADMIN_AUDIT_MAXLEN",
    "log_file": "MCPADMIN_LOG_FILE",
    "log_group": "MCPADMIN_LOG_GROUP",
    "default_expires": None,
    "default_scopes": None,
    "default_tool_scope": None,
    "auth": "MCPADMIN_AUTH",
    "oauth_issuer": "MCPADMIN_OAUTH_ISSUER",
    "public_url": "MCPADMIN_PUBLIC_URL",
    "oauth_introspection_url": "MCPADMIN_OAUTH_INTROSPECTION_URL",
}
#: Tables with a fixed set of keys, each with its environment variable.
FIXED_TABLES: dict[str, dict[str, str | None]] = {
    "argon2": {"time_cost": "MCPADMIN_ARGON2_TIME_COST", "memory_cost": "MCPADMIN_ARGON2_MEMORY_COST",
               "parallelism": "MCPADMIN_ARGON2_PARALLELISM"},
}
#: Tables whose keys are names chosen by the user (tool and method names).
FREE_TABLES = ("tool_scopes", "method_scopes", "oauth_scope_map", "key_policy")


def env_var(key: str) -> str | None:
    """The environment variable of a setting (`store`, `argon2.time_cost`), or None."""
    table, _, sub = key.partition(".")
    if sub:
        return FIXED_TABLES.get(table, {}).get(sub)
    return SCALARS.get(key)


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from (flag, env, profile, file or default)."""

    value: Any
    origin: str


def _unknown(key: str, path: Path) -> InvalidInput:
    return InvalidInput(f"unknown key {key!r} in config file {path} (see `mcpadmin config show`)")


def check_keys(table: Mapping[str, Any], path: Path, prefix: str = "") -> None:
    """InvalidInput naming the first key that is not a known setting, table or profile."""
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key in SCALARS:
            if isinstance(value, dict):
                raise InvalidInput(f"config key {dotted!r} in {path} must be a value, not a table")
        elif key in FIXED_TABLES or key in FREE_TABLES:
            if not isinstance(value, dict):
                raise InvalidInput(f"config key {dotted!r} in {path} must be a table ([{dotted}])")
            for sub in value if key in FIXED_TABLES else ():
                if sub not in FIXED_TABLES[key]:
                    raise _unknown(f"{dotted}.{sub}", path)
        elif key == "profile" and not prefix:
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise InvalidInput(f"config key 'profile' in {path} must hold [profile.NAME] tables")
            for name, section in value.items():
                check_keys(section, path, f"profile.{name}.")
        else:
            raise _unknown(dotted, path)


def _lookup(table: Mapping[str, Any], key: str) -> Any:
    head, _, sub = key.partition(".")
    value = table.get(head)
    if sub:
        value = value.get(sub) if isinstance(value, dict) else None
    return None if value == "" else value


class Layers:
    """The config file (checked), the chosen profile, and the environment, asked key by key."""

    def __init__(self, file: Mapping[str, Any], path: Path, env: Mapping[str, str],
                 profile: str | None = None) -> None:
        check_keys(file, path)
        self.path, self.env, self.file = path, env, file
        profiles: Mapping[str, Any] = file.get("profile", {})
        if profile:
            self.profile = Resolved(profile, FLAG)
        else:
            self.profile = Resolved(env.get(PROFILE_ENV) or None, ENV if env.get(PROFILE_ENV) else DEFAULT)
        name = self.profile.value
        if name is not None and name not in profiles:
            known = ", ".join(sorted(profiles)) or f"none: add a [profile.{name}] section"
            raise InvalidInput(f"unknown profile {name!r} (profiles in {path}: {known})")
        self.section: Mapping[str, Any] = profiles.get(name, {}) if name else {}

    def get(self, key: str, flag: Any = None, default: Any = None) -> Resolved:
        """The strongest of: the flag's value, the environment, the profile, the file, default."""
        if flag not in (None, "", [], ()):
            return Resolved(flag, FLAG)
        name = env_var(key)
        if name and self.env.get(name, "") != "":
            return Resolved(self.env[name], ENV)
        for table, origin in ((self.section, PROFILE), (self.file, FILE)):
            value = _lookup(table, key)
            if value is not None:
                return Resolved(value, origin)
        return Resolved(default, DEFAULT)
