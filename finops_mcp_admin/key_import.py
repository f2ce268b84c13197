"""Reading existing plaintext keys for `keys import`: `name:key` lines, or an API_KEYS value.

Input that could be read both ways is refused rather than guessed: a wrong guess would store a
secret's prefix as a key name. Errors cite line numbers, never the content (which holds keys).
"""

from __future__ import annotations

import re
from enum import StrEnum

from .errors import InvalidInput
from .keys import Secret


class ImportFormat(StrEnum):
    """Layouts `keys import` reads."""

    auto = "auto"
    lines = "lines"
    api_keys = "api-keys"


_NAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}:")


def parse_import(text: str, fmt: ImportFormat, prefix: str) -> list[tuple[str, Secret]]:
    """(name, key) pairs from `name:key` lines, or from an API_KEYS value (`k1,k2`, optionally
    `API_KEYS=` in front) named PREFIX-1, PREFIX-2, ... InvalidInput for ambiguous input."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if fmt is ImportFormat.auto:
        fmt = _detect(lines)
    if fmt is ImportFormat.api_keys:
        joined = ",".join(line.removeprefix("API_KEYS=").strip("'\"") for line in lines)
        values = [v.strip() for v in joined.split(",") if v.strip()]
        return [(f"{prefix}-{i}", Secret(v)) for i, v in enumerate(values, start=1)]
    entries = []
    for number, line in enumerate(lines, start=1):
        name, sep, key = line.partition(":")
        if not sep or not key.strip() or not _NAME_PREFIX.match(line):
            raise InvalidInput(f"import line {number}: expected name:key with a valid key name")
        entries.append((name.strip(), Secret(key.strip())))
    return entries


def _detect(lines: list[str]) -> ImportFormat:
    named = [bool(_NAME_PREFIX.match(line)) and not line.startswith("API_KEYS=") for line in lines]
    if all(named) and lines:
        if any("," in line for line in lines):
            # "name:key" or an API_KEYS list whose first key contains ':'? Refuse to guess.
            raise InvalidInput("ambiguous import input: say --format lines or --format api-keys")
        return ImportFormat.lines
    if any(named) and not any(line.startswith("API_KEYS=") for line in lines):
        raise InvalidInput("ambiguous import input (some lines look like name:key, some not): "
                           "say --format lines or --format api-keys")
    return ImportFormat.api_keys
