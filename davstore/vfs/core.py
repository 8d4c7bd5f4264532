"""The VFS: every semantic decision between a store and the frontends.

Frontends call these methods with share paths as they receive them (``/a/b`` or ``a/b``);
the VFS normalises and checks them (:mod:`davstore.vfs.paths`), keeps the metadata cache,
tracks open write handles, enforces read-only, and turns the flat primitives of an
:class:`~davstore.store.ObjectStore` into folders, renames and copies. Every method raises
only :mod:`davstore.errors` classes; each names what it raises below.

The rules it keeps are written down in docs/SEMANTICS.md, with one test per rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from davstore.errors import (
    AlreadyExists,
    DavstoreError,
    DirectoryNotEmpty,
    FileTooLarge,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    PermissionDenied,
    ReadOnly,
    from_exception,
)
from davstore.store.base import (
    Capabilities,
    ObjectInfo,
    ObjectStore,
    Upload,
    Usage,
    is_internal_name,
)
from davstore.vfs.cache import MISSING, UNKNOWN, MetadataCache, Unknown
from davstore.vfs.events import Action, Change, Listener, current_actor
from davstore.vfs.handles import ReadHandle, WriteHandle, same_version, write_all
from davstore.vfs.paths import ROOT, is_within, join, normalize, parent

__all__ = ["VFS", "Entry"]

logger = logging.getLogger(__name__)

#: One file or folder as the VFS reports it (``name`` is the canonical share path).
Entry = ObjectInfo

_COPY_BLOCK = 1 << 20


@functools.lru_cache(maxsize=16384)
def _canonical(path: str) -> str:
    """The canonical form of ``path``: ``paths.normalize`` plus the reserved-name rule.
    Raises InvalidPath, NameTooLong.

    Memoised: frontends ask for the same few paths over and over (a listing, then a stat
    of each entry)."""
    canonical = normalize(path)
    if any(is_internal_name(part) for part in canonical.split("/")):
        raise InvalidPath(canonical, "names starting with '.davstore-' are reserved")
    return canonical


class VFS:
    """One share over one store.

    :param store: the adapter for the Django Storage.
    :param read_only: refuse every change with :class:`~davstore.errors.ReadOnly` (EROFS).
    :param cache_ttl: seconds a stat or listing is reused (0 turns the cache off).
    :param spool_dir: where spooled uploads go past ``spool_memory`` bytes.
    :param max_file_size: writes past this size raise :class:`~davstore.errors.FileTooLarge`.
    :param max_tree_entries: recursive copy, move and delete of a folder touch at most this
        many entries; a bigger folder is refused up front (``NotSupported``), never half done.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        read_only: bool = False,
        cache_ttl: float = 1.0,
        spool_dir: str | None = None,
        spool_memory: int = 8 << 20,
        max_file_size: int | None = None,
        max_tree_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.read_only = read_only
        self.spool_dir = spool_dir
        self.spool_memory = spool_memory
        self.max_file_size = max_file_size
        self.max_tree_entries = max_tree_entries
        self.cache: MetadataCache[ObjectInfo] = MetadataCache(cache_ttl, clock=clock)
        self._lock = threading.Lock()
        #: Open write handles (a dict used as an ordered set: one atomic operation to add
        #: or remove, no lock; see :meth:`_reading`). Looked up by ``handle.path``.
        self._writers: dict[WriteHandle, None] = {}
        self._readers: dict[str, list[ReadHandle]] = {}
        self._listeners: list[Listener] = []
        self._wrappers: list[ObjectStore] = []
        #: Asked before every cache lookup: True when another process serving the share
        #: changed something since it was last asked (the whole cache is then forgotten).
        #: Set by :func:`davstore.vfs.host_peers.share_with_host_peers`.
        self.coherence: Callable[[], bool] | None = None

    def wrap_store(self, wrapper: Callable[[ObjectStore], ObjectStore]) -> None:
        """Put ``wrapper`` around the store (metrics, worker threads); call before serving.

        Frontends decorate the store through this instead of reaching into the store layer;
        :meth:`close` closes every wrapper that has a ``close``.
        """
        self.store = wrapper(self.store)
        self._wrappers.append(self.store)

    def use_store_workers(self, workers: int = 16) -> None:
        """Run every store call on ``workers`` long-lived threads the VFS owns, where the
        store keeps per-thread clients (django-storages' boto3 sessions, Django's database
        connections): FUSE calls back on a fresh Python thread state each time (DESIGN §5).
        Local disk and memory need none and are left as they are."""
        from davstore.store.threaded import ThreadedStore, needs_workers

        if needs_workers(self.store):
            self.wrap_store(lambda store: ThreadedStore(store, workers=workers))

    def close(self) -> None:
        """Release what the store wrappers hold (worker threads); the VFS is done."""
        for wrapper in reversed(self._wrappers):
            close = getattr(wrapper, "close", None)
            if close is not None:
                close()
        self._wrappers.clear()

    @property
    def capabilities(self) -> Capabilities:
        return self.store.capabilities

    def describe(self) -> str:
        return self.store.describe()

    # -- change events ---------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with a :class:`~davstore.vfs.events.Change` after every change
        made through this VFS; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(
        self, action: Action, path: str, *, is_dir: bool = False, target: str | None = None
    ) -> None:
        if not self._listeners:
            return
        change = Change(action, path, is_dir, target, current_actor())
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                logger.exception("a change listener failed on %s", change)

    # -- paths and policy ------------------------------------------------------------

    #: The canonical form of a path. Raises InvalidPath, NameTooLong. (The memoised
    #: function itself: no call more on every request's path.)
    normalize = staticmethod(_canonical)

    def _check_writable(self, path: str) -> None:
        if self.read_only:
            raise ReadOnly(path, "the share is read-only")

    # -- metadata --------------------------------------------------------------------

    def stat(self, path: str) -> Entry:
        """Metadata of a file or folder. Raises NotFound, InvalidPath, StoreError."""
        return self._stat(self.normalize(path))

    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def lookup(self, path: str) -> Entry | None:
        """:meth:`stat` that answers None for a missing path instead of raising NotFound
        (the cheaper question where absence is common: a new file's name).
        Raises InvalidPath, StoreError."""
        return self._find(self.normalize(path))

    def _known(self, path: str) -> Entry | Unknown | None:
        """What the VFS knows of a canonical path without asking the store: its entry, None
        for a known absence, UNKNOWN otherwise."""
        coherence = self.coherence
        if coherence is not None and coherence():
            self._invalidate(ROOT, tree=True)
        cached = self.cache.get_stat(path)
        if cached is MISSING:
            return None
        if isinstance(cached, ObjectInfo):
            return cached
        if path:
            listing = self.cache.get_listing(parent(path))
            if listing is not None:
                return next((e for e in listing if e.name == path), None)
        reading = self._reading(path)
        if reading is not None:
            return reading
        return UNKNOWN

    def _lookup(self, path: str) -> Entry | None:
        known = self._known(path)
        if not isinstance(known, Unknown):
            return known
        entry: Entry | None = self.store.find(path)
        if entry is not None and entry.children is not None:
            # The store listed the folder to answer the stat: keep that as its listing.
            children = list(entry.children)
            entry = dataclasses.replace(entry, children=None)
            if entry.is_dir:
                self.cache.put_listing(path, children, {e.name: e for e in children})
        self.cache.put_stat(path, entry if entry is not None else MISSING)
        return entry

    def _reading(self, path: str) -> Entry | None:
        """The entry of the newest read handle open on ``path`` (the version it reads).

        While a file is open for reading, its stat past the cache's TTL is answered from
        the handle instead of the store (a FUSE mount stats a file it reads again and
        again). A change made through the VFS, or :meth:`invalidate`, makes such handles
        stale, and so does a read that finds the file replaced: the store answers again.
        A file nobody has open is seen changed within the TTL as before.

        The readers' registry takes no lock: every change to it is one dict or list
        operation (atomic under the GIL), and the readers copy before they look. A lock
        taken by every GET made threads queue behind each other (a convoy: the holder
        waits for the GIL while the others wait for the lock), half the rate on 2 threads.
        A race can only drop a handle from the registry, and an unregistered handle is
        never asked: its file's stat comes from the cache or the store, as for any file.
        """
        handles = self._readers.get(path)
        if not handles:
            return None
        fresh = [h for h in list(handles) if not h.stale]
        return fresh[-1].entry if fresh else None

    def _release_reader(self, handle: ReadHandle) -> None:
        handles = self._readers.get(handle.path)
        if handles is None:
            return
        with contextlib.suppress(ValueError):
            handles.remove(handle)
        if not handles:
            self._readers.pop(handle.path, None)

    def _stale_readers(self, path: str, *, tree: bool) -> None:
        """Read handles on ``path`` (and below, for ``tree``) stop answering stats."""
        if not self._readers:
            return
        if not tree:
            for handle in list(self._readers.get(path, ())):
                handle.stale = True
            return
        for name, handles in self._readers.copy().items():  # see MetadataCache
            if name == path or is_within(name, path):
                for handle in list(handles):
                    handle.stale = True

    def _find(self, path: str) -> Entry | None:
        """The entry of a canonical path: a file open for writing with changes not yet
        committed shows as written so far; None when nothing is there."""
        entry = self._lookup(path)
        pending = self._pending(path)
        if pending is not None and (entry is None or not entry.is_dir):
            return pending
        return entry

    def _stat(self, path: str) -> Entry:
        entry = self._find(path)
        if entry is None:
            raise NotFound(path)
        return entry

    def _pending(self, path: str) -> Entry | None:
        """An entry for a file open for writing with changes not yet committed."""
        if not self._writers:  # the common case
            return None
        handles = [h for h in list(self._writers) if h.path == path and h.dirty]
        if not handles:
            return None
        return ObjectInfo(path, False, handles[-1].size, time.time(), None)

    def listdir(self, path: str) -> list[Entry]:
        """The folder's children with metadata (no order promised).

        Raises NotFound, NotADirectory, NotSupported (store cannot list), StoreError.
        """
        path = self.normalize(path)
        if not self._stat(path).is_dir:
            raise NotADirectory(path)
        entries = self.cache.get_listing(path)
        if entries is None:
            entries = list(self.store.list(path))
            self.cache.put_listing(path, entries, {e.name: e for e in entries})
        return self._with_pending(path, entries)

    def _with_pending(self, folder: str, entries: list[Entry]) -> list[Entry]:
        if not self._writers:
            return entries
        names = list(dict.fromkeys(h.path for h in list(self._writers) if parent(h.path) == folder))
        if not names:
            return entries
        merged = {e.name: e for e in entries}
        for name in names:
            pending = self._pending(name)
            if pending is not None and not (name in merged and merged[name].is_dir):
                merged[name] = pending
        return list(merged.values())

    def walk(self, path: str) -> Iterator[Entry]:
        """Every entry below folder ``path``, parents before children (``path`` excluded)."""
        for entry in self.listdir(path):
            yield entry
            if entry.is_dir:
                yield from self.walk(entry.name)

    def _tree(self, path: str) -> list[Entry]:
        """``walk`` bounded by ``max_tree_entries``; refuses bigger trees up front."""
        entries = []
        for entry in self.walk(path):
            entries.append(entry)
            if len(entries) > self.max_tree_entries:
                raise NotSupported(
                    path, f"the folder holds more than {self.max_tree_entries} entries"
                )
        return entries

    def usage(self) -> Usage:
        return self.store.usage()

    def url(self, path: str) -> str:
        """The Storage's public URL of a file. Raises NotSupported when it has none."""
        return self.store.url(self.normalize(path))

    def invalidate(self, path: str = ROOT) -> None:
        """Forget cached metadata of ``path`` and below (all of it for the root)."""
        self._invalidate(self.normalize(path), tree=True)

    def _invalidate(self, path: str, *, tree: bool = False) -> None:
        self._stale_readers(path, tree=tree)
        if tree and not path:
            self.cache.clear()
        else:
            self.cache.invalidate(path, tree=tree)

    def _require_folder(self, path: str) -> None:
        """``path`` must be an existing folder (the parent of something being made)."""
        entry = self._lookup(path)
        if entry is None:
            raise NotFound(path, "the parent folder does not exist")
        if not entry.is_dir:
            raise NotADirectory(path)

    # -- reading ---------------------------------------------------------------------

    def open_read(self, path: str, *, exact: bool = False) -> ReadHandle:
        """A seekable reader of the file's committed content.

        The handle's ``entry`` (size, ETag, time) comes from the cache, so it may be up to
        one TTL old when the file changed behind the VFS. With ``exact`` the content is
        opened at once and ``entry`` describes the very version being read (the store's
        :meth:`~davstore.store.ObjectStore.stream_info`, else a fresh ``head``): what a
        frontend needs before it promises a length. Raises NotFound, IsADirectory,
        StoreError.
        """
        path = self.normalize(path)
        if exact and self.capabilities.native_dirs and self._pending(path) is None:
            known = self._known(path)
            if isinstance(known, Unknown):
                return self._open_unknown(path)
            if known is None:
                raise NotFound(path)
            entry = known
        else:
            entry = self._stat(path)
        if entry.is_dir:
            raise IsADirectory(path)
        handle = self._reader(path, entry)
        if exact:
            try:
                stream = self.store.open_read(path)
            except (NotFound, IsADirectory):
                self._invalidate(path)
                raise
            try:
                actual = self.store.stream_info(path, stream) or self.store.head(path)
            except BaseException:
                stream.close()
                raise
            if not same_version(actual, entry):
                self.cache.invalidate(path)
                self.cache.put_stat(path, actual)
            else:
                actual = entry  # the cached entry may have finer times (listings: ms)
            handle.adopt(stream, actual)
        self._readers.setdefault(path, []).append(handle)
        return handle

    def read_small(self, path: str, limit: int) -> tuple[Entry, bytes] | None:
        """The whole committed content of a file of at most ``limit`` bytes and the entry of
        that very version: :meth:`open_read` with ``exact``, read to the end and closed, in
        one store call (:meth:`~davstore.store.ObjectStore.read_small`). ``None`` when the
        file is bigger, or the store cannot answer so: use :meth:`open_read`.
        Raises NotFound, IsADirectory, StoreError.
        """
        path = self.normalize(path)
        if not self.store.capabilities.native_dirs or self._pending(path) is not None:
            return None
        known = self._known(path)
        if known is None:
            raise NotFound(path)
        if not isinstance(known, Unknown):
            if known.is_dir:
                raise IsADirectory(path)
            if known.size is None or known.size > limit:
                return None
        try:
            got = self.store.read_small(path, limit)
        except (NotFound, NotADirectory) as exc:
            self._invalidate(path)
            self.cache.put_stat(path, MISSING)
            raise NotFound(path) from exc
        except IsADirectory:
            self._invalidate(path)
            raise
        if got is None:
            return None
        entry, data = got
        if isinstance(known, Unknown):
            self.cache.put_stat(path, entry)
        elif not same_version(entry, known):
            self.cache.invalidate(path)
            self.cache.put_stat(path, entry)
        else:
            entry = known  # the cached entry may have finer times (listings: ms)
        return entry, data

    def _reader(self, path: str, entry: Entry) -> ReadHandle:
        return ReadHandle(
            lambda offset: self.store.open_read(path, offset),
            entry,
            describe=lambda stream: self.store.stream_info(path, stream),
            on_close=self._release_reader,
        )

    def _open_unknown(self, path: str) -> ReadHandle:
        """:meth:`open_read` with ``exact`` of a path the cache knows nothing of, on a store
        with real folders: the store opens it, and the open stream says what it is. One
        call where a stat and an open took two (a GET of a file not seen for a TTL)."""
        try:
            stream = self.store.open_read(path)
        except (NotFound, NotADirectory) as exc:
            self.cache.put_stat(path, MISSING)
            raise NotFound(path) from exc
        try:
            entry = self.store.stream_info(path, stream) or self.store.head(path)
        except BaseException:
            stream.close()
            raise
        self.cache.put_stat(path, entry)
        handle = self._reader(path, entry)
        handle.adopt(stream, entry)
        self._readers.setdefault(path, []).append(handle)
        return handle

    def _read_committed(self, path: str, size: int, offset: int) -> bytes:
        with self.store.open_read(path, offset) as stream:
            return stream.read(size)

    def _copy_committed(self, path: str, target: BinaryIO) -> int:
        """Copy the stored content of ``path`` into ``target``; 0 when it is gone."""
        copied = 0
        try:
            stream = self.store.open_read(path)
        except NotFound:
            return 0
        with stream:
            while chunk := stream.read(_COPY_BLOCK):
                target.write(chunk)
                copied += len(chunk)
        return copied

    # -- writing ---------------------------------------------------------------------

    def open_write(
        self,
        path: str,
        *,
        truncate: bool = True,
        create: bool = True,
        exclusive: bool = False,
    ) -> WriteHandle:
        """Open a file for writing (see :mod:`davstore.vfs.handles` for the commit model).

        ``truncate`` starts from empty (else the old content is kept and can be changed in
        place or appended to); ``create`` allows a new file; ``exclusive`` refuses an existing
        one. Raises ReadOnly, NotFound (no such file, or no parent folder), AlreadyExists,
        IsADirectory, NotADirectory, InvalidPath.
        """
        path = self.normalize(path)
        self._check_writable(path)
        if not path:
            raise IsADirectory(path)
        entry = self._lookup(path)
        if entry is None:
            entry = self._pending(path)
        if entry is not None:
            if entry.is_dir:
                raise IsADirectory(path)
            if exclusive:
                raise AlreadyExists(path)
        else:
            if not create:
                raise NotFound(path)
            self._require_folder(parent(path))
        handle = WriteHandle(
            self,
            path,
            existing_size=None if entry is None else (entry.size or 0),
            truncate=truncate,
            max_size=self.max_file_size,
        )
        self._writers[handle] = None
        return handle

    def write_file(self, path: str, source: BinaryIO | bytes) -> Entry:
        """Replace (or create) a whole file from bytes or a readable stream."""
        stream = _as_stream(source)
        with self.open_write(path) as handle:
            try:
                while chunk := stream.read(_COPY_BLOCK):
                    handle.write(chunk)
            except BaseException:
                handle.abort()
                raise
        return self.stat(path)

    def put_file(self, path: str, data: bytes) -> tuple[Entry, bool]:
        """Replace (or create) the file ``path`` with ``data`` in one step; returns the
        stored entry and whether the file is new.

        What a write handle's commit does (the bytes staged and put in place: no partial
        file, a failure leaves the old content, the change announced as the request's
        user's), without a handle: the bytes are all there, so there is nothing to show
        as pending meanwhile. The small-PUT path's write (plain_put.py): ~15 µs less than
        open_write/write/close. Raises what :meth:`open_write` raises, FileTooLarge, and
        the store's errors.
        """
        path = self.normalize(path)
        self._check_writable(path)
        if not path:
            raise IsADirectory(path)
        if self.max_file_size is not None and len(data) > self.max_file_size:
            raise FileTooLarge(path, f"the file would exceed {self.max_file_size} bytes")
        entry = self._lookup(path) or self._pending(path)
        if entry is not None and entry.is_dir:
            raise IsADirectory(path)
        if entry is None:
            self._require_folder(parent(path))
        upload = self._start_upload(path)
        try:
            if data:
                write_all(upload.file, data)
            info = upload.commit()
        except OSError as exc:
            upload.abort()
            self._invalidate(path)
            raise from_exception(exc, path) from exc
        except BaseException:
            upload.abort()
            self._invalidate(path)
            raise
        self._committed_path(path, info, created=entry is None)
        return info, entry is None

    def _start_upload(self, path: str) -> Upload:
        return self.store.start_upload(
            path, spool_dir=self.spool_dir, spool_memory=self.spool_memory
        )

    def _committed(self, handle: WriteHandle, info: ObjectInfo, *, created: bool) -> None:
        self._committed_path(handle.path, info, created=created)

    def _committed_path(self, path: str, info: ObjectInfo, *, created: bool) -> None:
        self._stale_readers(path, tree=False)
        self.cache.invalidate(path)
        self.cache.put_stat(path, info)
        self._emit(Action.CREATED if created else Action.MODIFIED, path)

    def _release(self, handle: WriteHandle) -> None:
        self._writers.pop(handle, None)

    def _handles_within(self, path: str) -> list[WriteHandle]:
        return [h for h in list(self._writers) if is_within(h.path, path)]

    def flush_all(self) -> None:
        """Commit every open write handle (before a clean shutdown)."""
        for handle in self._handles_within(ROOT):
            try:
                handle.commit()
            except DavstoreError:
                logger.exception("could not commit %r at shutdown", handle.path)

    def abort_all(self) -> None:
        """Drop what every open write handle has not committed (their writers were cut
        off, as the requests of a server stopped with uploads in progress): the store
        keeps what it had."""
        for handle in self._handles_within(ROOT):
            handle.abort()

    def set_mtime(self, path: str, mtime_ns: int) -> bool:
        """Set the modification time (ns since the epoch) of a file or folder, where the
        store can keep it.

        Returns True when applied, False when the store cannot keep modification times
        (``capabilities.set_mtime``): the call is accepted and ignored there, so ``touch``,
        ``tar`` and ``rsync -t`` work and the store's own time stays. Open write handles
        on ``path`` are committed first, so a later commit does not undo the time.
        Raises ReadOnly, NotFound, StoreError.
        """
        path = self.normalize(path)
        self._check_writable(path)
        for handle in self._handles_within(path):
            handle.commit()
        self._stat(path)
        if not self.capabilities.set_mtime:
            return False
        try:
            self.store.set_mtime(path, mtime_ns)
        finally:
            self._invalidate(path)
        self._emit(Action.TOUCHED, path)
        return True

    # -- folders ---------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        """Create one folder. Raises ReadOnly, AlreadyExists, NotFound (no parent), ..."""
        path = self.normalize(path)
        self._check_writable(path)
        if not path or self._lookup(path) is not None or self._pending(path) is not None:
            raise AlreadyExists(path)
        self._require_folder(parent(path))
        try:
            self.store.make_dir(path)
        finally:
            self._invalidate(path)
        self._emit(Action.FOLDER_CREATED, path, is_dir=True)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder. Raises DirectoryNotEmpty, NotADirectory, NotFound, ..."""
        path = self.normalize(path)
        self._check_writable(path)
        if not path:
            raise PermissionDenied(path, "the share root cannot be removed")
        if not self._stat(path).is_dir:
            raise NotADirectory(path)
        self._invalidate(path, tree=True)
        if next(iter(self.store.list(path)), None) is not None:
            raise DirectoryNotEmpty(path)
        try:
            self.store.remove_dir(path)
        finally:
            self._invalidate(path, tree=True)
        self._emit(Action.FOLDER_DELETED, path, is_dir=True)

    # -- removing --------------------------------------------------------------------

    def remove(self, path: str) -> None:
        """Remove a file. Open handles on it are detached: they never commit again.

        Raises ReadOnly, NotFound, IsADirectory, NotSupported (store cannot delete).
        """
        path = self.normalize(path)
        self._check_writable(path)
        entry = self._lookup(path)
        handles = self._handles_within(path) if path else []
        for handle in handles:
            handle.detached = True
        if entry is None:
            if handles:
                return
            raise NotFound(path)
        if entry.is_dir:
            raise IsADirectory(path)
        try:
            self.store.delete(path)
        finally:
            self._invalidate(path)
        self._emit(Action.DELETED, path)

    def remove_tree(self, path: str) -> None:
        """Remove a file, or a folder with everything in it.

        Children go first, so a failure part-way leaves the folder and what was not yet
        removed; it raises the first error. Raises as :meth:`remove` and :meth:`rmdir`.
        """
        path = self.normalize(path)
        self._check_writable(path)
        if not path:
            raise PermissionDenied(path, "the share root cannot be removed")
        if not self._stat(path).is_dir:
            self.remove(path)
            return
        if not self.capabilities.delete:
            raise NotSupported(path, "the store cannot delete")
        try:
            self._remove_entries(path, self._tree(path))
        finally:
            self._invalidate(path, tree=True)
        self._emit(Action.FOLDER_DELETED, path, is_dir=True)

    def _remove_entries(self, path: str, tree: list[Entry]) -> None:
        """Remove folder ``path`` and ``tree`` (its walk): the files in one ``delete_many``
        (batched on object stores), then the folders, deepest first."""
        self.store.delete_many([e.name for e in tree if not e.is_dir])
        for entry in reversed(tree):
            if entry.is_dir:
                self.store.remove_dir(entry.name)
        self.store.remove_dir(path)

    # -- rename and copy -------------------------------------------------------------

    def _prepare_target(
        self, source: str, target: str, source_entry: Entry, *, replace: bool, verb: str
    ) -> None:
        """Checks shared by rename and copy; clears a target that is to be replaced."""
        if not target:
            raise PermissionDenied(target, f"cannot {verb} onto the share root")
        if source_entry.is_dir and is_within(target, source):
            raise InvalidPath(target, f"cannot {verb} a folder into itself")
        self._require_folder(parent(target))
        target_entry = self._lookup(target) or self._pending(target)
        if target_entry is None:
            return
        if not replace:
            raise AlreadyExists(target)
        if target_entry.is_dir and not source_entry.is_dir:
            raise IsADirectory(target)
        if not target_entry.is_dir and source_entry.is_dir:
            raise NotADirectory(target)
        if target_entry.is_dir:
            self.rmdir(target)

    def rename(self, source: str, target: str, *, replace: bool = True) -> None:
        """Move a file or folder, replacing a file or an empty folder at ``target``.

        Native where the store renames; otherwise copy then delete (folders recursively,
        up to ``max_tree_entries``). Open write handles on ``source`` are committed first
        and then follow the file. Raises ReadOnly, NotFound, AlreadyExists (no ``replace``),
        IsADirectory, NotADirectory, DirectoryNotEmpty, InvalidPath (into itself).
        """
        source, target = self.normalize(source), self.normalize(target)
        self._check_writable(target)
        if not source:
            raise PermissionDenied(source, "the share root cannot be moved")
        for handle in self._handles_within(source):
            handle.commit()
        source_entry = self._stat(source)
        if source == target:
            return
        native = self.capabilities.rename
        if not native and not self.capabilities.delete:
            raise NotSupported(source, "the store can neither rename nor delete")
        tree = self._tree(source) if source_entry.is_dir and not native else []
        self._prepare_target(source, target, source_entry, replace=replace, verb="move")
        try:
            if native:
                self.store.rename(source, target)
            elif not source_entry.is_dir:
                self.store.copy(source, target)
                self.store.delete(source)
            else:
                self._copy_tree(source, target, tree)
                self._remove_entries(source, tree)
        finally:
            self._invalidate(source, tree=True)
            self._invalidate(target, tree=True)
        self._retarget(source, target)
        self._emit(Action.MOVED, source, is_dir=source_entry.is_dir, target=target)

    def _retarget(self, source: str, target: str) -> None:
        with self._lock:  # one MOVE at a time retargets
            for handle in self._handles_within(source):
                handle.path = target + handle.path[len(source) :]

    def copy(
        self, source: str, target: str, *, replace: bool = True, recursive: bool = True
    ) -> None:
        """Copy a file, or a folder (with its content unless ``recursive`` is false).

        Raises as :meth:`rename`.
        """
        source, target = self.normalize(source), self.normalize(target)
        self._check_writable(target)
        for handle in self._handles_within(source):
            handle.commit()
        source_entry = self._stat(source)
        if source == target:
            raise AlreadyExists(target, "source and target are the same")
        tree = self._tree(source) if source_entry.is_dir and recursive else []
        self._prepare_target(source, target, source_entry, replace=replace, verb="copy")
        try:
            if source_entry.is_dir:
                self._copy_tree(source, target, tree)
            else:
                self.store.copy(source, target)
        finally:
            self._invalidate(target, tree=True)
        self._emit(Action.COPIED, source, is_dir=source_entry.is_dir, target=target)

    def _copy_tree(self, source: str, target: str, tree: list[Entry]) -> None:
        self.store.make_dir(target)
        for entry in tree:
            dest = join(target, entry.name[len(source) + 1 :])
            if entry.is_dir:
                self.store.make_dir(dest)
            else:
                self.store.copy(entry.name, dest)


def _as_stream(source: BinaryIO | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
