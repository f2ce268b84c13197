"""Output: data on stdout as table | json | csv, messages on stderr.

One small class per format, each implementing the Format protocol, chosen by the OutputFormat
enum (`OutputFormat.to_format()`). Tables use tabulate (imported only when a table is printed);
json and csv carry every field. Control characters are stripped from every printed field in
every format (an ESC in MCPADMIN_ACTOR or a User-Agent must not reach the administrator's
terminal).

The contract every command keeps (README "Output"): times are ISO 8601 UTC with a Z suffix
(a datetime handed to a renderer is converted here, whatever its source); an empty listing is
`[]` in JSON and a header row in CSV; booleans are true/false in CSV and JSON (yes/no in tables);
lists (scopes) are space-separated in tables and CSV, as in an OAuth scope string (RFC 6749
§3.3), and arrays in JSON; `-q` prints one identifier per line and nothing else.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

Columns = Sequence[tuple[str, str]]  # (field, table header)

# C0 and C1 controls (ESC starts terminal sequences that can rewrite the screen or the title)
# and the bidirectional overrides that make text read differently than it is stored.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean(value: Any) -> Any:
    """A field with control characters removed from every string in it, keys included, and
    every datetime as ISO 8601 UTC with a Z suffix."""
    if isinstance(value, datetime):
        from ..durations import iso

        return iso(value)
    if isinstance(value, str):
        return _CONTROLS.sub("", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Format(Protocol):
    """What every output format does: a listing, and one record."""

    def rows(self, rows: Sequence[dict[str, Any]], columns: Columns) -> str:
        """A listing; columns are the fields a table shows (json and csv show every field)."""
        ...

    def record(self, record: dict[str, Any]) -> str:
        """One object, every field."""
        ...


class OutputFormat(StrEnum):
    """Values of -o/--output."""

    table = "table"
    json = "json"
    csv = "csv"

    def to_format(self) -> Format:
        """The formatter for this choice."""
        return _FORMATS[self]


#: Lists (scopes) in tables and CSV: space-separated, as an OAuth scope string (RFC 6749 §3.3).
LIST_SEPARATOR = " "


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items() if v not in (None, "", [])) or "-"
    return str(value)


def _flat(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"  # as in JSON, not Python's True/False
    if isinstance(value, (list, tuple)):
        value = LIST_SEPARATOR.join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != "-":
        # CSV injection (CWE-1236): attacker-controlled fields (User-Agent, Origin, path) must not
        # become spreadsheet formulas when an administrator opens the export.
        return "'" + value
    return value


class TableFormat:
    """Human-readable, only the given columns."""

    def rows(self, rows: Sequence[dict[str, Any]], columns: Columns) -> str:
        from tabulate import tabulate

        return tabulate([[_cell(r.get(f)) for f, _ in columns] for r in rows],
                        headers=[h for _, h in columns], tablefmt="simple", disable_numparse=True)

    def record(self, record: dict[str, Any]) -> str:
        from tabulate import tabulate

        return tabulate([[k, _cell(v)] for k, v in record.items()], tablefmt="plain",
                        disable_numparse=True)


class JsonFormat:
    """Every field; a list is a JSON array, a record an object."""

    def rows(self, rows: Sequence[dict[str, Any]], columns: Columns) -> str:
        return json.dumps(list(rows), indent=2)

    def record(self, record: dict[str, Any]) -> str:
        return json.dumps(record, indent=2)


class CsvFormat:
    """Every field, a header row, lists space-separated."""

    def rows(self, rows: Sequence[dict[str, Any]], columns: Columns) -> str:
        import io

        fields = list(rows[0]) if rows else [f for f, _ in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _flat(r.get(k)) for k in fields} for r in rows)
        return buf.getvalue().rstrip("\n")

    def record(self, record: dict[str, Any]) -> str:
        return self.rows([record], [(k, k) for k in record])


_FORMATS: dict[OutputFormat, Format] = {OutputFormat.table: TableFormat(), OutputFormat.json: JsonFormat(),
                                         OutputFormat.csv: CsvFormat()}


def out(text: str) -> None:
    """Data to stdout."""
    sys.stdout.write(text + "\n")


def note(text: str, quiet: bool = False) -> None:
    """A message to stderr (suppressed by --quiet); it can quote remote text (CloudFormation
    event reasons), so control characters are stripped, line breaks kept."""
    if not quiet:
        sys.stderr.write("\n".join(_CONTROLS.sub("", line) for line in text.split("\n")) + "\n")


def rows(data: Sequence[dict[str, Any]], columns: Columns, fmt: OutputFormat,
         quiet_field: str | None = None, quiet: bool = False) -> None:
    """Print a listing; with --quiet only quiet_field, one per line (rows without one are left
    out: `-q` output is identifiers and nothing else)."""
    data = [_clean(row) for row in data]
    if quiet and quiet_field:
        for row in data:
            if row.get(quiet_field) not in (None, ""):
                out(str(row[quiet_field]))
        return
    if fmt is OutputFormat.table and not data:
        note("(none)")
        return
    out(fmt.to_format().rows(data, columns))


def record(data: dict[str, Any], fmt: OutputFormat) -> None:
    """Print one object."""
    out(fmt.to_format().record(_clean(data)))
