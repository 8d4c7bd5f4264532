"""Locks and dead properties in SQLite files in the share's state folder.

A SQLite database (one file, crash-safe) is shared by the threads of a process and by the
processes of one host that use the same file (workers of one share): locks are granted
atomically across them (sqlite_locks.py) and each sees the others' changes. This is the
default state, in the state directory: ``locks.sqlite3`` and ``properties.sqlite3``, so
dead properties (Windows' Win32 attributes, a client's tags) and locks survive a restart.
The URLs that choose a state storage are read by :mod:`davstore.frontends.webdav.state`.

Keys are wsgidav's ref-URLs: quoted paths from the share root, collections ending in ``/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any, Literal

from wsgidav.dav_error import HTTP_INSUFFICIENT_STORAGE, DAVError
from wsgidav.lock_man.lock_manager import generate_lock_token, normalize_lock_root, validate_lock
from wsgidav.lock_man.lock_storage import LockStorageDict

from davstore.frontends.webdav.locked_empty import mark_created
from davstore.vfs.host_peers import HostPeers

__all__ = [
    "LOCKS_FILE",
    "PROPERTIES_FILE",
    "SETUP_PATIENCE",
    "SqliteLockStorage",
    "SqlitePropertyManager",
    "StateFull",
    "connect_state_file",
]

logger = logging.getLogger(__name__)

LOCKS_FILE = "locks.sqlite3"
_URL_KEY = "URL2TOKEN:"
PROPERTIES_FILE = "properties.sqlite3"


#: Seconds a process waits for another one to finish setting up a new state file.
SETUP_PATIENCE = 30.0


class StateFull(DAVError):  # type: ignore[misc]
    """507: the disk (or quota) of a state file is full. Logged once, where it is raised."""

    def __init__(self, path: str, exc: sqlite3.Error) -> None:
        super().__init__(
            HTTP_INSUFFICIENT_STORAGE,
            "no space left for the share's locks and properties",
            src_exception=exc,
        )


class _StateConnection(sqlite3.Connection):
    """A state database's connection: SQLite's ``database or disk is full`` leaves every
    statement and commit as :class:`StateFull` (one log line), never as a traceback."""

    state_path = ""

    def _full(self, exc: sqlite3.Error) -> BaseException:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            return exc
        logger.error("state file %s: %s (answered 507)", self.state_path, exc)
        return StateFull(self.state_path, exc)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._full(exc) from exc

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            raise self._full(exc) from exc

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        try:
            return super().__exit__(*exc_info)
        except sqlite3.Error as exc:
            raise self._full(exc) from exc


def connect_state_file(path: str, *schema: str) -> sqlite3.Connection:
    """A connection to a state database (WAL, autocommit, usable from every thread), with
    the ``schema`` statements (``CREATE TABLE IF NOT EXISTS ...``) run in one transaction.

    Processes starting together (``--workers``) may open a new file at once: switching it
    to WAL and creating its tables are retried while another process holds the file (SQLite
    answers "database is locked" at once there rather than waiting), for up to
    :data:`SETUP_PATIENCE` seconds. Raises OSError when the file cannot be used.
    """
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        connection = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, factory=_StateConnection
        )
    except sqlite3.Error as exc:
        raise OSError(f"cannot open the state file {path!r}: {exc}") from exc
    connection.state_path = path

    def set_up() -> None:
        if path != ":memory:":
            connection.execute("PRAGMA journal_mode=WAL")
        if schema:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                for statement in schema:
                    connection.execute(statement)

    deadline = time.monotonic() + SETUP_PATIENCE
    pause = 0.005
    while True:
        try:
            set_up()
            return connection
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() + pause > deadline:
                connection.close()
                raise OSError(f"cannot open the state file {path!r}: {exc}") from exc
        except (sqlite3.Error, StateFull) as exc:
            connection.close()
            raise OSError(f"cannot open the state file {path!r}: {exc}") from exc
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _encode(value: Any) -> str:
    return json.dumps(value, default=_bytes_to_json)


def _bytes_to_json(value: object) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot store {type(value).__name__} in the lock storage")


def _json_to_bytes(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


def _decode(text: str) -> Any:
    return json.loads(text, object_hook=_json_to_bytes)


def _is_within(url: str, ancestor: str) -> bool:
    base = ancestor.rstrip("/")
    return url in (ancestor, base) or url.startswith(base + "/")


#: The lock table: one row per lock, found by token (primary key) or by root (index), so
#: a LOCK, a lookup and a conflict check cost index look-ups, not a scan of every lock.
_LOCK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lock_tokens (token TEXT PRIMARY KEY, root TEXT NOT NULL,"
    " expire REAL NOT NULL, lock TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS lock_tokens_root ON lock_tokens (root)",
    "CREATE INDEX IF NOT EXISTS lock_tokens_expire ON lock_tokens (expire)",
)

#: Called with a lock that went (released, expired, removed); set by the app.
LockGone = Callable[[dict[str, Any]], None]


_LOCKS_AT = "SELECT token, lock, expire FROM lock_tokens WHERE root = ?"
_LOCKS_BELOW = (
    "SELECT token, lock, expire FROM lock_tokens WHERE root >= ? AND root < ? AND root != ?"
)


def _subtree(root: str) -> tuple[str, str]:
    """The range ``[low, high)`` of the lock roots strictly below ``root``."""
    base = root.rstrip("/")
    return base + "/", base + "0"  # "0" sorts right after "/"


class SqliteLockStorage(LockStorageDict):  # type: ignore[misc]
    """wsgidav's lock-storage interface over a SQLite table, shared by the processes that
    use the same file (:class:`~davstore.frontends.webdav.state.sqlite_locks.SqliteLockManager`
    makes their check-and-create atomic).

    Every call is a query on the table's indexes, so each sees what the other processes
    committed; only :meth:`holds_any` (asked by every small PUT) is remembered, until this
    process or another one (``<file>.changes``, :class:`~davstore.vfs.host_peers.HostPeers`)
    changes a lock. No lock lives longer than ``max_timeout`` seconds: a longer or
    ``Infinite`` timeout is granted as that, and locks already stored for longer (by an
    older version, or with a larger bound) are shortened to it when the file is opened.

    (Before this table, locks were a key-value table read whole into memory at every
    change: a LOCK cost grew with the number of locks. It is carried over once.)
    """

    def __init__(self, path: str, *, max_timeout: float = LockStorageDict.LOCK_TIME_OUT_MAX):
        super().__init__()
        self.path = path
        self.max_timeout = max_timeout
        #: Told of each lock that goes (an UNLOCK, an expiry found, a removal).
        self.on_gone: LockGone | None = None
        self._db: sqlite3.Connection | None = None
        self._peers: HostPeers | None = None
        self._db_lock = threading.RLock()
        self._any: bool | None = None

    def __repr__(self) -> str:
        return f"SqliteLockStorage({self.path!r})"

    def open(self) -> None:
        if self._db is not None:
            return
        db = connect_state_file(self.path, *_LOCK_SCHEMA)
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                _carry_over_old_locks(db)
                _shorten(db, self.max_timeout)
        except (sqlite3.Error, StateFull) as exc:
            db.close()
            raise OSError(f"cannot open the state file {self.path!r}: {exc}") from exc
        self._peers = HostPeers(pathlib.Path(self.path + ".changes"))
        self._db = db

    def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._peers is not None:
                self._peers.close()
                self._peers = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise OSError(f"the lock storage {self.path!r} is closed")
        return self._db

    def _changed(self) -> None:
        self._any = None
        if self._peers is not None:
            self._peers.announce()

    def cleanup(self) -> None:
        """Remove the expired locks (each told to :attr:`on_gone`)."""
        with self._db_lock:
            rows = self.db.execute(
                "SELECT token, lock, expire FROM lock_tokens WHERE expire < ?", (time.time(),)
            ).fetchall()
        for token, _, _ in rows:
            self._purge(token)

    def clear(self) -> None:
        with self._db_lock:
            self.db.execute("DELETE FROM lock_tokens")
            self._changed()

    def holds_any(self) -> bool:
        """Whether any lock is stored, expired ones too (no query while nothing changed)."""
        with self._db_lock:
            if self._peers is not None and self._peers.changed():
                self._any = None
            if self._any is None:
                row = self.db.execute("SELECT 1 FROM lock_tokens LIMIT 1").fetchone()
                self._any = row is not None
            return self._any

    def has_locks_within(self, root: str) -> bool:
        """Whether a lock (expired ones too) is rooted at ``root`` or below it."""
        if not self.holds_any():
            return False
        root = normalize_lock_root(root)
        low, high = _subtree(root)
        with self._db_lock:
            row = self.db.execute(
                "SELECT 1 FROM lock_tokens WHERE root = ? OR (root >= ? AND root < ?) LIMIT 1",
                (root, low, high),
            ).fetchone()
        return row is not None

    @staticmethod
    def _lock_of(text: str, expire: float) -> dict[str, Any]:
        lock: dict[str, Any] = _decode(text)
        lock["expire"] = expire
        return lock

    def get(self, token: str) -> dict[str, Any] | None:
        with self._db_lock:
            row = self.db.execute(
                "SELECT lock, expire FROM lock_tokens WHERE token = ?", (token,)
            ).fetchone()
        if row is None:
            return None
        if 0 <= row[1] < time.time():
            self._purge(token)
            return None
        return self._lock_of(row[0], row[1])

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        if lock.get("token") is not None or lock.get("expire") is not None:
            raise ValueError("create() takes a lock definition without token and expire")
        root = normalize_lock_root(path)
        lock["root"] = root
        timeout = lock.get("timeout")
        timeout = self.max_timeout if timeout is None else float(timeout)
        if timeout < 0 or timeout > self.max_timeout:
            timeout = self.max_timeout
        lock["timeout"] = timeout
        lock["expire"] = time.time() + timeout
        validate_lock(lock)
        lock["token"] = generate_lock_token()
        mark_created(root, lock)
        with self._db_lock:
            self.db.execute(
                "INSERT INTO lock_tokens (token, root, expire, lock) VALUES (?, ?, ?, ?)",
                (lock["token"], root, lock["expire"], _encode(lock)),
            )
            self._changed()
        return lock

    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]:
        if timeout < 0 or timeout > self.max_timeout:
            timeout = self.max_timeout
        with self._db_lock:
            row = self.db.execute(
                "SELECT lock, expire FROM lock_tokens WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no such lock: {token}")
            lock = self._lock_of(row[0], row[1])
            lock["timeout"] = timeout
            lock["expire"] = time.time() + timeout
            self.db.execute(
                "UPDATE lock_tokens SET expire = ?, lock = ? WHERE token = ?",
                (lock["expire"], _encode(lock), token),
            )
            self._changed()
        return lock

    def delete(self, token: str) -> bool:
        return self._purge(token)

    def _purge(self, token: str) -> bool:
        with self._db_lock:
            row = self.db.execute(
                "DELETE FROM lock_tokens WHERE token = ? RETURNING lock, expire", (token,)
            ).fetchone()
            if row is None:
                return False
            self._changed()
        if self.on_gone is not None:
            self.on_gone(self._lock_of(row[0], row[1]))
        return True

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        """The valid locks rooted at ``path`` and/or strictly below it (index look-ups;
        the expired ones found are removed)."""
        root = normalize_lock_root(path)
        if not (include_root or include_children) or not self.holds_any():
            return []
        low, high = _subtree(root)
        if include_root and include_children:
            query = _LOCKS_AT + " OR (root >= ? AND root < ?)"
            args: tuple[str, ...] = (root, low, high)
        elif include_root:
            query, args = _LOCKS_AT, (root,)
        else:
            query, args = _LOCKS_BELOW, (low, high, root)
        with self._db_lock:
            rows = self.db.execute(query, args).fetchall()
        now = time.time()
        found: list[Any] = []
        for token, text, expire in rows:
            if 0 <= expire < now:
                self._purge(token)
            else:
                found.append(token if token_only else self._lock_of(text, expire))
        return found


def _carry_over_old_locks(db: sqlite3.Connection) -> None:
    """Move the locks of the old key-value table ``locks`` into ``lock_tokens``."""
    old = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'locks'"
    ).fetchone()
    if old is None:
        return
    for key, value in db.execute("SELECT key, value FROM locks").fetchall():
        if key.startswith(_URL_KEY):
            continue
        lock = _decode(value)
        if not isinstance(lock, dict) or "root" not in lock or "expire" not in lock:
            continue
        db.execute(
            "INSERT OR REPLACE INTO lock_tokens (token, root, expire, lock) VALUES (?, ?, ?, ?)",
            (key, normalize_lock_root(lock["root"]), float(lock["expire"]), _encode(lock)),
        )
    db.execute("DROP TABLE locks")


def _shorten(db: sqlite3.Connection, max_timeout: float) -> None:
    """Locks that would live past ``max_timeout`` from now (or forever) end then."""
    now = time.time()
    latest = now + max_timeout
    rows = db.execute(
        "SELECT token, lock FROM lock_tokens WHERE expire < 0 OR expire > ?", (latest,)
    ).fetchall()
    for token, text in rows:
        lock = _decode(text)
        lock["timeout"] = max_timeout
        lock["expire"] = latest
        db.execute(
            "UPDATE lock_tokens SET expire = ?, lock = ? WHERE token = ?",
            (latest, _encode(lock), token),
        )


class SqlitePropertyManager:
    """Dead properties in SQLite, with the interface of wsgidav's ``PropertyManager``.

    Adds :meth:`remove_tree`, used when a folder is deleted, so a file created later at a
    deleted path does not inherit old properties. The set of URLs that have properties is
    kept in memory, so a PROPFIND over many members without properties costs no queries;
    it is read again when another process sharing the file announced a change (as the
    locks are, see :class:`_SqliteMapping`).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._db = connect_state_file(
            path,
            "CREATE TABLE IF NOT EXISTS properties ("
            " url TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
            " PRIMARY KEY (url, name))",
        )
        self._peers = None if path == ":memory:" else HostPeers(pathlib.Path(path + ".changes"))
        self._lock = threading.Lock()
        with self._lock:
            self._urls: set[str] = set()
            self._reload()

    def _reload(self) -> None:
        rows = self._db.execute("SELECT DISTINCT url FROM properties").fetchall()
        self._urls = {row[0] for row in rows}

    def _fresh(self) -> set[str]:
        """The URLs with properties, read again if another process sharing the file
        announced a change (lock held)."""
        if self._peers is not None and self._peers.changed():
            self._reload()
        return self._urls

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock for a change, and announce it once it is committed."""
        with self._lock:
            yield
            if self._peers is not None:
                self._peers.announce()

    def __repr__(self) -> str:
        return f"SqlitePropertyManager({self._path!r})"

    def _urls_within(self, url: str) -> list[str]:
        base = url.rstrip("/")
        rows = self._db.execute(
            "SELECT DISTINCT url FROM properties WHERE url = ? OR url = ? OR"
            " (url >= ? AND url < ?)",
            (url, base, base + "/", base + "0"),  # "0" sorts right after "/"
        )
        return [row[0] for row in rows if _is_within(row[0], url)]

    def _refresh(self, urls: list[str]) -> None:
        """Re-read whether each of ``urls`` still has properties (lock held)."""
        for url in urls:
            row = self._db.execute("SELECT 1 FROM properties WHERE url = ? LIMIT 1", (url,))
            if row.fetchone() is None:
                self._urls.discard(url)
            else:
                self._urls.add(url)

    def has_any(self) -> bool:
        """Whether any URL has dead properties."""
        with self._lock:
            return bool(self._fresh())

    def has_properties(self, norm_url: str) -> bool:
        """Whether ``norm_url`` has dead properties (the in-memory URL set)."""
        with self._lock:
            return norm_url in self._fresh()

    def get_properties(self, norm_url: str, environ: object = None) -> list[str]:
        with self._lock:
            if norm_url not in self._fresh():
                return []
            rows = self._db.execute("SELECT name FROM properties WHERE url = ?", (norm_url,))
            return [row[0] for row in rows]

    def get_property(self, norm_url: str, name: str, environ: object = None) -> bytes | None:
        with self._lock:
            if norm_url not in self._fresh():
                return None
            row = self._db.execute(
                "SELECT value FROM properties WHERE url = ? AND name = ?", (norm_url, name)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write_property(
        self,
        norm_url: str,
        name: str,
        property_value: bytes | str,
        dry_run: bool = False,
        environ: object = None,
    ) -> None:
        if dry_run:
            return
        value = property_value.encode() if isinstance(property_value, str) else property_value
        with self._changing():
            self._db.execute(
                "INSERT OR REPLACE INTO properties (url, name, value) VALUES (?, ?, ?)",
                (norm_url, name, value),
            )
            self._urls.add(norm_url)

    def remove_property(
        self, norm_url: str, name: str, dry_run: bool = False, environ: object = None
    ) -> None:
        if dry_run:
            return
        with self._changing():
            self._db.execute("DELETE FROM properties WHERE url = ? AND name = ?", (norm_url, name))

    def remove_properties(self, norm_url: str, environ: object = None) -> None:
        with self._changing():
            self._db.execute("DELETE FROM properties WHERE url = ?", (norm_url,))
            self._urls.discard(norm_url)

    def remove_tree(self, norm_url: str) -> None:
        """Remove the properties of ``norm_url`` and of everything below it."""
        with self._changing(), self._transaction():
            for url in self._urls_within(norm_url):
                self._db.execute("DELETE FROM properties WHERE url = ?", (url,))
                self._urls.discard(url)

    def copy_tree(self, src_url: str, dest_url: str) -> None:
        """:meth:`copy_properties` of ``src_url`` and of each URL below it that has any, to
        the same place below ``dest_url`` (a folder's COPY, made in one call)."""
        with self._lock:
            urls = self._urls_within(src_url)
        src_base, dest_base = src_url.rstrip("/"), dest_url.rstrip("/")
        for url in urls:
            target = dest_url if url == src_url else dest_base + url[len(src_base) :]
            self.copy_properties(url, target)

    def replace_tree(self, src_url: str, dest_url: str, keep: Collection[str] = ()) -> None:
        """The dead properties of ``dest_url`` and everything below it become those of
        ``src_url``'s tree, at the same places, but for the trees ``keep`` (URLs below
        ``dest_url``), which keep their own: a folder's COPY onto a folder, in one
        transaction."""
        src_base, dest_base = src_url.rstrip("/"), dest_url.rstrip("/")

        def kept(url: str) -> bool:
            return any(_is_within(url, k) for k in keep)

        with self._changing(), self._transaction():
            old = [url for url in self._urls_within(dest_url) if not kept(url)]
            for url in old:
                self._db.execute("DELETE FROM properties WHERE url = ?", (url,))
            new = []
            for url in self._urls_within(src_url):
                target = dest_url if url == src_url else dest_base + url[len(src_base) :]
                if kept(target):
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO properties (url, name, value)"
                    " SELECT ?, name, value FROM properties WHERE url = ?",
                    (target, url),
                )
                new.append(target)
            self._refresh(old + new)

    def copy_properties(self, src_url: str, dest_url: str, environ: object = None) -> None:
        with self._changing(), self._transaction():
            self._db.execute("DELETE FROM properties WHERE url = ?", (dest_url,))
            self._db.execute(
                "INSERT INTO properties (url, name, value)"
                " SELECT ?, name, value FROM properties WHERE url = ?",
                (dest_url, src_url),
            )
            self._refresh([dest_url])

    def move_properties(
        self, src_url: str, dest_url: str, with_children: bool, environ: object = None
    ) -> None:
        with self._changing(), self._transaction():
            urls = self._urls_within(src_url) if with_children else [src_url]
            src_base, dest_base = src_url.rstrip("/"), dest_url.rstrip("/")
            for url in urls:
                target = dest_url if url == src_url else dest_base + url[len(src_base) :]
                self._db.execute("DELETE FROM properties WHERE url = ?", (target,))
                self._db.execute("UPDATE properties SET url = ? WHERE url = ?", (target, url))
                self._refresh([url, target])

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._peers is not None:
                self._peers.close()

    def _transaction(self) -> sqlite3.Connection:
        # With isolation_level=None the connection autocommits; a `with` block on it
        # still commits or rolls back, so BEGIN makes the block one transaction.
        self._db.execute("BEGIN")
        return self._db
