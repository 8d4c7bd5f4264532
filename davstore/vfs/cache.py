"""The metadata cache: stat results and listings, negative entries too.

Entries live ``ttl`` seconds (the VFS's default 1 s; a share served with its change journal
keeps them far longer, and checks them every so often: :meth:`davstore.vfs.VFS.revalidate`,
which asks :meth:`MetadataCache.take_used` which listings were read since it last asked).
Every change made through the VFS invalidates the touched path, its parent's listing and,
for folders, everything below, at once. A ``ttl`` of 0 turns the
cache off. The cache is bounded: past ``max_entries`` the expired entries are dropped, and
if that is not enough, the oldest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from davstore.vfs.paths import is_within, parent

__all__ = [
    "MISSING",
    "MetadataCache",
    "Unknown",
]

E = TypeVar("E")


class _Missing:
    """A negative entry: the path was looked up and does not exist."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class Unknown:
    """Not in the cache either way: only the store can tell."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


class MetadataCache(Generic[E]):
    """Thread-safe TTL cache of ``path -> entry | MISSING`` and ``path -> [entries]``.

    Thread-safe without a lock on the request path: every read and every change is one
    dict operation on immutable values (atomic under the GIL), and whatever walks a table
    walks a copy of it: ``list(table)`` or ``table.copy()``, which allocate no object the
    garbage collector tracks while they copy. ``list(table.items())`` is not atomic: each
    pair it builds is a new tuple, that allocation can start a collection, and a finalizer
    run by it can hand the GIL to a thread that changes the table mid-walk.

    A lock taken by every lookup made the request threads queue behind each other:
    whenever its holder lost the GIL, the others blocked on the lock, and each lookup then
    cost two context switches (a convoy; benchmarks/README.md). Only the eviction in
    :meth:`_bound` takes a lock, without waiting for it: one thread evicts at a time, the
    others go on.
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._evicting = threading.Lock()
        self._stats: dict[str, tuple[float, E | _Missing]] = {}
        self._listings: dict[str, tuple[float, list[E]]] = {}
        #: Listings read since :meth:`take_used` was last called, while :attr:`tracking`.
        self._used: dict[str, None] = {}
        self.tracking = False

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get_stat(self, path: str) -> E | _Missing | None:
        """The cached entry, ``MISSING`` for a cached absence, ``None`` when unknown."""
        if not self.enabled:
            return None
        found = self._stats.get(path)
        if found is not None and found[0] > self._clock():
            return found[1]
        return None

    def put_stat(self, path: str, entry: E | _Missing) -> None:
        if not self.enabled:
            return
        self._stats[path] = (self._clock() + self.ttl, entry)
        self._bound()

    def get_listing(self, path: str) -> list[E] | None:
        if not self.enabled:
            return None
        found = self._listings.get(path)
        if found is not None and found[0] > self._clock():
            if self.tracking:
                self._used[path] = None
            return found[1]
        return None

    def peek_listing(self, path: str) -> list[E] | None:
        """:meth:`get_listing` that does not count as a use."""
        found = self._listings.get(path)
        if found is not None and found[0] > self._clock():
            return found[1]
        return None

    def take_used(self) -> set[str]:
        """The listings read since the last call (and start counting again)."""
        used, self._used = self._used, {}
        return set(used)

    def listing_paths(self) -> list[str]:
        """The folders the cache holds a listing of."""
        return list(self._listings)

    def stat_paths(self) -> list[str]:
        """The paths the cache holds a stat entry (or an absence) of."""
        return list(self._stats)

    def put_listing(self, path: str, entries: list[E], children: dict[str, E]) -> None:
        """Cache a listing and, with the same expiry, a stat entry for every child."""
        if not self.enabled:
            return
        expires = self._clock() + self.ttl
        self._stats.update({child: (expires, entry) for child, entry in children.items()})
        self._listings[path] = (expires, entries)
        if self.tracking:
            self._used[path] = None
        self._bound()

    def invalidate(self, path: str, *, tree: bool = False) -> None:
        """Forget ``path``, its parent's listing and, with ``tree``, everything below it."""
        self._stats.pop(path, None)
        self._listings.pop(path, None)
        self._listings.pop(parent(path), None)
        if tree:
            for table in (self._stats, self._listings):
                for key in [k for k in list(table) if is_within(k, path)]:
                    table.pop(key, None)

    def drop(self, path: str) -> None:
        """Forget ``path``, keeping its parent's listing: what is dropped was not found
        changed, only not checked."""
        self._stats.pop(path, None)
        self._listings.pop(path, None)

    def drop_listing(self, path: str) -> None:
        """Forget the listing of ``path`` only."""
        self._listings.pop(path, None)

    def paths(self) -> list[str]:
        """Every path the cache holds an entry or a listing of (expired ones too)."""
        return [*list(self._stats), *list(self._listings)]

    def clear(self) -> None:
        self._stats.clear()
        self._listings.clear()

    def _bound(self) -> None:
        if len(self._stats) + len(self._listings) <= self.max_entries:
            return
        if not self._evicting.acquire(blocking=False):
            return  # another thread is evicting
        try:
            now = self._clock()
            for table in (self._stats, self._listings):
                for key, (expires, _) in table.copy().items():
                    if expires <= now:
                        table.pop(key, None)
            for table in (self._stats, self._listings):
                excess = len(table) - self.max_entries // 2
                if excess > 0:
                    for key in list(table)[:excess]:
                        table.pop(key, None)
        finally:
            self._evicting.release()
