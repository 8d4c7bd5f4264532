"""Folder listings kept in a frontend's own form, bounded by their total number of entries.

The mount keeps each folder's ``readdir`` answer (operations.py) and the binding keeps the
kernel form of it (binding.py) for as long as the VFS answers with the same listing. Both
are bounded the same way: by the entries kept over all folders, the oldest folder dropped
first, the newest kept whatever its size (a folder being listed is never dropped under it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["KeptListings"]

K = TypeVar("K")
V = TypeVar("V")


class KeptListings(Generic[K, V]):
    """Values by folder, the oldest dropped while their sizes add up to more than ``limit``.

    :param size: the number of entries a value holds. Safe to use from several threads.
    """

    def __init__(self, limit: int, size: Callable[[V], int]) -> None:
        self.limit = limit
        self._size = size
        self._values: dict[K, V] = {}
        self._total = 0
        self._lock = threading.Lock()

    def get(self, folder: K) -> V | None:
        """The value kept for ``folder``, or None."""
        with self._lock:
            return self._values.get(folder)

    def put(self, folder: K, value: V) -> None:
        """Keep ``value`` for ``folder`` (replacing and renewing what was kept for it)."""
        with self._lock:
            values = self._values
            old = values.pop(folder, None)
            if old is not None:
                self._total -= self._size(old)
            values[folder] = value
            self._total += self._size(value)
            while self._total > self.limit and len(values) > 1:
                self._total -= self._size(values.pop(next(iter(values))))

    @property
    def entries(self) -> int:
        """The entries kept over all folders."""
        return self._total

    def __len__(self) -> int:
        return len(self._values)
