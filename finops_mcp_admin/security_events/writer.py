"""Security events (R23): the writer. One JSON object per line (the schema, timestamp format
included, is security_events/schema.py), to stdout and/or a file, always with the client IP.
Never a secret: callers pass key ids, and free-text fields are bounded and stripped of control
characters so a hostile header cannot forge extra log lines."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, Any

from . import schema

_MAX_FIELD = 256
_OPTIONAL = schema.FIELDS[2:]  # every field after ts and event, None when the caller has none


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return _clean_text(str(value))


def _clean_text(text: str) -> str:
    """Control characters (a forged line break) replaced, length bounded."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:_MAX_FIELD]


def json_text(value: str | None) -> str:
    """A text field exactly as `record` then `json.dumps` write it (cleaned, bounded, escaped),
    for writers that build their lines themselves (server/access.py: one line per request)."""
    if value is None:
        return "null"
    return encode_basestring_ascii(_clean_text(value))  # json.dumps's own (C) string encoder


class SecurityEventLog:
    """Thread-safe JSON-lines writer."""

    def __init__(self, to_stdout: bool = True, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._streams: list[IO[str]] = []
        if to_stdout:
            self._streams.append(sys.stdout)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._streams.append(open(path, "a", buffering=1, encoding="utf-8"))  # noqa: SIM115
        self._path = path

    def emit(self, event: str, when: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Write one event (at `when`, default now); returns what was written."""
        record = self.record(event, when, **fields)
        self.write_lines([json.dumps(record, separators=(",", ":")) + "\n"])
        return record

    @staticmethod
    def record(event: str, when: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """One event as written: the schema's fields in order, cleaned; nothing is written."""
        record: dict[str, Any] = {schema.TS: schema.format_ts(when or datetime.now(UTC)), schema.EVENT: event}
        for name in _OPTIONAL:
            record[name] = _clean(fields.get(name))
        for name, value in fields.items():
            if name not in record:
                record[name] = _clean(value)
        return record

    def write_lines(self, lines: list[str]) -> None:
        """Write whole JSON lines, one write and flush per stream (a batch costs one syscall)."""
        text = "".join(lines)
        with self._lock:
            for stream in self._streams:
                stream.write(text)
                stream.flush()

    def reopen(self) -> None:
        """Reopen the log file (SIGHUP after logrotate moved it away)."""
        if not self._path:
            return
        with self._lock:
            old = self._streams.pop()
            self._streams.append(open(self._path, "a", buffering=1, encoding="utf-8"))  # noqa: SIM115
            old.close()

    def close(self) -> None:
        """Close the file (not stdout)."""
        for stream in self._streams:
            if stream is not sys.stdout:
                stream.close()
