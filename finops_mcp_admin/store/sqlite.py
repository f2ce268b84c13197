"""The embedded store: one SQLite file (WAL, synchronous=FULL), created with mode 0600.

`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`; `?mode=ro` opens read-only
(an auditor's view). Writers serialise on `BEGIN IMMEDIATE`, so a transaction's reads and
writes are one atomic step; servers notice changes by polling the version counter.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..durations import from_iso, iso, utcnow
from ..errors import BackendUnavailable, InvalidInput, NotFound, PermissionDenied
from ..keys import ApiKey
from .base import AuditEvent, KeyStore, PendingAudit, StoredKey, T

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    last_used_at TEXT,
    legacy_bucket INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_legacy ON api_keys(legacy_bucket) WHERE legacy_bucket IS NOT NULL;
CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, key_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cors_origins (origin TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS verified (key_id TEXT PRIMARY KEY, digest BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    key_id TEXT,
    name TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
INSERT OR IGNORE INTO meta(k, v) VALUES ('version', '0'), ('schema', '1');
"""


def parse_sqlite_url(url: str) -> tuple[Path, bool]:
    """(path, read_only) from `sqlite:///path[?mode=ro]`."""
    rest = url[len("sqlite://"):]
    path_part, _, query = rest.partition("?")
    if not path_part.startswith("/") or len(path_part) < 2:
        raise InvalidInput("invalid SQLite store URL: use sqlite:///path/to/file.db")
    mode = parse_qs(query).get("mode", ["rw"])[-1]
    if mode not in ("rw", "ro"):
        raise InvalidInput(f"invalid SQLite mode {mode!r}: use mode=ro or leave it out")
    return Path(path_part[1:]), mode == "ro"


def check_store_path(path: Path) -> None:
    """InvalidInput when another local user could swap or squat the store's files.

    The file itself (and its -wal/-shm sidecars) must not be a symlink: it would send our key
    hashes and audit log wherever the link points. Its directory must not be world-writable,
    even with the sticky bit (/tmp): the sticky bit stops others deleting our files, not
    creating `keys.db-wal` or a symlink under a name SQLite is about to open. Directories
    further up may be world-writable only with the sticky bit (others cannot rename ours)."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.is_symlink():
            raise InvalidInput(f"refusing the store at {path}: {candidate.name} is a symbolic link")
    parent = path.absolute().parent
    for directory in (parent, *parent.parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            continue  # not created yet: mkdir makes it 0700
        if mode & stat.S_IWOTH and (directory == parent or not mode & stat.S_ISVTX):
            raise InvalidInput(f"refusing the store at {path}: {directory} is world-writable; "
                               "keep the store in a directory only you can write")


def _os_error(path: Path, exc: OSError) -> Exception:
    import errno

    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"cannot write the store at {path}: {exc.strerror}")
    return BackendUnavailable(f"cannot open the store at {path}: {exc.strerror}")


def _db_error(path: Path, exc: sqlite3.Error) -> Exception:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return PermissionDenied(f"the store at {path} is read-only")
    if "locked" in text or "busy" in text:
        return BackendUnavailable(f"the store at {path} is busy (locked by another process)")
    if "not a database" in text or "malformed" in text:
        return BackendUnavailable(f"the store at {path} is not a valid mcpadmin database")
    return BackendUnavailable(f"cannot use the store at {path}: {text}")


class _SqliteTx:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._db = store._db
        self.pending: list[PendingAudit] = []
        self.wrote = False

    def get(self, key_id: str) -> StoredKey | None:
        return self._store.get(key_id)

    def current_id(self, name: str) -> str | None:
        return self._store.current_id(name)

    def all_keys(self) -> list[ApiKey]:
        return self._store.list_keys()

    def put(self, key: ApiKey, key_hash: str | None = None, legacy_bucket: int | None = None) -> None:
        record = json.dumps(key.to_stored(), separators=(",", ":"))
        if key_hash is None:
            cur = self._db.execute("UPDATE api_keys SET record = ? WHERE id = ?", (record, key.id))
            if cur.rowcount != 1:
                raise NotFound(f"no key with id {key.id}")
        else:
            self._db.execute(
                "INSERT INTO api_keys(id, name, record, key_hash, legacy_bucket) VALUES (?,?,?,?,?)",
                (key.id, key.name, record, key_hash, legacy_bucket),
            )
        self.wrote = True

    def set_current(self, name: str, key_id: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO names(name, key_id) VALUES (?, ?)", (name, key_id))
        self.wrote = True

    def audit(self, action: str, key_id: str | None, name: str | None, *, actor: str | None = None,
              **detail: Any) -> None:
        self.pending.append(PendingAudit(action, key_id, name, detail, actor))

    def lookup_salt(self) -> str:
        salt = self._store.lookup_salt()
        if salt is None:
            salt = secrets.token_hex(16)
            self._db.execute("INSERT INTO meta(k, v) VALUES ('lookup_salt', ?)", (salt,))
            self.wrote = True
        return salt

    def cors_origins(self) -> set[str]:
        return self._store.cors_origins()

    def set_cors_origins(self, add: set[str], remove: set[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO cors_origins(origin) VALUES (?)",
                             [(o,) for o in sorted(add)])
        self._db.executemany("DELETE FROM cors_origins WHERE origin = ?", [(o,) for o in sorted(remove)])
        self.wrote = True


class SqliteStore(KeyStore):
    """KeyStore on one SQLite file."""

    def __init__(self, url: str, actor: str = "", create: bool = True) -> None:
        self.path, self.read_only = parse_sqlite_url(url)
        self._create = create
        self.display_url = url
        self._actor = actor
        self._lock = threading.RLock()
        self._closed = False
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        check_store_path(path)
        # A read never makes a store: a typo in the path must not list "(none)" from a new,
        # empty database (and leave its directories behind).
        if (self.read_only or not self._create) and not path.exists():
            raise NotFound(f"no store at {path}: check --store / MCPADMIN_STORE (a command "
                           "that adds keys or origins creates it)")
        if self.read_only:
            uri = f"file:{path}?mode=ro"
        elif not self._create:
            uri = f"file:{path}?mode=rw"  # rw, not rwc: SQLite itself never creates it either
        else:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # Create with 0600 before SQLite does (it would use the umask); the WAL and
                # shared-memory files inherit the database file's mode. O_EXCL: of two
                # processes creating it at once, one alone reports "created".
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                    self.created = True
                except FileExistsError:
                    pass
            except OSError as exc:
                raise _os_error(path, exc) from None
            uri = f"file:{path}?mode=rw"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None,
                                 check_same_thread=False)
            if not self.read_only:
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: a committed revocation survives power loss.
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            db.execute("SELECT v FROM meta WHERE k = 'version'").fetchone()
        except sqlite3.Error as exc:
            raise _db_error(path, exc) from None
        return db

    @contextmanager
    def _errors(self) -> Iterator[None]:
        # One connection, many threads (a server's request workers, its watcher, last-use
        # writes): every use is serialised here, and a closed store fails cleanly instead of
        # handing a freed connection to SQLite (which segfaults).
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"the store at {self.path} is closed")
            try:
                yield
            except sqlite3.Error as exc:
                raise _db_error(self.path, exc) from None

    def transaction(self, fn: Callable[[Any], T]) -> T:
        with self._errors():  # holds the lock for the whole transaction
            self._db.execute("BEGIN IMMEDIATE")
            try:
                tx = _SqliteTx(self)
                result = fn(tx)
                if tx.wrote or tx.pending:
                    self._db.execute("UPDATE meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'version'")
                    now = iso(utcnow())
                    self._db.executemany(
                        "INSERT INTO audit(ts, actor, action, key_id, name, detail) VALUES (?,?,?,?,?,?)",
                        [(now, p.actor or self._actor, p.action, p.key_id, p.name, p.detail_json())
                         for p in tx.pending],
                    )
                self._db.execute("COMMIT")
                return result
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _row_to_stored(self, row: tuple[str, str, str | None]) -> StoredKey:
        record, key_hash, last_used = row
        key = ApiKey.from_stored(json.loads(record))
        if last_used:
            key = key.with_changes(last_used_at=from_iso(last_used))
        return StoredKey(key, key_hash)

    def get(self, key_id: str) -> StoredKey | None:
        with self._errors():
            row = self._db.execute(
                "SELECT record, key_hash, last_used_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return self._row_to_stored(row) if row else None

    def current_id(self, name: str) -> str | None:
        with self._errors():
            row = self._db.execute("SELECT key_id FROM names WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def list_keys(self) -> list[ApiKey]:
        with self._errors():
            rows = self._db.execute("SELECT record, '', last_used_at FROM api_keys").fetchall()
        return [self._row_to_stored(row).key for row in rows]

    def legacy_candidates(self, bucket: int) -> list[StoredKey]:
        with self._errors():
            rows = self._db.execute(
                "SELECT record, key_hash, last_used_at FROM api_keys WHERE legacy_bucket = ?", (bucket,)
            ).fetchall()
        return [self._row_to_stored(row) for row in rows]

    def lookup_salt(self) -> str | None:
        with self._errors():
            row = self._db.execute("SELECT v FROM meta WHERE k = 'lookup_salt'").fetchone()
        return row[0] if row else None

    def set_hash(self, key_id: str, key_hash: str) -> None:
        with self._errors():
            self._db.execute("UPDATE api_keys SET key_hash = ? WHERE id = ?", (key_hash, key_id))

    def touch(self, key_id: str, when: datetime) -> None:
        with self._errors():
            self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (iso(when), key_id))

    def verified_digest(self, key_id: str) -> bytes | None:
        with self._errors():
            try:
                row = self._db.execute("SELECT digest FROM verified WHERE key_id = ?", (key_id,)).fetchone()
            except sqlite3.OperationalError:  # a read-only copy of a store made before the table
                return None
        return bytes(row[0]) if row else None

    def record_verified(self, key_id: str, digest: bytes | None) -> None:
        with self._errors():
            if digest is None:
                self._db.execute("DELETE FROM verified WHERE key_id = ?", (key_id,))
            else:
                self._db.execute("INSERT OR REPLACE INTO verified(key_id, digest) VALUES (?, ?)",
                                 (key_id, digest))

    def version(self) -> int:
        with self._errors():
            return int(self._db.execute("SELECT v FROM meta WHERE k = 'version'").fetchone()[0])

    def audit_events(self, since: datetime | None = None) -> list[AuditEvent]:
        with self._errors():
            rows = self._db.execute(
                "SELECT ts, actor, action, key_id, name, detail FROM audit WHERE ts >= ? ORDER BY seq",
                (iso(since) if since else "",),
            ).fetchall()
        return [AuditEvent(from_iso(ts), actor, action, key_id, name, json.loads(detail))
                for ts, actor, action, key_id, name, detail in rows]

    def cors_origins(self) -> set[str]:
        with self._errors():
            return {row[0] for row in self._db.execute("SELECT origin FROM cors_origins")}

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
