"""The error tree. Each class carries the process exit code the CLI maps it to.

The core raises these where the fact is known; the CLI catches them once (cli/__init__.py).
Messages are one line and never contain a secret: callers pass ids, never tokens.
"""

from __future__ import annotations

OK = 0
CHECK_FAILED = 1
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
UNAVAILABLE = 5
PERMISSION_DENIED = 6
INTERRUPTED = 130

#: The closed set, for --help and the README.
EXIT_CODES: dict[int, str] = {
    OK: "ok",
    CHECK_FAILED: "check failed / findings / threshold exceeded / key invalid",
    USAGE: "bad usage or invalid input",
    NOT_FOUND: "not found",
    CONFLICT: "already exists / conflict",
    UNAVAILABLE: "backend unavailable (store, AWS, network)",
    PERMISSION_DENIED: "permission denied",
    INTERRUPTED: "interrupted",
}


class AdminError(Exception):
    """Base of every error the tool reports to the user."""

    exit_code = CHECK_FAILED


class CheckFailed(AdminError):
    """A check ran and its answer was no (invalid key, findings, threshold exceeded)."""

    exit_code = CHECK_FAILED


class InvalidInput(AdminError):
    """The user gave input the tool cannot accept."""

    exit_code = USAGE


class MalformedKey(InvalidInput):
    """A token that is not a well-formed key (bad prefix, length, alphabet or checksum)."""


class NotFound(AdminError):
    """The named key or object does not exist."""

    exit_code = NOT_FOUND


class Conflict(AdminError):
    """The object already exists or is in a state that forbids the change."""

    exit_code = CONFLICT


class BackendUnavailable(AdminError):
    """The store or a remote service could not be reached."""

    exit_code = UNAVAILABLE


class PermissionDenied(AdminError):
    """The backend refused us: wrong password, ACL, read-only database or file."""

    exit_code = PERMISSION_DENIED


class Interrupted(AdminError):
    """The user interrupted the command or declined a confirmation."""

    exit_code = INTERRUPTED


class NotConfigured(AdminError):
    """Something the command needs is not set anywhere (flag, environment, config file): a setup
    problem, exit 5 like an unreachable backend, so a cron `|| page` line does not read it as
    findings (1) or a typo (2)."""

    exit_code = UNAVAILABLE
