"""The activity log: one persisted record per change a person made through a VFS.

:func:`attach` subscribes an :class:`ActivityLog` to a VFS's change events
(:mod:`davstore.vfs.events`): each change becomes one JSON line in ``activity.jsonl`` in
the share's state folder: when, who, origin, action, path (and target), size where the
VFS knows it, and the trash entry where the change made one (:mod:`davstore.vfs.trash`).
The file is bounded: past ``max_bytes`` it becomes ``activity.jsonl.1`` (the one before
goes) and a new one starts. ``davstore activity`` reads both, oldest first.

One host's processes share the state folder and so the log (each line one ``write`` of
an ``O_APPEND`` file). Replicas on several hosts sharing Redis also append each record to
the stream ``<prefix>activity`` (capped near :data:`STREAM_LENGTH` records), and a log
given that ``stream`` reads it instead of the file: every host's changes, in order. The
file stays the host's own copy (what ``davstore activity`` without Redis reads).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from davstore.vfs.events import Change

if TYPE_CHECKING:
    from davstore.vfs.core import VFS

__all__ = ["ACTIVITY_FILE", "STREAM_LENGTH", "ActivityLog", "attach"]

logger = logging.getLogger("davstore.activity")

ACTIVITY_FILE = "activity.jsonl"
#: Records the Redis stream keeps (about; ``XADD MAXLEN ~``).
STREAM_LENGTH = 200_000


class ActivityLog:
    """The activity of one share, in ``folder`` (its state folder) and, for replicas
    sharing Redis, in ``stream``: a ``(redis client, key)`` pair."""

    def __init__(
        self, folder: Path, *, max_bytes: int = 16 << 20, stream: tuple[Any, str] | None = None
    ) -> None:
        self.path = folder / ACTIVITY_FILE
        self.max_bytes = max_bytes
        self.stream = stream
        self._lock = threading.Lock()
        self._stream_failed_at = -60.0
        self._fd: int | None = None  # the log file, open (see _file)
        self._ino = 0

    def record(
        self, change: Change, *, size: int | None = None, trash_id: str | None = None
    ) -> None:
        """Append one record (never raises: a failure is logged)."""
        actor = change.actor
        line = json.dumps(
            {  # the keys in sorted order (as sort_keys would write them)
                "action": change.action.value,
                "is_dir": change.is_dir,
                "origin": actor.origin if actor is not None else None,
                "path": change.path,
                "size": size,
                "target": change.target,
                "trash_id": trash_id,
                "user": actor.user if actor is not None else None,
                "when": time.time(),
            }
        )
        data = (line + "\n").encode()
        if self.stream is not None:
            self._add(line)
        try:
            with self._lock:
                os.write(self._file(), data)
        except OSError:
            logger.exception("could not write the activity log %s", self.path)

    def _file(self) -> int:
        """The log file, open for appending: the one at :attr:`path` now (rotated first
        when full). The descriptor is kept while the name still leads to its file (one
        ``stat`` a record, not an open and a close: another process may have rotated it)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_size + 1 > self.max_bytes:
            os.replace(self.path, self.path.with_name(ACTIVITY_FILE + ".1"))
            st = None
        fd = self._fd
        if fd is not None and st is not None and st.st_ino == self._ino:
            return fd
        if fd is not None:
            self._fd = None
            os.close(fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:  # the state folder is made on first use
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o600)
        self._fd, self._ino = fd, os.fstat(fd).st_ino
        return fd

    def close(self) -> None:
        """Close the log file (a later record opens it again)."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def _add(self, line: str) -> None:
        assert self.stream is not None
        client, key = self.stream
        try:
            client.xadd(key, {"r": line}, maxlen=STREAM_LENGTH, approximate=True)
        except Exception as exc:  # Redis away: said now and then; the file keeps it
            now = time.monotonic()
            if now - self._stream_failed_at > 10:
                logger.warning("could not add to the activity stream %s: %s", key, exc)
            self._stream_failed_at = now

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records, oldest first (the last ``limit`` of them): the stream's when the
        log has one (the file's when Redis cannot be reached, with one log line)."""
        if self.stream is not None:
            try:
                return self._read_stream(limit)
            except Exception as exc:
                logger.warning("could not read the activity stream %s: %s", self.stream[1], exc)
        records: list[dict[str, Any]] = []
        for path in (self.path.with_name(ACTIVITY_FILE + ".1"), self.path):
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a crash
        return records[-limit:] if limit else records

    def _read_stream(self, limit: int | None) -> list[dict[str, Any]]:
        assert self.stream is not None
        client, key = self.stream
        if limit:
            entries = list(reversed(client.xrevrange(key, count=limit)))
        else:
            entries = client.xrange(key)
        records: list[dict[str, Any]] = []
        for _id, fields in entries:
            raw: Any = fields.get(b"r", fields.get("r"))
            try:
                records.append(json.loads(raw))
            except (TypeError, ValueError):
                continue
        return records


def attach(vfs: VFS, folder: Path, *, stream: tuple[Any, str] | None = None) -> ActivityLog:
    """Record every change made through ``vfs`` in ``folder`` (and ``stream``, see
    :class:`ActivityLog`); returns the log."""
    from davstore.vfs.trash import trash_of

    log = ActivityLog(folder, stream=stream)
    trash = trash_of(vfs)

    def listener(change: Change) -> None:
        size = None
        if not change.is_dir:
            entry = vfs.cache.get_stat(change.target or change.path)
            size = getattr(entry, "size", None)
        made = trash.last_made(change.target or change.path) if trash is not None else None
        if made is not None and size is None:
            size = made.size
        log.record(change, size=size, trash_id=made.id if made is not None else None)

    vfs.subscribe(listener)
    return log
