"""Reading keys: from stdin, or a hidden prompt on a terminal. Never from argv."""

from __future__ import annotations

import getpass
import sys

from ..errors import InvalidInput
from ..keys import Secret

#: Far above any real key or import file line count; stops a runaway pipe.
MAX_STDIN = 1024 * 1024


def read_all_stdin() -> str:
    """All of stdin (bounded)."""
    data = sys.stdin.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise InvalidInput(f"stdin is larger than {MAX_STDIN} bytes")
    return data


def read_secret(prompt: str = "API key: ") -> Secret:
    """One key from stdin (first line, surrounding whitespace removed)."""
    if sys.stdin.isatty():
        text = getpass.getpass(prompt, stream=sys.stderr)
    else:
        text = sys.stdin.readline(4097)
        if len(text) > 4096:
            raise InvalidInput("the key on stdin is too long")
    value = text.strip()
    if not value:
        raise InvalidInput("no key given on stdin")
    if not value.isprintable():
        raise InvalidInput("the key on stdin contains control characters")
    return Secret(value)


def stdin_is_terminal() -> bool:
    """True when a person can answer a prompt."""
    return sys.stdin.isatty()
