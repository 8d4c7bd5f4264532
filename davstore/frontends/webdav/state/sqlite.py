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
from collections.abc import Iterator, MutableMapping
from typing import Any

from wsgidav.lock_man.lock_storage import LockStorageDict

from davstore.vfs.host_peers import HostPeers

__all__ = [
    "LOCKS_FILE",
    "PROPERTIES_FILE",
    "SETUP_PATIENCE",
    "SqliteLockStorage",
    "SqlitePropertyManager",
    "connect_state_file",
]

logger = logging.getLogger(__name__)

LOCKS_FILE = "locks.sqlite3"
PROPERTIES_FILE = "properties.sqlite3"


#: Seconds a process waits for another one to finish setting up a new state file.
SETUP_PATIENCE = 30.0


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
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise OSError(f"cannot open the state file {path!r}: {exc}") from exc

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
        except sqlite3.Error as exc:
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


class _SqliteMapping(MutableMapping[str, Any]):
    """The ``locks`` table as a ``str -> JSON value (bytes too)`` mapping for wsgidav.

    Reads are served from an in-memory mirror (a PROPFIND asks for the locks of every
    member); every change is written through at once. Several processes may share the
    file (gunicorn workers, ``davstore serve`` processes of one share): each announces its
    committed changes in ``<file>.changes`` (:class:`~davstore.vfs.host_peers.HostPeers`: a
    shared memory page, no system call to look), and a read first reads the table again
    when another process announced one. :meth:`batch` makes several changes one
    transaction, announced once committed, so other processes never see half of a lock.
    """

    def __init__(self, path: str) -> None:
        self._db = connect_state_file(
            path, "CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        self._peers = HostPeers(pathlib.Path(path + ".changes"))
        self._lock = threading.RLock()
        self._batching = False
        with self._lock:
            self._mirror: dict[str, Any] = {}
            self._reload()

    def _reload(self) -> None:
        rows = self._db.execute("SELECT key, value FROM locks").fetchall()
        self._mirror = {key: _decode(value) for key, value in rows}

    def _fresh(self) -> dict[str, Any]:
        """The mirror, read again if another process announced a change (lock held)."""
        if self._peers.changed():
            self._reload()
        return self._mirror

    def _changed(self) -> None:
        """Announce a committed change (inside :meth:`batch`: at its commit)."""
        if not self._batching:
            self._peers.announce()

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._fresh()[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._fresh()

    def __setitem__(self, key: str, value: Any) -> None:
        encoded = _encode(value)
        with self._lock:
            self._fresh()
            self._db.execute(
                "INSERT OR REPLACE INTO locks (key, value) VALUES (?, ?)", (key, encoded)
            )
            self._mirror[key] = _decode(encoded)
            self._changed()

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._fresh()[key]
            self._db.execute("DELETE FROM locks WHERE key = ?", (key,))
            self._changed()

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._fresh()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._fresh())

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM locks")
            self._mirror.clear()
            self._changed()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the changes inside one transaction (other processes wait for it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._batching = True
            try:
                self._reload()  # the table as this transaction sees it
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload()
                raise
            finally:
                self._batching = False
            self._db.execute("COMMIT")
            self._peers.announce()

    def sync(self) -> None:
        """Every change is committed at once; kept for wsgidav's shelve-style callers."""

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._peers.close()


class SqliteLockStorage(LockStorageDict):  # type: ignore[misc]
    """wsgidav's lock storage logic over a SQLite table, shared by the processes that use
    the same file (:class:`~davstore.frontends.webdav.state.sqlite_locks.SqliteLockManager` makes
    their check-and-create atomic).

    A change of several keys (a lock and its root's index) is one transaction: the
    storage's own lock is taken first (its writer may take it again), then the table's.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._dict: _SqliteMapping | None = None

    def __repr__(self) -> str:
        return f"SqliteLockStorage({self.path!r})"

    def open(self) -> None:
        if self._dict is None:
            self._dict = _SqliteMapping(self.path)

    def close(self) -> None:
        self._lock.acquire_write()
        try:
            if self._dict is not None:
                self._dict.close()
                self._dict = None
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        self._lock.acquire_write()
        try:
            assert self._dict is not None
            with self._dict.batch():
                yield
        finally:
            self._lock.release()

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        with self._batch():
            return super().create(path, lock)  # type: ignore[no-any-return]

    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]:
        with self._batch():
            return super().refresh(token, timeout=timeout)  # type: ignore[no-any-return]

    def delete(self, token: str) -> bool:
        with self._batch():
            return super().delete(token)  # type: ignore[no-any-return]


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
