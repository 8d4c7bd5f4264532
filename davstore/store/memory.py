"""Accelerator for Django's ``InMemoryStorage``, through its public API.

``InMemoryStorage`` keeps real folder nodes: a folder made by saving and deleting a marker
stays, and ``delete()`` on a folder name removes the folder node. Its file nodes are shared
between every ``open()``, so reads are served from a snapshot taken under this adapter's
lock, and an overwrite (``save`` would pick another name) is a delete and a save under the
same lock. Its folder nodes keep a modification time that moves when an entry is added or
removed; the adapter reports it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import InMemoryStorage

from davstore.errors import IsADirectory
from davstore.store.base import DIRECTORY_MARKER, Capabilities, ObjectInfo
from davstore.store.generic import GenericStore

__all__ = ["MemoryStore"]


def _memory_size() -> int | None:
    """The host's physical memory: a file kept in memory cannot be bigger."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class MemoryStore(GenericStore):
    """``InMemoryStorage``: native folders, snapshot reads, locked overwrites."""

    storage: InMemoryStorage

    def __init__(self, storage: InMemoryStorage) -> None:
        super().__init__(storage)
        self._lock = threading.RLock()

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            native_dirs=True,
            atomic_replace=True,
            url=self.storage.base_url is not None,
            quick=True,
            held_reads=True,  # reads are snapshots
            max_file_size=_memory_size(),
            folder_mtime=True,
            max_path_bytes=4096,
        )

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        if self.head(name).is_dir:
            raise IsADirectory(name)
        with self._lock:
            data = self._call(name, lambda: self.storage.open(name, "rb").read())
        stream = io.BytesIO(data)
        stream.seek(offset)
        return stream

    def save_exact(self, name: str, content: BinaryIO) -> None:
        with self._lock:
            super().save_exact(name, content)

    def delete(self, name: str) -> None:
        with self._lock:
            super().delete(name)

    def make_dir(self, name: str) -> None:
        marker = f"{name}/{DIRECTORY_MARKER}"
        with self._lock:
            self.save_exact(marker, io.BytesIO())
            self._call(marker, lambda: self.storage.delete(marker))

    def remove_dir(self, name: str) -> None:
        with self._lock:
            self._call(name, lambda: self.storage.delete(name))

    def head(self, name: str) -> ObjectInfo:
        with self._lock:
            return self._dated(super().head(name))

    def list(self, name: str) -> Iterator[ObjectInfo]:
        with self._lock:
            entries = [self._dated(entry) for entry in super().list(name)]
        return iter(entries)

    def _dated(self, entry: ObjectInfo) -> ObjectInfo:
        """A folder's entry with its node's modification time."""
        if not entry.is_dir:
            return entry
        name = entry.name
        modified = self._call(name, lambda: self.storage.get_modified_time(name)).timestamp()
        return dataclasses.replace(entry, mtime=modified)
