"""One change journal per share: every change, whoever made it, as one numbered record.

People change a share through a VFS (WebDAV, FUSE, the admin): each
:class:`~davstore.vfs.events.Change` becomes a :class:`Record`. The site changes it through
its own Storage (``default_storage.save``): :mod:`davstore.site.announce` makes the same
record with origin ``"site"``. Every process serving the share follows the journal and
forgets the cached metadata of exactly the paths the records name, at once, instead of
after the cache TTL.

On one host the journal is a SQLite file in the share's state folder (:data:`FILE_NAME`,
beside the lock state): append-only, numbered by an ``AUTOINCREMENT`` key that never goes
back, bounded to the newest :data:`RETENTION` records, kept across restarts. Appending
announces the change through the host-peers file (:mod:`davstore.vfs.host_peers`), so a reader
looks at the journal only when something was appended: a cache lookup stays one 512-byte
comparison. Each reader keeps its own cursor (the last number it applied); a reader whose
cursor fell behind the oldest kept record has missed changes, and forgets its whole cache
instead.

The journal knows nothing of WebDAV, FUSE or Django: it works on a VFS and a file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from davstore.errors import ChangesLost, StoreError
from davstore.vfs import VFS
from davstore.vfs.events import Change

__all__ = [
    "FILE_NAME",
    "RETENTION",
    "Journal",
    "JournalFeed",
    "JournalReader",
    "Record",
    "follow",
    "forget",
    "open_journal",
    "writer_id",
]

logger = logging.getLogger(__name__)

#: The journal's file, in the share's state folder.
FILE_NAME = "journal.sqlite"
#: How many of the newest records are kept.
RETENTION = 10_000
#: Appends between two trims of what is beyond the retention.
_TRIM_EVERY = 100

_WRITER = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def writer_id() -> str:
    """This process's name (``host-pid-random``); each VFS following a journal writes
    under a name of its own made from it."""
    return _WRITER


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One change in the journal. ``seq`` is 0 until the journal numbers it."""

    action: str
    path: str
    origin: str | None = None
    user: str | None = None
    target: str | None = None
    is_dir: bool = False
    at: float = 0.0
    writer: str = ""
    seq: int = 0

    @classmethod
    def of(cls, change: Change, writer: str) -> Record:
        """The record of a change made through the VFS called ``writer``."""
        actor = change.actor
        return cls(
            action=change.action.value,
            path=change.path,
            origin=actor.origin if actor is not None else None,
            user=actor.user if actor is not None else None,
            target=change.target,
            is_dir=change.is_dir,
            at=time.time(),
            writer=writer,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    path TEXT NOT NULL,
    target TEXT,
    is_dir INTEGER NOT NULL,
    origin TEXT,
    user TEXT,
    writer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


class Journal:
    """The journal file at ``path`` (created if missing), shared by the processes of a host.

    Safe to use from many threads. Raises ``sqlite3.Error`` (an OSError is not raised
    here: the file's folder must exist) when the file cannot be opened.
    """

    def __init__(self, path: Path, *, retention: int = RETENTION) -> None:
        self.path = path
        self.retention = retention
        self._lock = threading.Lock()
        try:  # the state folder's files are the owner's alone
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot open {path}: {exc.strerror}") from exc
        self._db = sqlite3.connect(
            str(path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # The journal's identity, made once with the file (the first process wins).
        self._db.execute(
            "INSERT OR IGNORE INTO about (key, value) VALUES ('id', ?)", (uuid.uuid4().hex,)
        )
        self.ident = str(self._db.execute("SELECT value FROM about WHERE key='id'").fetchone()[0])
        self._appended = 0

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def append(self, record: Record) -> int:
        """Add ``record``; returns its number. Trims what is beyond the retention now and
        then (in the same transaction: the file never holds more than the retention plus
        :data:`_TRIM_EVERY` records)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO changes (at, action, path, target, is_dir, origin, user, writer)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.at or time.time(),
                    record.action,
                    record.path,
                    record.target,
                    int(record.is_dir),
                    record.origin,
                    record.user,
                    record.writer or _WRITER,
                ),
            )
            seq = int(cursor.lastrowid or 0)
            self._appended += 1
            if self._appended % _TRIM_EVERY == 0:
                self._db.execute("DELETE FROM changes WHERE seq <= ?", (seq - self.retention,))
            return seq

    def last(self) -> int:
        """The number of the newest record (0 for a journal that never held one)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'")
            found = row.fetchone()
        return int(found[0]) if found else 0

    def since(self, cursor: int, limit: int = 1000) -> tuple[list[Record], bool]:
        """The records after number ``cursor`` (the oldest first, at most ``limit``), and
        whether some after it are gone (trimmed): the reader then missed changes."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, action, path, target, is_dir, origin, user, writer"
                " FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (cursor, limit),
            ).fetchall()
        records = [
            Record(
                seq=seq,
                at=at,
                action=action,
                path=path,
                target=target,
                is_dir=bool(is_dir),
                origin=origin,
                user=user,
                writer=writer,
            )
            for seq, at, action, path, target, is_dir, origin, user, writer in rows
        ]
        lost = bool(records) and records[0].seq > cursor + 1
        if not records and cursor < self.last():
            lost = True  # newer records existed and are all trimmed
        return records, lost

    def close(self) -> None:
        with self._lock:
            self._db.close()


class JournalFeed:
    """A :class:`Journal` as sync clients read it (:class:`davstore.vfs.sync.ChangeFeed`):
    cursors are record numbers. Raises StoreError when the file cannot be read."""

    spans_hosts = False

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def __repr__(self) -> str:
        return f"JournalFeed({self.journal!r})"

    def ident(self) -> str:
        return self.journal.ident

    def cursor(self) -> str:
        try:
            return str(self.journal.last())
        except sqlite3.Error as exc:
            raise StoreError("", f"cannot read the change journal: {exc}") from exc

    def after(self, cursor: str, until: str) -> Iterator[tuple[str, Record]]:
        if not cursor.isdigit() or not until.isdigit() or int(cursor) > int(until):
            raise ChangesLost("", f"not a position in this change journal: {cursor!r}")
        seq, end = int(cursor), int(until)
        while seq < end:
            try:
                records, lost = self.journal.since(seq, limit=min(1000, end - seq))
            except sqlite3.Error as exc:
                raise StoreError("", f"cannot read the change journal: {exc}") from exc
            if lost:
                raise ChangesLost("", "changes after this position are past the retention")
            if not records:
                return
            for record in records:
                yield str(record.seq), record
            seq = records[-1].seq


def forget(vfs: VFS, record: Record) -> None:
    """Forget what ``vfs`` caches of the paths ``record`` names (a folder: all it holds)
    and of the folders above them: a save may have made them (a Storage makes the folders
    of a name), a delete may have removed them (an object store's folders are prefixes)."""
    for path in (record.path, record.target):
        if path:
            if record.is_dir:
                vfs.invalidate(path)
            else:
                vfs.cache.invalidate(path)
            folder = path
            while "/" in folder:
                folder = folder.rsplit("/", 1)[0]
                vfs.cache.invalidate(folder)


class JournalReader:
    """One reader's cursor on a :class:`Journal`, applying new records to ``vfs``.

    Starts at the journal's end (what came before is not its business: its cache is
    empty). :meth:`catch_up` applies what was appended since and answers True when the
    whole cache must be forgotten (records were trimmed before this reader saw them, or
    the journal cannot be read). Records written under :attr:`writer` (this VFS's own
    changes) are skipped: the VFS already knows.
    """

    def __init__(self, journal: Journal, vfs: VFS) -> None:
        self.journal = journal
        self.vfs = vfs
        self.writer = f"{_WRITER}-{uuid.uuid4().hex[:6]}"
        self.cursor = journal.last()
        self.applied = 0  # records of other processes applied (tests read it)
        self._lock = threading.Lock()

    def catch_up(self) -> bool:
        with self._lock:
            try:
                while True:
                    records, lost = self.journal.since(self.cursor)
                    if lost:
                        logger.info(
                            "fell behind the change journal: forgetting all cached metadata"
                        )
                        if records:
                            self.cursor = records[-1].seq
                        else:
                            self.cursor = self.journal.last()
                        return True
                    if not records:
                        return False
                    for record in records:
                        if record.writer != self.writer:
                            forget(self.vfs, record)
                            self.applied += 1
                    self.cursor = records[-1].seq
            except sqlite3.Error as exc:
                logger.warning(
                    "cannot read the change journal (%s): forgetting all cached metadata", exc
                )
                return True


def follow(
    vfs: VFS, journal: Journal, changed: Callable[[], bool], announce: Callable[[], None]
) -> JournalReader:
    """Record every change ``vfs`` makes in ``journal`` (then ``announce`` it), and make
    the VFS catch up on the journal before a cache lookup whenever ``changed()`` says
    another process appended something (its ``coherence``)."""
    reader = JournalReader(journal, vfs)

    def record(change: Change) -> None:
        try:
            journal.append(Record.of(change, reader.writer))
        except sqlite3.Error as exc:
            logger.warning(
                "cannot record %s %s in the journal: %s", change.action.value, change.path, exc
            )
        announce()

    def coherence() -> bool:
        return changed() and reader.catch_up()

    vfs.subscribe(record)
    vfs.coherence = coherence
    from davstore.vfs.sync import offer

    offer(vfs, JournalFeed(journal))
    return reader


def open_journal(state_dir: Path) -> Journal | None:
    """The journal in ``state_dir`` (which must exist), or None (logged) when it cannot be
    used: the processes then forget their whole cache on each change of another one."""
    try:
        return Journal(state_dir / FILE_NAME)
    except sqlite3.Error as exc:
        logger.warning("no change journal in %s: %s", state_dir, exc)
        return None
