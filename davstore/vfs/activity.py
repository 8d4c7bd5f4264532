"""The activity log: one persisted record per change a person made through a VFS.

:func:`attach` subscribes an :class:`ActivityLog` to a VFS's change events
(:mod:`davstore.vfs.events`): each change becomes one JSON line in ``activity.jsonl`` in
the share's state folder: when, who, origin, action, path (and target), size where the
VFS knows it, and the trash entry where the change made one (:mod:`davstore.vfs.trash`).
The file is bounded: past ``max_bytes`` it becomes ``activity.jsonl.1`` (the one before
goes) and a new one starts. ``davstore activity`` reads both, oldest first.

One host's processes share the state folder and so the log (each line one ``write`` of
an ``O_APPEND`` file); replicas on several hosts each keep their own (not yet shared).
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

__all__ = ["ACTIVITY_FILE", "ActivityLog", "attach"]

logger = logging.getLogger("davstore.activity")

ACTIVITY_FILE = "activity.jsonl"


class ActivityLog:
    """The activity of one share, in ``folder`` (its state folder)."""

    def __init__(self, folder: Path, *, max_bytes: int = 16 << 20) -> None:
        self.path = folder / ACTIVITY_FILE
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def record(
        self, change: Change, *, size: int | None = None, trash_id: str | None = None
    ) -> None:
        """Append one record (never raises: a failure is logged)."""
        actor = change.actor
        line = json.dumps(
            {
                "when": time.time(),
                "user": actor.user if actor is not None else None,
                "origin": actor.origin if actor is not None else None,
                "action": change.action.value,
                "path": change.path,
                "target": change.target,
                "is_dir": change.is_dir,
                "size": size,
                "trash_id": trash_id,
            },
            sort_keys=True,
        )
        data = (line + "\n").encode()
        try:
            with self._lock:
                self._rotate()
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
                try:
                    fd = os.open(self.path, flags, 0o600)
                except FileNotFoundError:  # the state folder is made on first use
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self.path, flags, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError:
            logger.exception("could not write the activity log %s", self.path)

    def _rotate(self) -> None:
        try:
            if self.path.stat().st_size + 1 > self.max_bytes:
                os.replace(self.path, self.path.with_name(ACTIVITY_FILE + ".1"))
        except FileNotFoundError:
            pass

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records, oldest first (the last ``limit`` of them)."""
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


def attach(vfs: VFS, folder: Path) -> ActivityLog:
    """Record every change made through ``vfs`` in ``folder``; returns the log."""
    from davstore.vfs.trash import trash_of

    log = ActivityLog(folder)
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
