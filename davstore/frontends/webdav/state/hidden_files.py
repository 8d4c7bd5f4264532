"""Where the ``hide`` policy of macmeta.py keeps macOS metadata files (``._*``, ``.DS_Store``).

:class:`SqliteHiddenFiles` (the default) keeps them in ``macmeta.sqlite3`` in the state
folder: every process of the host serving the share (``davstore serve --workers``, gunicorn
workers, several ``davstore serve``) reads and writes the same rows, so Finder finds the
``._name`` it wrote through one worker when its next connection reaches another, and the
files survive a restart. Each call is one SQLite statement or one ``BEGIN IMMEDIATE``
transaction: a put weighs the budget and writes in one step, and a folder moved through
one process takes its hidden files along for all.

:class:`MemoryHiddenFiles` keeps them in this process's memory: for shares whose state is
``memory:`` (tests, throw-away shares), where nothing should outlive the process.

Both are bounded by ``budget`` bytes in all; a put that would exceed it changes nothing.
Keys are canonical share paths (:func:`davstore.vfs.paths.normalize`).
"""

from __future__ import annotations

import abc
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple

from davstore.frontends.webdav.state.sqlite import connect_state_file
from davstore.vfs.paths import is_within

__all__ = [
    "HIDDEN_FILES_FILE",
    "CopyResult",
    "HiddenFile",
    "HiddenFiles",
    "MemoryHiddenFiles",
    "SqliteHiddenFiles",
    "open_hidden_files",
]

HIDDEN_FILES_FILE = "macmeta.sqlite3"

#: What :meth:`HiddenFiles.copy` did: no source; the target exists and may not be
#: overwritten (nothing changed); a new target; a replaced one.
CopyResult = Literal["missing", "refused", "created", "replaced"]


class HiddenFile(NamedTuple):
    data: bytes
    mtime: float


class HiddenFiles(abc.ABC):
    """The hidden files of one share, by canonical path."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    @abc.abstractmethod
    def get(self, key: str) -> HiddenFile | None:
        """The file at ``key``, None when there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored (without reading its bytes)."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> bool:
        """Store ``data`` at ``key``; False (nothing changed) when the budget would be
        exceeded."""

    @abc.abstractmethod
    def touch(self, key: str) -> None:
        """An empty file at ``key`` unless one exists (a LOCK of a new name)."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it existed."""

    @abc.abstractmethod
    def copy(self, source: str, target: str, *, move: bool, overwrite: bool) -> CopyResult:
        """Copy (``move``: move) one file, in one step."""

    @abc.abstractmethod
    def carry(self, source: str, target: str | None) -> None:
        """The files below folder ``source`` follow it: to ``target`` (a move), or are
        removed (``target`` None: a delete)."""

    @abc.abstractmethod
    def copy_tree(self, source: str, target: str) -> None:
        """The files below folder ``source`` are copied below ``target``."""

    @abc.abstractmethod
    def used(self) -> int:
        """Bytes held."""

    @abc.abstractmethod
    def names(self) -> list[str]:
        """The keys held, sorted."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the store holds open."""


def _below(names: list[str], folder: str) -> list[str]:
    """The names below ``folder``, sorted: both stores walk them in one order."""
    return sorted(n for n in names if is_within(n, folder) and n != folder)


class MemoryHiddenFiles(HiddenFiles):
    """Hidden files in this process's memory (lost when it ends)."""

    def __init__(self, budget: int) -> None:
        super().__init__(budget)
        self._files: dict[str, HiddenFile] = {}
        self._used = 0  # the sum of the sizes, kept by _set and _pop
        self._lock = threading.Lock()

    def _set(self, key: str, file: HiddenFile) -> None:
        old = self._files.get(key)
        self._used += len(file.data) - (len(old.data) if old else 0)
        self._files[key] = file

    def _pop(self, key: str) -> HiddenFile | None:
        old = self._files.pop(key, None)
        if old is not None:
            self._used -= len(old.data)
        return old

    def get(self, key: str) -> HiddenFile | None:
        with self._lock:
            return self._files.get(key)

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._files

    def put(self, key: str, data: bytes) -> bool:
        with self._lock:
            old = self._files.get(key)
            if self._used - (len(old.data) if old else 0) + len(data) > self.budget:
                return False
            self._set(key, HiddenFile(data, time.time()))
            return True

    def touch(self, key: str) -> None:
        with self._lock:
            if key not in self._files:
                self._set(key, HiddenFile(b"", time.time()))

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._pop(key) is not None

    def copy(self, source: str, target: str, *, move: bool, overwrite: bool) -> CopyResult:
        with self._lock:
            found = self._files.get(source)
            if found is None:
                return "missing"
            existed = target in self._files
            if existed and not overwrite:
                return "refused"
            self._set(target, HiddenFile(found.data, time.time()))
            if move and target != source:
                self._pop(source)
            return "replaced" if existed else "created"

    def carry(self, source: str, target: str | None) -> None:
        with self._lock:
            for name in _below(list(self._files), source):
                found = self._pop(name)
                if target is not None and found is not None:
                    self._set(target + name[len(source) :], found)

    def copy_tree(self, source: str, target: str) -> None:
        with self._lock:
            for name in _below(list(self._files), source):
                self._set(target + name[len(source) :], self._files[name])

    def used(self) -> int:
        with self._lock:
            return self._used

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def close(self) -> None:
        """Nothing is held open (the files go with the object)."""


class SqliteHiddenFiles(HiddenFiles):
    """Hidden files in a SQLite file, shared by the processes that open it."""

    def __init__(self, path: str, budget: int) -> None:
        super().__init__(budget)
        self._db = connect_state_file(
            path,
            "CREATE TABLE IF NOT EXISTS hidden"
            " (path TEXT PRIMARY KEY, data BLOB NOT NULL, mtime REAL NOT NULL)",
        )
        self._lock = threading.Lock()  # one connection: one statement or transaction at a time

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed at the end (rolled back on an
        error), as sqlite_locks.py writes its marks."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db

    def get(self, key: str) -> HiddenFile | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data, mtime FROM hidden WHERE path = ?", (key,)
            ).fetchone()
        return None if row is None else HiddenFile(bytes(row[0]), row[1])

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._has(self._db, key)

    @staticmethod
    def _has(db: sqlite3.Connection, key: str) -> bool:
        return db.execute("SELECT 1 FROM hidden WHERE path = ?", (key,)).fetchone() is not None

    def put(self, key: str, data: bytes) -> bool:
        with self._transaction() as db:
            (used,) = db.execute(
                "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM hidden WHERE path <> ?", (key,)
            ).fetchone()
            if used + len(data) > self.budget:
                return False
            db.execute(
                "INSERT OR REPLACE INTO hidden (path, data, mtime) VALUES (?, ?, ?)",
                (key, data, time.time()),
            )
            return True

    def touch(self, key: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO hidden (path, data, mtime) VALUES (?, ?, ?)",
                (key, b"", time.time()),
            )

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM hidden WHERE path = ?", (key,)).rowcount > 0

    def copy(self, source: str, target: str, *, move: bool, overwrite: bool) -> CopyResult:
        with self._transaction() as db:
            if not self._has(db, source):
                return "missing"
            existed = self._has(db, target)
            if existed and not overwrite:
                return "refused"
            db.execute(
                "INSERT OR REPLACE INTO hidden (path, data, mtime)"
                " SELECT ?, data, ? FROM hidden WHERE path = ?",
                (target, time.time(), source),
            )
            if move and target != source:
                db.execute("DELETE FROM hidden WHERE path = ?", (source,))
            return "replaced" if existed else "created"

    def carry(self, source: str, target: str | None) -> None:
        with self._transaction() as db:
            for name in _below(self._all_names(db), source):
                if target is None:
                    db.execute("DELETE FROM hidden WHERE path = ?", (name,))
                else:
                    db.execute(
                        "UPDATE OR REPLACE hidden SET path = ? WHERE path = ?",
                        (target + name[len(source) :], name),
                    )

    def copy_tree(self, source: str, target: str) -> None:
        with self._transaction() as db:
            for name in _below(self._all_names(db), source):
                db.execute(
                    "INSERT OR REPLACE INTO hidden (path, data, mtime)"
                    " SELECT ?, data, mtime FROM hidden WHERE path = ?",
                    (target + name[len(source) :], name),
                )

    @staticmethod
    def _all_names(db: sqlite3.Connection) -> list[str]:
        return [row[0] for row in db.execute("SELECT path FROM hidden")]

    def used(self) -> int:
        with self._lock:
            (used,) = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM hidden"
            ).fetchone()
        return int(used)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._all_names(self._db))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_hidden_files(
    property_storage: str | None, state_dir: pathlib.Path, budget: int
) -> HiddenFiles:
    """The hidden files of a share: in memory when its properties are (``memory:``), else in
    :data:`HIDDEN_FILES_FILE` in ``state_dir``. Raises OSError when that file cannot be
    opened."""
    if property_storage in ("memory:", "memory://"):
        return MemoryHiddenFiles(budget)
    return SqliteHiddenFiles(str(state_dir / HIDDEN_FILES_FILE), budget)
