"""Locks in a SQLite file, atomic across the processes that share it.

wsgidav's :class:`~wsgidav.lock_man.lock_manager.LockManager` checks for conflicts and
creates a lock under a mutex of one process, and counts the PUTs in progress (which a LOCK
must not overtake, CWE-367) in a dict of that process. Processes of one host that serve one
share from one state folder (gunicorn workers running ``with_davstore``, several
``davstore serve``) each have such a manager over the same ``locks.sqlite3``.
:class:`SqliteLockManager` runs those critical sections under an ``flock`` of a file beside
the database (``locks.sqlite3.mutex``) as well, and keeps the PUTs in progress in a table
of the database. A process's rows count while it lives: it refreshes their expiry every
:data:`WRITES_TTL` / 3 seconds while it writes, so the rows of one that died are ignored
after at most :data:`WRITES_TTL` seconds.

The small-PUT path (fast/put.py) holds the same file lock shared from its "no lock at all"
check to the end of its write (:func:`write_guard`), so no process grants a lock in
between. Each thread locks through a descriptor of its own (``flock`` locks belong to an
open file), so the threads of one process exclude each other as processes do.

(Replicas on several hosts keep their locks in Redis instead: redis_state.py.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from wsgidav.dav_error import HTTP_LOCKED, DAVError
from wsgidav.lock_man.lock_manager import LockManager, normalize_lock_root

from davstore.frontends.webdav.state.lock_manager import SubmittedTokens
from davstore.frontends.webdav.state.sqlite import SqliteLockStorage, connect_state_file
from davstore.store import cached_io

__all__ = [
    "WRITES_TTL",
    "FileMutex",
    "SqliteLockManager",
    "mutex_of",
    "write_guard",
]

#: Seconds the PUTs in progress of a process that stopped refreshing them still count.
WRITES_TTL = 30.0


class FileMutex:
    """A read-write lock across processes: ``flock`` on ``path`` (created if missing).

    Each thread locks through a descriptor of its own, kept while the thread lives: flock
    locks belong to an open file, so threads exclude each other as processes do, and a
    hold costs two system calls. A thread that holds it may hold it again (nothing
    changes); asking for it exclusive inside a shared hold is a bug and raises.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _descriptor(self) -> _Descriptor:
        held: _Descriptor | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = _Descriptor(
                os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            )
        return held

    @contextlib.contextmanager
    def hold(self, *, shared: bool) -> Iterator[None]:
        held = self._descriptor()
        if held.mode is not None:  # held by this thread already
            if held.mode == "shared" and not shared:
                raise RuntimeError(f"{self.path}: exclusive inside a shared hold")
            yield
            return
        op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        # A lock free to take is taken without releasing the GIL (it cannot wait);
        # only one held elsewhere is waited for the usual way.
        if not cached_io.flock_held(held.fd, op):
            fcntl.flock(held.fd, op)
        held.mode = "shared" if shared else "exclusive"
        try:
            yield
        finally:
            held.mode = None
            if not cached_io.flock_held(held.fd, fcntl.LOCK_UN):
                fcntl.flock(held.fd, fcntl.LOCK_UN)


class _Descriptor:
    """One thread's descriptor of a :class:`FileMutex` file, closed with the thread."""

    __slots__ = ("fd", "mode")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.mode: str | None = None

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def mutex_of(storage: SqliteLockStorage) -> FileMutex:
    return FileMutex(storage.path + ".mutex")


def write_guard(
    storage: SqliteLockStorage,
) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """The guard of the small-PUT path: the file lock, shared.

    Every lock is created under that file lock held exclusively
    (:meth:`SqliteLockManager.acquire`), and each thread holds it through a descriptor of
    its own, so a shared hold keeps this process's threads from creating a lock as it
    keeps other processes. The storage's own read-write lock is not taken as well: its
    condition variable, taken twice by every small PUT, made the PUT threads queue behind
    each other (a convoy, benchmarks/README.md)."""
    mutex = mutex_of(storage)

    def guard() -> contextlib.AbstractContextManager[None]:
        return mutex.hold(shared=True)

    return guard


class _SqliteWrites:
    """The PUTs in progress of every process, as the mapping wsgidav reads (get, items)."""

    def __init__(self, path: str, owner: str) -> None:
        self.owner = owner
        self._db = connect_state_file(
            path,
            "CREATE TABLE IF NOT EXISTS writes (owner TEXT NOT NULL, url TEXT NOT NULL,"
            " count INTEGER NOT NULL, PRIMARY KEY (owner, url))",
            "CREATE TABLE IF NOT EXISTS writers (owner TEXT PRIMARY KEY, expires REAL)",
        )
        self._lock = threading.Lock()
        self._local = 0

    def _live(self, url: str | None = None) -> dict[str, int]:
        query = (
            "SELECT w.url, SUM(w.count) FROM writes w JOIN writers o ON o.owner = w.owner"
            " WHERE o.expires > ?"
        )
        args: tuple[Any, ...] = (time.time(),)
        if url is not None:
            query += " AND w.url = ?"
            args += (url,)
        with self._lock:
            rows = self._db.execute(query + " GROUP BY w.url", args).fetchall()
        return {row[0]: int(row[1]) for row in rows if row[1] > 0}

    def get(self, url: str, default: int = 0) -> int:
        return self._live(url).get(url, default)

    def items(self) -> list[tuple[str, int]]:
        return list(self._live().items())

    def begin(self, url: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO writes (owner, url, count) VALUES (?, ?, 1)"
                " ON CONFLICT (owner, url) DO UPDATE SET count = count + 1",
                (self.owner, url),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO writers (owner, expires) VALUES (?, ?)",
                (self.owner, time.time() + WRITES_TTL),
            )
            self._local += 1

    def end(self, url: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE writes SET count = count - 1 WHERE owner = ? AND url = ?",
                (self.owner, url),
            )
            self._db.execute("DELETE FROM writes WHERE count <= 0")
            self._local -= 1
            if self._local <= 0:
                self._db.execute("DELETE FROM writers WHERE owner = ?", (self.owner,))

    def refresh(self) -> None:
        """Keep this process's PUTs in progress alive; forget those of dead processes.
        (Writes nothing when there is nothing to do: an idle server stays idle.)"""
        now = time.time()
        with self._lock:
            if self._local > 0:
                self._db.execute(
                    "UPDATE writers SET expires = ? WHERE owner = ?",
                    (now + WRITES_TTL, self.owner),
                )
            expired = "SELECT 1 FROM writers WHERE expires <= ? LIMIT 1"
            if self._db.execute(expired, (now,)).fetchone() is not None:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(
                        "DELETE FROM writes WHERE owner IN"
                        " (SELECT owner FROM writers WHERE expires <= ?)",
                        (now,),
                    )
                    self._db.execute("DELETE FROM writers WHERE expires <= ?", (now,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqliteLockManager(SubmittedTokens, LockManager):  # type: ignore[misc]
    """wsgidav's LockManager whose check-and-create and PUTs in progress hold across the
    processes sharing ``storage``'s file."""

    def __init__(self, storage: SqliteLockStorage) -> None:
        super().__init__(storage)
        self.mutex = mutex_of(storage)
        self._writes = _SqliteWrites(storage.path, uuid.uuid4().hex)
        self._active_writes = self._writes
        self._stop = threading.Event()
        self._refresher = threading.Thread(
            target=self._refresh_writes, name="davstore-lock-writes", daemon=True
        )
        self._refresher.start()

    def __del__(self) -> None:
        """The app closes the storage (wsgidav's manager closes it when collected)."""

    def close(self) -> None:
        """Stop the refresher, close the table of writes and the storage."""
        self._stop.set()
        self._refresher.join(5)
        self._writes.close()
        self.storage.close()

    def _refresh_writes(self) -> None:
        """Keep this process's PUTs in progress alive, and remove the expired locks (so
        the empty file of a LOCK that was never written goes, locked_empty.py)."""
        while not self._stop.wait(WRITES_TTL / 3):
            with contextlib.suppress(Exception):  # a busy database: the next round
                self._writes.refresh()
            with contextlib.suppress(Exception), self.mutex.hold(shared=False):
                self.storage.cleanup()

    def acquire(self, **kwargs: Any) -> dict[str, Any]:
        with self.mutex.hold(shared=False):
            lock: dict[str, Any] = super().acquire(**kwargs)
        return lock

    def remove_all_locks_from_url(self, url: str, *, recursive: bool = False) -> None:
        with self.mutex.hold(shared=False):
            super().remove_all_locks_from_url(url, recursive=recursive)

    def _begin_write_transaction(
        self, *, url: str, token_list: list[str], principal: str, depth: str = "0"
    ) -> None:
        url = normalize_lock_root(url)
        with self.mutex.hold(shared=False):
            self._lock.acquire_write()
            try:
                errcond = self._get_write_conflicts(url, depth, token_list, principal)
                if len(errcond.hrefs) > 0:
                    raise DAVError(HTTP_LOCKED, err_condition=errcond)
                self._writes.begin(url)
            finally:
                self._lock.release()

    def _end_write_transaction(self, url: str) -> None:
        self._writes.end(normalize_lock_root(url))
