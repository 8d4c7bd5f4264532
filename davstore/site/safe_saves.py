"""The editors' safe saves under way on a share, seen by every process of the host.

The guard (:mod:`davstore.site.guard`) remembers a move of a referenced file to a backup
name for a while, so that new content at the original name brings the rows back. The steps
of one save may reach different processes (``serve --workers N``, a mount and a server of
the same share), so the memory is kept in the share's state folder, as its other state:
a SQLite file (:data:`DB_NAME`), and a small shared file (:data:`CHANGES_FILE`,
:class:`~davstore.vfs.host_peers.HostPeers` slots) through which a process that changed it
tells the others. Each process keeps a copy in memory and reads the table again only when
another process announced a change: the question asked before every guarded change ("is a
safe save of this name under way?") is a comparison of 512 bytes and a dictionary lookup.

Without a state folder, or when its files cannot be used (logged), the memory is the
process's own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from davstore.vfs.host_peers import HostPeers

__all__ = ["CHANGES_FILE", "DB_NAME", "SafeSaves"]

logger = logging.getLogger(__name__)

#: The table of safe saves under way, in the share's state folder.
DB_NAME = "safe-saves.sqlite3"
#: The file through which processes announce a change of that table.
CHANGES_FILE = "safe-saves.bin"
#: Safe saves remembered at most (the oldest are forgotten first).
KEPT = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS saves (
    original TEXT PRIMARY KEY,
    backup TEXT NOT NULL,
    until REAL NOT NULL
)
"""


class SafeSaves:
    """Safe saves under way: original name -> backup name, each for ``window`` seconds of
    ``clock`` (host-wide: ``time.monotonic`` is the same clock in every process of a host;
    a time further ahead than ``window``, from before the host started again, is ignored).

    :param state_dir: the share's state folder (created if missing); None: this process only.
    """

    def __init__(self, state_dir: Path | None, clock: Callable[[], float], window: float) -> None:
        self._clock = clock
        self.window = window
        self._lock = threading.Lock()
        #: The table as last read, with this process's changes since.
        self._saves: dict[str, tuple[str, float]] = {}
        self._db: sqlite3.Connection | None = None
        self._peers: HostPeers | None = None
        if state_dir is not None:
            self._open(state_dir)

    def _open(self, state_dir: Path) -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            peers = HostPeers(state_dir / CHANGES_FILE)
        except OSError as exc:
            logger.warning(
                "safe saves are remembered by this process only: cannot use %s: %s",
                state_dir / CHANGES_FILE,
                exc.strerror or exc,
            )
            return
        try:
            db = sqlite3.connect(
                state_dir / DB_NAME, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            peers.close()
            logger.warning(
                "safe saves are remembered by this process only: cannot use %s: %s",
                state_dir / DB_NAME,
                exc,
            )
            return
        self._db, self._peers = db, peers
        self._read()

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
            peers, self._peers = self._peers, None
        if db is not None:
            db.close()
        if peers is not None:
            peers.close()

    def remember(self, original: str, backup: str) -> None:
        """A move of ``original`` to ``backup`` that new content at ``original`` within
        the window undoes for the rows."""
        now = self._clock()
        until = now + self.window
        with self._lock:
            self._saves.pop(original, None)
            self._saves[original] = (backup, until)
            while len(self._saves) > KEPT:
                del self._saves[next(iter(self._saves))]
            self._write(
                ("DELETE FROM saves WHERE until < ? OR until > ?", (now, until)),
                ("INSERT OR REPLACE INTO saves VALUES (?, ?, ?)", (original, backup, until)),
            )

    def backup_of(self, original: str) -> str | None:
        """The backup name of a safe save of ``original`` under way, or None."""
        peers = self._peers
        if peers is not None and peers.changed():
            with self._lock:
                self._read()
        if not self._saves:
            return None
        with self._lock:
            kept = self._saves.get(original)
            if kept is None:
                return None
            now = self._clock()
            if not now <= kept[1] <= now + self.window:
                del self._saves[original]
                return None
            return kept[0]

    def forget(self, original: str) -> None:
        with self._lock:
            self._saves.pop(original, None)
            self._write(("DELETE FROM saves WHERE original = ?", (original,)))

    def _read(self) -> None:
        """Read the table again (with the lock held, or before any other thread has it)."""
        if self._db is None:
            return
        now = self._clock()
        try:
            rows = self._db.execute(
                "SELECT original, backup, until FROM saves WHERE until BETWEEN ? AND ?"
                " ORDER BY until",
                (now, now + self.window),
            ).fetchall()
        except sqlite3.Error as exc:
            logger.warning("cannot read the safe saves of other processes: %s", exc)
            return
        self._saves = {original: (backup, until) for original, backup, until in rows[-KEPT:]}

    def _write(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        """Make the change in the table (with the lock held) and announce it."""
        if self._db is None or self._peers is None:
            return
        try:
            with self._db:  # one transaction
                self._db.execute("BEGIN IMMEDIATE")
                for sql, args in statements:
                    self._db.execute(sql, args)
        except sqlite3.Error as exc:
            logger.warning("other processes will not see this safe save: %s", exc)
            return
        self._peers.announce()
