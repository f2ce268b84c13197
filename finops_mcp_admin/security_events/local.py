"""Security events from local JSON-lines files: a log and its logrotate rotations (gzip too),
streamed line by line in constant memory, and followed live across rotation.

A cheap byte-regex test rejects lines of other events before any JSON parsing (the speed:
1M lines in ≈3 s, see docs/benchmarks.md).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidInput, NotFound, PermissionDenied
from . import schema
from .records import ReadStats, Window, parse_line

_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")


def rotated_files(path: Path) -> list[Path]:
    """A log and its logrotate siblings (`events.jsonl.1`, `events.jsonl.2.gz`), oldest first."""
    siblings = []
    for candidate in path.parent.glob(path.name + ".*"):
        match = _ROTATED.match(candidate.name[len(path.name):])
        if match:
            siblings.append((int(match.group(1)), candidate))
    ordered = [p for _, p in sorted(siblings, reverse=True)]
    return ordered + ([path] if path.exists() else [])


def _open(path: Path) -> io.BufferedIOBase:
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


def _event_test(kinds: Set[str]) -> Callable[[bytes], Any]:
    """A byte-regex search for `"event": "<one of kinds>"`, any JSON spacing."""
    names = b"|".join(re.escape(kind.encode()) for kind in sorted(kinds))
    return re.compile(b'"' + schema.EVENT.encode() + rb'"\s*:\s*"(?:' + names + rb')"').search


def read_local(paths: Iterable[str], kinds: Set[str], window: Window,
               stats: ReadStats) -> Iterator[dict[str, Any]]:
    """Matching events from JSON-lines files (and their rotations), streamed."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        found = rotated_files(path)
        if not found:
            raise NotFound(f"no log file {path}")
        files += found
    # One C-level search per line rejects other events before any JSON work (the speed).
    wanted, contains = _event_test(kinds), window.contains
    event_key, ts_key = schema.EVENT, schema.TS  # locals: read for every candidate line
    for path in files:
        stats.files += 1
        with _open(path) as fh:
            try:
                for raw in fh:
                    stats.lines += 1
                    if wanted(raw) is None:
                        # Other events are not parsed (that is the speed), but a line that is
                        # not even shaped like a JSON object is reported.
                        line = raw.strip()
                        if line and not (line.startswith(b"{") and line.endswith(b"}")):
                            stats.malformed += 1
                        continue
                    event = parse_line(raw, stats)
                    if (event is not None and event.get(event_key) in kinds
                            and contains(str(event.get(ts_key, "")))):
                        stats.matched += 1
                        yield event
            except (OSError, EOFError) as exc:  # truncated gzip, I/O error mid-file
                raise InvalidInput(f"cannot read {path}: {exc}") from None


@dataclass
class Follower:
    """`tail -F` for one log file: yields new complete lines, survives rotation."""

    path: Path
    poll: float = 0.5
    _fh: IO[bytes] | None = None
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

    def _rotated(self) -> bool:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        # New inode: logrotate moved the file; smaller than our offset: copytruncate.
        return info.st_ino != self._inode or (self._fh is not None and info.st_size < self._fh.tell())

    def lines(self, from_start: bool = False, stop: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """Complete lines as they are appended (from the start of the file, or from its end)."""
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
            if self._rotated():
                self._buffer = b""
                self._reopen(at_end=False)
                continue
            time.sleep(self.poll)


def follow_local(path: str, kinds: Set[str], window: Window, poll: float) -> Iterator[dict[str, Any]]:
    """Matching events of one log file as they are written (the file read from its start), forever."""
    stats = ReadStats()
    for line in Follower(Path(path), poll).lines(from_start=True):
        event = parse_line(line, stats) if line.strip() else None
        if event is not None and window.accepts(event, kinds):
            yield event
