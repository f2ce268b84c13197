"""What `serve --stdio` is configured with, and the child's environment (an allowlist).

Imports neither mcp nor anyio: the CLI builds these options before anything heavy loads."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...errors import InvalidInput
from ...quotas import Rate, parse_rate

#: Always passed (from the gateway's own environment when set there): a child needs a PATH to
#: find interpreters, a locale for its stdio encoding and a HOME for caches.
BASE_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TZ")
#: Never passed, whatever the allowlist says: the gateway's own credentials (the store password,
#: key hashes, API keys). `--stdio-env '*'` must not hand them to a server we do not control.
NEVER_PASSED = ("MCPADMIN_*", "MCP_API_KEY*", "API_KEYS", "TLS_KEY_FILE")
_NAME = re.compile(r"^[A-Za-z_*?\[\]][A-Za-z0-9_*?\[\]]*$")


@dataclass
class StdioOptions:
    """The stdio server to run per session, and the limits it runs under."""

    command: list[str]
    env_allow: list[str] = field(default_factory=list)
    cwd: str | None = None
    max_children_per_key: int = 8
    max_children: int = 64
    spawn_rate: str = "60/min"
    memory_mb: int | None = None  # RLIMIT_AS of each child
    cpu_seconds: int | None = None  # RLIMIT_CPU of each child
    max_message_bytes: int = 4 * 1024 * 1024
    start_timeout: float = 30.0  # spawn + the child's answer to tools/list when probing

    def check(self) -> StdioOptions:
        """InvalidInput on anything unusable, before a socket is opened."""
        if not self.command:
            raise InvalidInput("--stdio needs a command after --: mcpadmin serve --stdio -- CMD ARGS")
        if shutil.which(self.command[0]) is None:
            raise InvalidInput(f"stdio server command not found or not executable: {self.command[0]!r}")
        for name in self.env_allow:
            if not _NAME.match(name):
                raise InvalidInput(f"invalid --stdio-env {name!r}: give a variable name or a glob "
                                   "such as AWS_* (values come from this environment)")
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise InvalidInput(f"--stdio-cwd {self.cwd!r} is not a directory")
        if min(self.max_children_per_key, self.max_children) < 1:
            raise InvalidInput("--stdio-max-children and --stdio-max-children-per-key must be >= 1")
        if any(v is not None and v < 1 for v in (self.memory_mb, self.cpu_seconds)):
            raise InvalidInput("--stdio-memory-mb and --stdio-cpu-seconds must be >= 1")
        if self.max_message_bytes < 1024:
            raise InvalidInput("--stdio-max-message-bytes must be at least 1024")
        self.rate()
        return self

    def rate(self) -> Rate:
        """The spawn rate for the whole server."""
        return parse_rate(self.spawn_rate)


def child_env(allow: list[str], source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's whole environment: the base names plus the allowlisted ones (globs match
    names), from `source` (the gateway's environment); the gateway's own secrets never."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in BASE_ENV if name in source}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    for pattern in allow:
        for name in fnmatch.filter(source, pattern):
            env[name] = source[name]
    return {k: v for k, v in env.items()
            if not any(fnmatch.fnmatchcase(k, p) for p in NEVER_PASSED)}
