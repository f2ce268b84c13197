"""Security events (schema in ARCHITECTURE.md): read them from local JSON-lines logs or from
CloudWatch Logs, filter by event and time window, and aggregate (R23).

One reader per source, one aggregation for every query. Local logs are streamed line by line
(constant memory whatever their size, gzip included); a cheap substring test rejects lines of
other events before any JSON parsing, and canonical timestamps compare as strings.

Window: `since` is inclusive, `until` exclusive.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InvalidInput, NotFound, PermissionDenied

GROUP_FIELDS = {"ip": "client_ip", "reason": "reason", "key": "key_id", "path": "path"}
_CANONICAL_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")


def canonical(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(ts: str) -> datetime | None:
    """An event's ISO time as an aware datetime, or None."""
    try:
        value = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """[since, until): either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until")
        object.__setattr__(self, "_s", canonical(self.since) if self.since else None)
        object.__setattr__(self, "_u", canonical(self.until) if self.until else None)

    def contains(self, ts: str) -> bool:
        """True when the event time lies in the window. The server writes millisecond UTC
        timestamps (`2026-11-22T02:37:03.784Z`), which compare correctly as strings; anything
        else is parsed."""
        if len(ts) == 24 and _CANONICAL_TS.match(ts):
            s, u = self._s, self._u  # type: ignore[attr-defined]
            return (s is None or ts >= s) and (u is None or ts < u)
        when = parse_time(ts)
        if when is None:
            return False
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)


@dataclass
class ReadStats:
    """What a read saw: counted as it streams."""

    files: int = 0
    lines: int = 0
    malformed: int = 0
    matched: int = 0
    pages: int = 0


def rotated_files(path: Path) -> list[Path]:
    """A log and its logrotate siblings (`events.jsonl.1`, `events.jsonl.2.gz`), oldest first."""
    siblings = []
    for candidate in path.parent.glob(path.name + ".*"):
        match = _ROTATED.match(candidate.name[len(path.name):])
        if match:
            siblings.append((int(match.group(1)), candidate))
    ordered = [p for _, p in sorted(siblings, reverse=True)]
    return ordered + ([path] if path.exists() else [])


def _open(path: Path):
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return path.open("rb")
    except PermissionError:
        raise PermissionDenied(f"cannot read {path}: permission denied") from None
    except FileNotFoundError:
        raise NotFound(f"no log file {path} (rotated away while reading?)") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a log file") from None


def read_local(paths: Iterable[str], events: set[str], window: Window, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """Matching events from JSON-lines files (and their rotations), streamed."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        found = rotated_files(path)
        if not found:
            raise NotFound(f"no log file {path}")
        files += found
    # One C-level search per line rejects other events before any JSON work (the speed).
    wanted = re.compile(rb'"event"\s*:\s*"(?:' + b"|".join(re.escape(e.encode()) for e in sorted(events)) + rb')"')
    for path in files:
        stats.files += 1
        with _open(path) as fh:
            try:
                for raw in fh:
                    stats.lines += 1
                    if wanted.search(raw) is None:
                        # Other events are not parsed (that is the speed), but a line that is
                        # not even shaped like a JSON object is reported.
                        line = raw.strip()
                        if line and not (line.startswith(b"{") and line.endswith(b"}")):
                            stats.malformed += 1
                        continue
                    event = parse_line(raw, stats)
                    if event is not None and event.get("event") in events and window.contains(str(event.get("ts", ""))):
                        stats.matched += 1
                        yield event
            except (OSError, EOFError) as exc:  # truncated gzip, I/O error mid-file
                raise InvalidInput(f"cannot read {path}: {exc}") from None


_decode = json.JSONDecoder().decode


def parse_line(raw: bytes | str, stats: ReadStats) -> dict[str, Any] | None:
    """One JSON object, or None (counted as malformed)."""
    try:
        event = _decode(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        stats.malformed += 1
        return None
    if not isinstance(event, dict):
        stats.malformed += 1
        return None
    return event


def read_cloudwatch(logs: Any, group: str, events: set[str], window: Window, stats: ReadStats,
                    page_size: int = 10_000, sleep: Callable[[float], None] = time.sleep,
                    max_retries: int = 6) -> Iterator[dict[str, Any]]:
    """Matching events from a CloudWatch Logs group: server-side JSON filter pattern (fast on
    AWS), every page followed, throttling retried with back-off, and the JSON checked
    client-side too (some back-ends ignore filter patterns)."""
    from botocore.exceptions import ClientError

    pattern = " || ".join(f'$.event = "{e}"' for e in sorted(events))
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": "{ " + pattern + " }",
                              "limit": page_size}
    if window.since:
        kwargs["startTime"] = int(window.since.timestamp() * 1000)
    if window.until:
        kwargs["endTime"] = int(window.until.timestamp() * 1000)
    token = None
    while True:
        attempt = 0
        while True:
            try:
                page = logs.filter_log_events(**kwargs, **({"nextToken": token} if token else {}))
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":
                    raise NotFound(f"no log group {group}") from None
                if code in ("ThrottlingException", "Throttling") and attempt < max_retries:
                    sleep(min(0.2 * 2 ** attempt, 5.0))
                    attempt += 1
                    continue
                raise
        stats.pages += 1
        for item in page.get("events", []):
            stats.lines += 1
            event = parse_line(item.get("message", ""), stats)
            if event is not None and event.get("event") in events and window.contains(str(event.get("ts", ""))):
                stats.matched += 1
                yield event
        new_token = page.get("nextToken")
        if not new_token or new_token == token:
            return
        token = new_token


@dataclass
class Group:
    """Events sharing one value of the --by field."""

    key: str
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""

    def add(self, ts: str) -> None:
        self.count += 1
        if not self.first_seen or ts < self.first_seen:
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts

    def to_public(self) -> dict[str, Any]:
        return {"key": self.key, "count": self.count, "first_seen": self.first_seen,
                "last_seen": self.last_seen}


def aggregate(events: Iterable[dict[str, Any]], by: str) -> list[Group]:
    """Counts per value of the field `by` names (ip, reason, key, path), busiest first."""
    field_name = GROUP_FIELDS[by]
    groups: dict[str, Group] = {}
    for event in events:
        key = str(event.get(field_name) if event.get(field_name) is not None else "-")
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key)
        group.add(str(event.get("ts", "")))
    return sorted(groups.values(), key=lambda g: (-g.count, g.key))


@dataclass
class Follower:
    """`audit watch` on a local file: yields new complete lines, survives rotation."""

    path: Path
    poll: float = 0.5
    _fh: Any = None
    _inode: int | None = None
    _buffer: bytes = field(default=b"")

    def _reopen(self, at_end: bool) -> None:
        if self._fh:
            self._fh.close()
        try:
            self._fh = self.path.open("rb")
        except FileNotFoundError:
            self._fh, self._inode = None, None
            return
        self._inode = os.fstat(self._fh.fileno()).st_ino
        if at_end:
            self._fh.seek(0, os.SEEK_END)

    def lines(self, from_start: bool = False, stop: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        if not self.path.exists():
            raise NotFound(f"no log file {self.path}")
        self._reopen(at_end=not from_start)
        while not stop():
            chunk = self._fh.read() if self._fh else b""
            if chunk:
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                yield from complete
                continue
            try:
                info = os.stat(self.path)
                # New inode: logrotate moved the file; smaller than our offset: copytruncate.
                rotated = info.st_ino != self._inode or (self._fh is not None and info.st_size < self._fh.tell())
            except FileNotFoundError:
                rotated = False
            if rotated:
                self._buffer = b""
                self._reopen(at_end=False)
                continue
            time.sleep(self.poll)


def check_group_exists(logs: Any, group: str) -> None:
    """NotFound unless the log group exists (a clear error before paging through nothing)."""
    page = logs.describe_log_groups(logGroupNamePrefix=group)
    if not any(g.get("logGroupName") == group for g in page.get("logGroups", [])):
        raise NotFound(f"no log group {group}")

