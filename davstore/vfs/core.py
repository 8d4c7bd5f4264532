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
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from davstore.errors import (
    AlreadyExists,
    Conflict,
    DavstoreError,
    DirectoryNotEmpty,
    FileTooLarge,
    InsufficientStorage,
    InvalidPath,
    IsADirectory,
    NameTooLong,
    NotADirectory,
    NotFound,
    NotSupported,
    PartlyCopied,
    PartlyDone,
    PartlyRemoved,
    PermissionDenied,
    ReadOnly,
    from_exception,
)
from davstore.store.base import (
    DIRECTORY_MARKER,
    INTERNAL_PREFIX,
    Capabilities,
    ObjectInfo,
    ObjectStore,
    Upload,
    Usage,
    is_internal_name,
)
from davstore.vfs import trees
from davstore.vfs.cache import MISSING, UNKNOWN, MetadataCache, Unknown
from davstore.vfs.events import Action, Change, Listener, Watcher, current_actor
from davstore.vfs.handles import (
    OpenFile,
    ReadHandle,
    WriteHandle,
    read_full,
    same_version,
    write_all,
)
from davstore.vfs.paths import MAX_PATH_BYTES, ROOT, is_within, join, normalize, parent
from davstore.vfs.policy import Kind, LetsThrough, Operation, Policy, lets_through_of, order_of
from davstore.vfs.policy import run as run_policies

if TYPE_CHECKING:
    from davstore.vfs.sync import ChangeFeed

__all__ = ["VFS", "Entry"]

logger = logging.getLogger(__name__)

#: One file or folder as the VFS reports it (``name`` is the canonical share path).
Entry = ObjectInfo

_COPY_BLOCK = 1 << 20
T = TypeVar("T")


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


def _within(max_bytes: int, max_chars: int | None) -> Callable[[str], str]:
    """:func:`_canonical` that also refuses paths longer than a store holds
    (``Capabilities.max_path_bytes``/``max_path_chars``) with NameTooLong; memoised."""

    @functools.lru_cache(maxsize=16384)
    def canonical_within(path: str) -> str:
        canonical = _canonical(path)
        if len(canonical.encode()) > max_bytes:
            raise NameTooLong(path, f"the path is longer than this store holds ({max_bytes} bytes)")
        if max_chars is not None and len(canonical) > max_chars:
            raise NameTooLong(
                path, f"the path is longer than this store holds ({max_chars} characters)"
            )
        return canonical

    return canonical_within


def _same(cached: Entry, fresh: Entry) -> bool:
    """Whether a child of a listing is as the cache had it (a folder's own time on a flat
    store is the VFS's, not the store's)."""
    if cached.is_dir or fresh.is_dir:
        return cached.is_dir == fresh.is_dir
    return same_version(cached, fresh)


class _Named:
    """The files a streamed change of a folder's tree names in its change event: each one
    as the walk reaches it, and none at all (None) past ``bound`` entries, as
    :class:`~davstore.vfs.events.Change` promises."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.entries = 0
        self.names: list[str] | None = []

    def add(self, entry: Entry) -> None:
        if self.names is None:
            return
        self.entries += 1
        if self.entries > self.bound:
            self.names = None
        elif not entry.is_dir:
            self.names.append(entry.name)

    def files(self) -> tuple[str, ...] | None:
        return None if self.names is None else tuple(self.names)


#: Folders whose last change the VFS keeps a time of, on stores that keep no folder times.
_FOLDER_TIMES_KEPT = 100_000


class VFS:
    """One share over one store.

    :param store: the adapter for the Django Storage.
    :param read_only: refuse every change with :class:`~davstore.errors.ReadOnly` (EROFS).
    :param cache_ttl: seconds a stat or listing is reused (0 turns the cache off).
    :param revalidate: seconds between two checks of what the cache holds against the
        store, once :meth:`start_revalidating` is called (0: never); see :meth:`revalidate`.
    :param spool_dir: where spooled uploads go past ``spool_memory`` bytes.
    :param max_file_size: writes past this size raise :class:`~davstore.errors.FileTooLarge`.
    :param max_tree_entries: how many entries of a folder's tree a change event names
        (``Change.files``; None past it). It bounds no operation: a folder's copy, delete,
        and move on stores that cannot rename stream the tree whatever its size (memory
        stays bounded), as Apache's and nginx's do.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        read_only: bool = False,
        cache_ttl: float = 1.0,
        revalidate: float = 0.0,
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
        self.revalidate_interval = revalidate
        self._revalidating: threading.Thread | None = None
        self._stop_revalidating = threading.Event()
        self._lock = threading.Lock()
        #: Files open for writing (a dict used as an ordered set: one atomic operation to
        #: add or remove, no lock; see :meth:`_reading`). Looked up by ``file.path``.
        self._writers: dict[OpenFile, None] = {}
        #: The open file later ``shared`` opens of a path join (one per path).
        self._shared: dict[str, OpenFile] = {}
        self._readers: dict[str, list[ReadHandle]] = {}
        self._listeners: list[Listener] = []
        self._watchers: list[Watcher] = []
        self._wrappers: list[ObjectStore] = []
        #: The policies for each kind of change, outermost first (davstore.vfs.policy).
        self._policies: dict[Kind, tuple[Policy, ...]] = {}
        #: For each kind whose policies all have ``lets_through``: the chain they were
        #: taken from (the entry holds while it is the chain) and those functions.
        self._lets_through: dict[Kind, tuple[tuple[Policy, ...], tuple[LetsThrough, ...]]] = {}
        #: Asked before every cache lookup: True when another process serving the share
        #: changed something since it was last asked (the whole cache is then forgotten).
        #: Set by :func:`davstore.vfs.host_peers.share_with_host_peers`.
        self.coherence: Callable[[], bool] | None = None
        #: The share's change journal as sync clients read it (:mod:`davstore.vfs.sync`),
        #: offered by the journal this VFS follows; None when it follows none.
        self.change_feed: ChangeFeed | None = None
        #: On stores without folder times (``Capabilities.folder_mtime``): the time (ns) of
        #: the last change made through this VFS in each folder, and the newest time
        #: dropped when the table was full (every folder with no time of its own is at
        #: least that recent). See :meth:`_changed_in`.
        self._folder_times: dict[str, int] = {}
        self._folder_floor: int | None = None
        limits = store.capabilities
        if limits.max_path_bytes < MAX_PATH_BYTES or limits.max_path_chars is not None:
            # The store holds shorter paths than any share may have: its own check.
            self.normalize = _within(  # type: ignore[assignment]
                limits.max_path_bytes, limits.max_path_chars
            )

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
        self._stop_revalidating.set()
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

    def add_policy(self, policy: Policy) -> None:
        """Run ``policy`` around every change of the kinds it names, inside the policies
        added before it (see :mod:`davstore.vfs.policy`); call before serving."""
        for kind in policy.kinds:
            chain = (*self._policies.get(kind, ()), policy)
            chain = self._policies[kind] = tuple(sorted(chain, key=order_of))  # stable
            through = lets_through_of(chain)
            if through is None:
                self._lets_through.pop(kind, None)
            else:
                self._lets_through[kind] = (chain, through)

    def _apply(
        self,
        kind: Kind,
        path: str,
        work: Callable[[], T],
        *,
        is_dir: bool = False,
        target: str | None = None,
        undo: Callable[[], None] | None = None,
        source: BinaryIO | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> T:
        """Do ``work`` (the store change) inside the policies for ``kind``, if any."""
        chain = self._policies.get(kind)
        if not chain:
            return work()
        through = self._lets_through.get(kind)
        if through is not None and through[0] is chain:
            for lets_through in through[1]:
                if not lets_through(kind, path, is_dir, target):
                    break
            else:
                return work()  # every policy would only have called proceed
        op = Operation(kind, path, is_dir, target, current_actor(), undo, source, prepare)
        return run_policies(chain, op, work)

    def _commit_upload(self, path: str, upload: Upload, *, created: bool) -> ObjectInfo:
        """``upload.commit()`` inside the CREATE or REPLACE policies."""
        if not self._policies:
            return upload.commit()
        kind = Kind.CREATE if created else Kind.REPLACE
        return self._apply(kind, path, upload.commit, source=upload.file)

    # -- change events ---------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with a :class:`~davstore.vfs.events.Change` after every change
        made through this VFS; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(
        self,
        action: Action,
        path: str,
        *,
        is_dir: bool = False,
        target: str | None = None,
        files: tuple[str, ...] | None = None,
    ) -> None:
        if not self._listeners:
            return
        change = Change(action, path, is_dir, target, current_actor(), files)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                logger.exception("a change listener failed on %s", change)

    # -- paths and policy ------------------------------------------------------------

    #: The canonical form of a path. Raises InvalidPath, NameTooLong. (The memoised
    #: function itself: no call more on every request's path.) On the class it checks the
    #: rules of every share; an instance whose store holds shorter paths than
    #: :data:`~davstore.vfs.paths.MAX_PATH_BYTES` checks the store's limit too.
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

    def lookup_to_make(self, path: str) -> tuple[Entry | None, Entry | None]:
        """:meth:`lookup` of ``path`` and, when nothing is there, of its parent folder (None
        for the root's): what one about to make ``path`` asks. Where neither is known, the
        store answers both in one call (``find_with_parent``: a new file's PUT on a local
        disk resolves its folder once). Raises InvalidPath, StoreError."""
        path = self.normalize(path)
        if not path:
            return self._find(path), None
        folder = parent(path)
        if (
            isinstance(self._known(path), Unknown)
            and self._pending(path) is None
            and isinstance(self._known(folder), Unknown)
        ):
            entry, folder_entry = self.store.find_with_parent(path)
            if entry is None and folder_entry is not None and folder_entry.is_dir:
                self.cache.put_stat(path, MISSING)
                self.cache.put_stat(folder, self._dated([folder_entry])[0])
                return None, folder_entry
        entry = self._find(path)
        return entry, None if entry is not None else self._lookup(folder)

    def _known(self, path: str) -> Entry | Unknown | None:
        """What the VFS knows of a canonical path without asking the store: its entry, None
        for a known absence, UNKNOWN otherwise."""
        coherence = self.coherence
        if coherence is not None and coherence():
            self.forget(ROOT, tree=True)
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
            children = self._dated(list(entry.children))
            entry = dataclasses.replace(entry, children=None)
            if entry.is_dir:
                self.cache.put_listing(path, children, {e.name: e for e in children})
        if entry is not None and entry.is_dir:
            entry = self._dated([entry])[0]
        self.cache.put_stat(path, entry if entry is not None else MISSING)
        return entry

    def _dated(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` (from the store) with the folder times this VFS keeps, on a store
        that keeps none (see :meth:`_changed_in`); the same list when there are none."""
        times, floor = self._folder_times, self._folder_floor
        if not times and floor is None:
            return entries
        dated = []
        for entry in entries:
            kept = times.get(entry.name, floor) if entry.is_dir else None
            if kept is not None and (entry.mtime_ns or 0) < kept:
                dated.append(dataclasses.replace(entry, mtime=kept / 1e9, mtime_ns=kept))
            else:
                dated.append(entry)
        return dated

    def _changed_in(self, folder: str, at: Entry | None = None) -> None:
        """The entries of ``folder`` changed (a name made, removed or moved): its own
        cached entry goes, and with it its parent's listing, as its time moved.

        A store with folder times (``Capabilities.folder_mtime``: local disk, memory)
        moved it itself. On the others (object stores: a folder is a name prefix) the
        VFS keeps the time of the change: ``at``'s modification time (a file made), or
        now where there is none or it is not past the last change (stores that count in
        seconds). A folder's time there is the time of the last change made in it
        through this VFS, and only moves forward. The table is bounded: past
        :data:`_FOLDER_TIMES_KEPT` folders the oldest half is dropped, and every folder
        without a time of its own is then reported as recent as the newest dropped one.
        """
        self.cache.invalidate(folder)
        if self.capabilities.folder_mtime:
            return
        times = self._folder_times
        kept = times.get(folder, 0)
        when = None if at is None else at.mtime_ns or (at.mtime and int(at.mtime * 1e9))
        if not when or when <= kept:  # none, or coarser than the last change (seconds)
            when = time.time_ns()
        if when > kept:
            times.pop(folder, None)  # the newest last
            times[folder] = when
        if len(times) > _FOLDER_TIMES_KEPT:
            with self._lock:
                oldest = list(times)[: len(times) // 2]
                dropped = [times.pop(name, 0) for name in oldest]
                self._folder_floor = max(self._folder_floor or 0, *dropped)

    def _folders_moved(self, source: str, target: str | None) -> None:
        """The kept folder times of ``source`` and below follow a move to ``target``
        (or go, for ``None``: removed)."""
        times = self._folder_times
        if not times:
            return
        for name in [n for n in list(times) if is_within(n, source)]:
            kept = times.pop(name, None)
            if target is not None and kept is not None:
                times[target + name[len(source) :]] = kept

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
        files = [f for f in list(self._writers) if f.path == path and f.dirty]
        if not files:
            return None
        # The time of the last uncommitted change (as a file system's mtime is).
        return ObjectInfo(path, False, files[-1].size, files[-1].mtime or time.time(), None)

    def listdir(self, path: str) -> list[Entry]:
        """The folder's children with metadata (no order promised).

        Raises NotFound, NotADirectory, NotSupported (store cannot list), StoreError.
        """
        path = self.normalize(path)
        if not self._stat(path).is_dir:
            raise NotADirectory(path)
        entries = self.cache.get_listing(path)
        if entries is None:
            entries = self._dated(list(self.store.list(path)))
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

    def _files_within(self, path: str) -> tuple[str, ...] | None:
        """The files in folder ``path`` and below, for a change event (a native move does
        not walk the folder otherwise); None past ``max_tree_entries`` entries or when the
        store cannot list it."""
        if not self._listeners:
            return None
        named = _Named(self.max_tree_entries)
        try:
            for entry in self.walk(path):
                named.add(entry)
                if named.names is None:
                    break
        except OSError as exc:
            logger.info("the files of %s are not told: %s", path, exc)
            return None
        return named.files()

    def usage(self) -> Usage:
        return self.store.usage()

    def root_exists(self) -> bool:
        """Whether the share's root folder exists (:meth:`ObjectStore.root_exists`): a
        share whose folder is missing (``STATIC_ROOT`` before ``collectstatic``) lists
        nothing, and its frontends and health check say why."""
        return self.store.root_exists()

    def url(self, path: str) -> str:
        """The Storage's public URL of a file. Raises NotSupported when it has none."""
        return self.store.url(self.normalize(path))

    def invalidate(self, path: str = ROOT) -> None:
        """Forget cached metadata of ``path`` and below (all of it for the root), which
        changed elsewhere: :meth:`forget` with ``tree``."""
        self.forget(self.normalize(path), tree=True)

    def forget(self, path: str, *, tree: bool = False) -> None:
        """Forget what the cache holds of the canonical ``path`` (with ``tree``, of all it
        holds; the root's tree is the whole cache) because it changed elsewhere: another
        process, the site, a replica (:mod:`davstore.vfs.journal`). Then tell every
        watcher (:meth:`watch`), so a frontend whose client keeps its own cache (the FUSE
        kernel) drops it too. Changes made through this VFS do not come here."""
        told: list[tuple[str, bool]] = [(path, tree)]
        if tree and not path and self._watchers:
            # What the cache knew is what a client may hold: each name at the top, whole.
            tops = {key.split("/", 1)[0] for key in self.cache.paths() if key}
            told = [(ROOT, False), *((top, True) for top in sorted(tops))]
        self._invalidate(path, tree=tree)
        self._tell(told)

    def _unchecked(self, path: str) -> None:
        """Forget what the cache holds of ``path`` without having found it changed: its
        parent's listing stays, open readers keep answering; the watchers are told, since
        a client's cache of it is no longer vouched for either."""
        self.cache.drop(path)
        self._tell([(path, False)])

    def _tell(self, told: list[tuple[str, bool]]) -> None:
        for watcher in list(self._watchers):
            for each, whole in told:
                try:
                    watcher(each, whole)
                except Exception:
                    logger.exception("a watcher failed on %s", each)

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher(path, tree)`` whenever :meth:`forget` forgets ``path`` (``tree``:
        and all below it) for a change made elsewhere; returns a function that stops it.
        It runs on the thread that learned of the change (a journal follower, a request
        that caught up on the journal) and must not block: queue the work."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def start_revalidating(self) -> None:
        """Call :meth:`revalidate` every ``revalidate`` seconds on a thread of the VFS's own
        until :meth:`close` (once; nothing when the interval or the cache is off)."""
        if self.revalidate_interval <= 0 or not self.cache.enabled or self._revalidating:
            return
        self.cache.tracking = True
        self.cache.take_used()
        interval, stop, vfs_ref = (
            self.revalidate_interval,
            self._stop_revalidating,
            weakref.ref(self),
        )

        def run() -> None:  # holds the VFS only during a round: it ends with the VFS
            while not stop.wait(interval):
                vfs = vfs_ref()
                if vfs is None:
                    return
                try:
                    vfs.revalidate()
                except Exception:
                    logger.exception("revalidating the cached metadata failed")
                del vfs

        self._revalidating = threading.Thread(target=run, name="davstore-revalidate", daemon=True)
        self._revalidating.start()

    def revalidate(self) -> list[str]:
        """One round of checking the cache against the store, for changes made behind
        everyone's back (another program writing the bucket: no journal tells of them).
        Returns the paths found changed.

        Each folder whose listing was read since the last round is listed again (one
        store listing): a child added, removed or changed (size, ETag or time) is
        forgotten (:meth:`forget`: the frontends' own caches, the FUSE kernel's, drop it
        too), and the listing with it; the children of a listing found unchanged stay.
        Every other entry (a listing nobody read, a stat or absence not vouched for by a
        listing) is forgotten unchecked: the next use asks the store. So an idle share
        costs nothing, and a folder many clients refresh costs one listing per round."""
        used = self.cache.take_used()
        vouched: set[str] = set()
        changed: list[str] = []
        for folder in self.cache.listing_paths():
            cached = self.cache.peek_listing(folder)
            if cached is None:
                continue
            if folder not in used:
                self.cache.drop_listing(folder)  # its entries: below, unless vouched for
                continue
            try:
                fresh = {e.name: e for e in self._dated(list(self.store.list(folder)))}
            except OSError:
                self.forget(folder, tree=True)  # gone, or the store is away: ask next time
                changed.append(folder)
                continue
            known = {e.name: e for e in cached}
            differ = [
                name
                for name in known.keys() | fresh.keys()
                if name not in known or name not in fresh or not _same(known[name], fresh[name])
            ]
            for name in differ:
                self.forget(name, tree=True)
            if differ:
                self.forget(folder)
                changed.extend(sorted(differ))
            else:
                vouched.add(folder)
        for path in self.cache.stat_paths():
            if path not in vouched and (not path or parent(path) not in vouched):
                self._unchecked(path)
        return changed

    def refresh(self) -> None:
        """Catch up now on what the other processes serving the share announced (the
        ``coherence`` check every cache lookup makes), for a frontend that must learn of
        changes while no request comes (a mount whose kernel answers from its own cache)."""
        coherence = self.coherence
        if coherence is not None and coherence():
            self.forget(ROOT, tree=True)

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
        elif self.capabilities.held_reads:
            handle.open_now()  # the version there now, whatever becomes of the name
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
        got = self._quick_call(path, self.store.read_small, limit)
        if got is None:
            return None
        entry, data = got
        return self._settled(path, known, entry), data

    def open_cached(self, path: str) -> ReadHandle | None:
        """:meth:`open_read` with ``exact``, made only where the store opens the file without
        waiting for a device (:meth:`~davstore.store.ObjectStore.open_cached`: the name and
        inode in the kernel's caches) and tells the version from the open stream; ``None``
        otherwise (use :meth:`open_read`). What an event loop may call. Raises NotFound,
        IsADirectory, StoreError.
        """
        path = self.normalize(path)
        if not self.store.capabilities.native_dirs or self._pending(path) is not None:
            return None
        known = self._known(path)
        if known is None:
            raise NotFound(path)
        if not isinstance(known, Unknown) and known.is_dir:
            raise IsADirectory(path)
        stream = self._quick_call(path, self.store.open_cached)
        if stream is None:
            return None
        try:
            actual = self.store.stream_info(path, stream)
        except BaseException:
            stream.close()
            raise
        if actual is None:
            stream.close()
            return None
        actual = self._settled(path, known, actual)
        handle = self._reader(path, actual)
        handle.adopt(stream, actual)
        self._readers.setdefault(path, []).append(handle)
        return handle

    def _quick_call(self, path: str, call: Callable[..., T], *args: Any) -> T:
        """``call(path, *args)``, a store call of :meth:`read_small` or :meth:`open_cached`,
        with the cache told what its errors say: a name gone (or a parent that is a file) is
        NotFound and cached as missing, a folder is IsADirectory."""
        try:
            return call(path, *args)
        except (NotFound, NotADirectory) as exc:
            self._invalidate(path)
            self.cache.put_stat(path, MISSING)
            raise NotFound(path) from exc
        except IsADirectory:
            self._invalidate(path)
            raise

    def _settled(self, path: str, known: Entry | Unknown, actual: Entry) -> Entry:
        """The entry of the version a quick read found (``actual``), cached: the cached
        one (``known``) where it is that version, as it may have finer times (listings
        give ms); else ``actual``, replacing what the cache held."""
        if isinstance(known, Unknown):
            self.cache.put_stat(path, actual)
            return actual
        if not same_version(actual, known):
            self.cache.invalidate(path)
            self.cache.put_stat(path, actual)
            return actual
        return known

    def _reader(self, path: str, entry: Entry) -> ReadHandle:
        return ReadHandle(
            lambda offset: self.store.open_read(path, offset),
            entry,
            describe=lambda stream: self.store.stream_info(path, stream),
            on_close=self._release_reader,
            # Only where no copy ever replaces the stream (keep): its descriptor stays.
            fd_of=(
                (lambda stream: self.store.stream_fd(path, stream))
                if self.capabilities.held_reads
                else None
            ),
        )

    def _content(self, path: str, entry: Entry | None = None) -> BinaryIO:
        """A reader of ``path``'s committed content for a policy (``Operation.source`` of
        a move or a copy): opened at its first read, not counted among the open readers
        (a move does not keep a copy for it)."""
        entry = entry or self._stat(path)
        reader = ReadHandle(lambda offset: self.store.open_read(path, offset), entry)
        return cast(BinaryIO, reader)

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
            return read_full(stream, size)

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
        shared: bool = False,
    ) -> WriteHandle:
        """Open a file for writing (see :mod:`davstore.vfs.handles` for the commit model).

        ``truncate`` starts from empty (else the old content is kept and can be changed in
        place or appended to); ``create`` allows a new file; ``exclusive`` refuses an existing
        one. ``shared`` joins the file other shared handles have open on ``path``, as
        descriptors of one file do (a mount): one stage, each sees the others' writes, a
        commit stores what all wrote. Without it the handle has a stage of its own, as a
        whole-file replacement wants (a PUT): the last commit wins. Raises ReadOnly,
        NotFound (no such file, or no parent folder), AlreadyExists, IsADirectory,
        NotADirectory, InvalidPath, and, when joining with ``truncate``, what
        :meth:`OpenFile.truncate` raises.
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
        with self._lock:
            file = self._shared.get(path) if shared else None
            joined = file is not None
            if file is None:
                file = OpenFile(
                    self,
                    path,
                    existing_size=None if entry is None else (entry.size or 0),
                    truncate=truncate,
                    max_size=self.file_size_limit,
                    shared=shared,
                )
                self._writers[file] = None
                if shared:
                    self._shared[path] = file
            handle = WriteHandle(file)
        if joined and truncate:
            try:
                file.truncate(0)
            except BaseException:
                handle.abort()
                raise
        if entry is None and not joined:
            self._changed_in(parent(path))  # the new name shows at once (pending)
        return handle

    @property
    def file_size_limit(self) -> int | None:
        """The biggest file this share takes: the share's ``max_file_size`` or the store's
        own limit, whichever is smaller (None: the stage's file system decides)."""
        limits = [n for n in (self.max_file_size, self.capabilities.max_file_size) if n]
        return min(limits) if limits else None

    def fstat(self, handle: ReadHandle | WriteHandle) -> Entry:
        """The entry of what an open handle reads or writes (``fstat``): a write handle's
        file as written so far by all its handles, a reader's version, also once its name
        was removed or replaced."""
        if isinstance(handle, ReadHandle):
            return handle.entry
        file = handle.file
        entry = None if file.detached else self._lookup(file.path)
        if file.mtime is not None or entry is None or entry.is_dir:
            return ObjectInfo(file.path, False, file.size, file.mtime, None)
        return dataclasses.replace(entry, size=file.size)

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
        as pending meanwhile. The small-PUT path's write (fast/put.py): one call instead
        of open_write/write/close. Raises what :meth:`open_write` raises, FileTooLarge, and
        the store's errors.
        """
        path = self.normalize(path)
        self._check_writable(path)
        if not path:
            raise IsADirectory(path)
        limit = self.file_size_limit
        if limit is not None and len(data) > limit:
            raise FileTooLarge(path, f"the file would exceed {limit} bytes")
        entry = self._lookup(path) or self._pending(path)
        if entry is not None and entry.is_dir:
            raise IsADirectory(path)
        if entry is None:
            self._require_folder(parent(path))
        upload = self._start_upload(path)
        try:
            if data:
                write_all(upload.file, data)
            if self._policies:
                info = self._commit_upload(path, upload, created=entry is None)
            else:
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

    def _committed(self, file: OpenFile, info: ObjectInfo, *, created: bool) -> None:
        self._committed_path(file.path, info, created=created)

    def _committed_path(self, path: str, info: ObjectInfo, *, created: bool) -> None:
        self._stale_readers(path, tree=False)
        self.cache.invalidate(path)
        if created:
            self._changed_in(parent(path), info)
        self.cache.put_stat(path, info)
        self._emit(Action.CREATED if created else Action.MODIFIED, path)

    def _release(self, file: OpenFile) -> None:
        """Forget an open file whose last handle is done (called with ``_lock`` held, so
        no open joins it meanwhile)."""
        self._writers.pop(file, None)
        if self._shared.get(file.path) is file:
            del self._shared[file.path]

    def _handles_within(self, path: str) -> list[OpenFile]:
        return [f for f in list(self._writers) if is_within(f.path, path)]

    def _detach(self, path: str) -> None:
        """The name ``path`` (and below) is removed or replaced: the files open for writing
        there never commit again, and a later open starts a new file."""
        with self._lock:
            for file in self._handles_within(path):
                file.detached = True
                if self._shared.get(file.path) is file:
                    del self._shared[file.path]

    def _keep_readers(self, path: str) -> None:
        """Before the name ``path`` (and below) is removed or replaced: readers open there
        keep the version they read. Where the store's streams outlive the name
        (``held_reads``) they already do; elsewhere each copies it into a spool. Raises
        InsufficientStorage when the spool has no room for a copy (the name is then left
        as it is), and the store's errors."""
        if not self._readers or self.capabilities.held_reads:
            return
        handles = [
            h
            for name, hs in self._readers.copy().items()
            if is_within(name, path)
            for h in list(hs)
            if not h.kept
        ]
        for handle in handles:
            size = handle.entry.size or 0
            where = self.spool_dir or tempfile.gettempdir()
            if size > self.spool_memory and shutil.disk_usage(where).free < size:
                raise InsufficientStorage(
                    path, "no room in the spool to keep the content an open file reads"
                )
            spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - the handle closes it
                max_size=self.spool_memory, dir=self.spool_dir, prefix=INTERNAL_PREFIX
            )
            try:
                handle.keep(spool)  # type: ignore[arg-type]
            except (Conflict, NotFound):
                # The version it read is gone already (changed or removed behind the VFS):
                # nothing left to keep, and no reason to refuse the change.
                logger.info("an open reader of %r lost its version before it was kept", path)
            except DavstoreError:
                raise
            except OSError as exc:
                raise from_exception(exc, path) from exc

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
        if not self.capabilities.native_dirs:
            marker = join(path, DIRECTORY_MARKER)
            if len(marker.encode()) > self.capabilities.max_path_bytes:
                raise NameTooLong(path, "no room for the folder's marker within the store's limit")
        try:
            self.store.make_dir(path)
        finally:
            self._invalidate(path)
            self._changed_in(path)  # a new folder's time: when it was made
            self._changed_in(parent(path))
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
            self._apply(Kind.DELETE, path, lambda: self.store.remove_dir(path), is_dir=True)
        finally:
            self._invalidate(path, tree=True)
            self._changed_in(parent(path))
        self._folders_moved(path, None)
        self._emit(Action.FOLDER_DELETED, path, is_dir=True, files=())

    # -- removing --------------------------------------------------------------------

    def remove(self, path: str) -> None:
        """Remove a file. Files open for writing there are detached: they never commit
        again; readers open on it keep reading what they opened (POSIX).

        Raises ReadOnly, NotFound, IsADirectory, NotSupported (store cannot delete),
        InsufficientStorage (no room to keep what an open reader reads: nothing removed).
        """
        path = self.normalize(path)
        self._check_writable(path)
        entry = self._lookup(path)
        handles = self._handles_within(path) if path else []
        if entry is None:
            self._detach(path)
            if handles:
                return
            raise NotFound(path)
        if entry.is_dir:
            raise IsADirectory(path)

        def prepare() -> None:
            self._keep_readers(path)
            self._detach(path)

        def delete() -> None:
            prepare()
            self.store.delete(path)

        try:
            self._apply(Kind.DELETE, path, delete, prepare=prepare)
        finally:
            self._invalidate(path)
            self._changed_in(parent(path))
        self._emit(Action.DELETED, path)

    def remove_tree(self, path: str) -> None:
        """Remove a file, or a folder with everything in it.

        However big the folder: the files go in batches while the tree is walked (memory
        stays bounded), each folder once it is empty. A member that cannot be removed
        does not stop the rest; the folders above it stay, and PartlyRemoved names each
        member that failed. Raises as :meth:`remove` and :meth:`rmdir`.
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

        def prepare() -> None:
            self._keep_readers(path)
            self._detach(path)

        # What the change event tells of the files removed (the delete itself streams,
        # and a policy may do it otherwise: the trash moves the folder whole).
        files = self._files_within(path)

        def remove() -> None:
            prepare()
            trees.remove(self.store, path)

        try:
            self._apply(Kind.DELETE, path, remove, is_dir=True, prepare=prepare)
        except PartlyRemoved as exc:
            logger.warning("removed %s in part: %s", path, exc)
            self._invalidate(path, tree=True)
            self._tell_partly_removed(path, files)
            raise
        finally:
            self._invalidate(path, tree=True)
            self._changed_in(parent(path))
        self._folders_moved(path, None)
        self._emit(Action.FOLDER_DELETED, path, is_dir=True, files=files)

    def _tell_partly_removed(self, folder: str, files: tuple[str, ...] | None) -> None:
        """The change events of a removal of ``folder`` that left members behind
        (PartlyRemoved; ``files``: what it held before): DELETED for each file that went
        from a folder that stays, FOLDER_DELETED for each folder below that went whole
        (with its files). The journal, sync clients and the other processes' caches learn
        what is gone, and that ``folder`` is still there. Nothing when the files were not
        named (``files`` None: past ``max_tree_entries``, or nobody listens), or what is
        left cannot be listed: readers then learn it when they revalidate."""
        if not files:
            return
        left_files: set[str] = set()
        left_folders = {folder}
        try:
            for entry in self.walk(folder):
                (left_folders if entry.is_dir else left_files).add(entry.name)
        except (OSError, DavstoreError) as exc:
            logger.info("what was removed of %s is not told: %s", folder, exc)
            return
        alone: list[str] = []
        within: dict[str, list[str]] = {}  # a folder that went whole: its files
        for name in files:
            if name in left_files:
                continue
            gone_above = None
            above = parent(name)
            while above not in left_folders and is_within(above, folder):
                gone_above = above  # the highest folder that went, so far
                above = parent(above)
            if gone_above is None:
                alone.append(name)
            else:
                within.setdefault(gone_above, []).append(name)
        for name in alone:
            self._emit(Action.DELETED, name)
        for name, held in within.items():
            self._folders_moved(name, None)
            self._emit(Action.FOLDER_DELETED, name, is_dir=True, files=tuple(held))

    # -- rename and copy -------------------------------------------------------------

    def _prepare_target(
        self,
        source: str,
        target: str,
        source_entry: Entry,
        *,
        replace: bool,
        verb: str,
        onto_folder: bool = False,
    ) -> bool:
        """Checks shared by rename and copy; clears a target that is to be replaced.
        Answers whether it removed an (empty) folder there; with ``onto_folder`` a folder
        there stays, for the folder ``source`` to be copied onto it."""
        if not target:
            raise PermissionDenied(target, f"cannot {verb} onto the share root")
        if source_entry.is_dir and is_within(target, source):
            raise InvalidPath(target, f"cannot {verb} a folder into itself")
        self._require_folder(parent(target))
        target_entry = self._lookup(target) or self._pending(target)
        if target_entry is None:
            return False
        if not replace:
            raise AlreadyExists(target)
        if target_entry.is_dir and not source_entry.is_dir:
            raise IsADirectory(target)
        if not target_entry.is_dir and source_entry.is_dir:
            raise NotADirectory(target)
        if not target_entry.is_dir:
            return False
        if onto_folder:
            if is_within(source, target):
                raise InvalidPath(target, f"cannot {verb} a folder onto a folder holding it")
            return False
        self.rmdir(target)
        return True

    def rename(self, source: str, target: str, *, replace: bool = True) -> None:
        """Move a file or folder, replacing a file or an empty folder at ``target``.

        Native where the store renames; otherwise copy then delete. A folder is streamed
        there whatever its size: each member copied while the tree is walked, then the
        source removed in batches. When a member cannot be copied the move is undone: the
        source is not removed at all, what the copy made at ``target`` is removed again
        (an empty folder it replaced is made again), and PartlyCopied names each member
        that failed; its ``left`` tells what of that removal failed too, if any. Such a
        move leaves two change events that cancel out, COPIED (``source`` to ``target``,
        the files the copy made) then FOLDER_DELETED (``target``, the same files there),
        so every reader that may have seen the copy (caches of other processes through the
        journal, sync clients, the activity log) is told it is gone; only COPIED when some
        of it could not be removed. No DELETE policy runs on that removal (the trash keeps
        nothing of it: all of it is still at ``source``). When everything was copied but
        the source, or members of it, cannot be removed, the move stands (policies
        committed, event emitted) and PartlyRemoved then names what was left behind.
        Open write handles on ``source`` are committed first and then follow the file.
        Raises ReadOnly, NotFound, AlreadyExists (no ``replace``), IsADirectory,
        NotADirectory, DirectoryNotEmpty, InvalidPath (into itself).
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
        replaced = self._prepare_target(source, target, source_entry, replace=replace, verb="move")
        is_dir = source_entry.is_dir
        files = None
        named = None  # what the change event tells of the files moved
        if is_dir and native:
            files = self._files_within(source)
        elif is_dir and self._listeners:
            named = _Named(self.max_tree_entries)
        left: list[PartlyRemoved] = []
        undone: list[PartlyCopied] = []  # the copy that failed, its partial copy removed

        def move() -> None:
            # Readers keep what they read: of the file replaced, and of the source where it
            # is copied then deleted. A writer of the file replaced never commits over the
            # new one.
            self._keep_readers(target)
            if not native:
                self._keep_readers(source)
            try:
                partly = self._store_move(source, target, is_dir, named, take_back=True)
            except PartlyCopied as exc:
                undone.append(exc)
                raise
            if partly is not None:
                left.append(partly)

        # A file's content, for a policy that checks what a move over a name brings there.
        content = None
        if not is_dir and Kind.MOVE in self._policies:
            content = self._content(source, source_entry)
        try:
            self._apply(
                Kind.MOVE,
                source,
                move,
                is_dir=is_dir,
                target=target,
                undo=lambda: self._undo_move(source, target, is_dir),
                source=content,
            )
        except Exception:
            if undone:  # (whatever a policy made of its PartlyCopied)
                self._moved_back(source, target, undone[0], named, remake=replaced)
            raise
        finally:
            if content is not None:
                content.close()
            self._invalidate(source, tree=True)
            self._invalidate(target, tree=True)
            self._changed_in(parent(source))
            self._changed_in(parent(target))
        self._folders_moved(source, target)
        self._detach(target)
        self._retarget(source, target)
        if named is not None:
            files = named.files()
        self._emit(Action.MOVED, source, is_dir=is_dir, target=target, files=files)
        if left:
            logger.warning("moved %s to %s: %s", source, target, left[0])
            self._tell_left_behind(source, is_dir)
            raise left[0]

    def _tell_left_behind(self, source: str, is_dir: bool) -> None:
        """After a move whose source could not all be removed (PartlyRemoved), what is
        left there, told as made (FOLDER_CREATED, CREATED: the source first, then each
        member): the MOVED event told the journal, sync clients and the other processes'
        caches that the source went."""
        if not self._listeners:
            return
        try:
            if self._lookup(source) is None:
                return
            self._emit(Action.FOLDER_CREATED if is_dir else Action.CREATED, source, is_dir=is_dir)
            for entry in self.walk(source) if is_dir else ():
                made = Action.FOLDER_CREATED if entry.is_dir else Action.CREATED
                self._emit(made, entry.name, is_dir=entry.is_dir)
        except (OSError, DavstoreError) as exc:
            logger.info("what is left of %s is not told: %s", source, exc)

    def _store_move(
        self,
        source: str,
        target: str,
        is_dir: bool,
        named: _Named | None = None,
        *,
        take_back: bool = False,
    ) -> PartlyRemoved | None:
        """Move in the store: native, else copy then delete (a folder streamed both ways,
        ``named`` told each member copied). Answers what of the source could not be removed
        once everything was copied (a file's, or a folder's members); raises PartlyCopied
        (the source untouched), with ``take_back`` once what the copy made at ``target``
        is removed again (:meth:`_take_back`)."""
        if self.capabilities.rename:
            self.store.rename(source, target)
        elif not is_dir:
            self.store.copy(source, target)
            try:
                self.store.delete(source)
            except DavstoreError as exc:
                # The target holds the file now: the move stands (a failure here would have
                # the policies undo a change the store made, and the trash let go of the
                # version of the file the copy replaced), and the source is left behind.
                return PartlyRemoved(
                    source,
                    f"moved, but the source could not be removed ({exc.reason})",
                    failures=[(source, exc)],
                )
        else:
            try:
                trees.copy(self.store, source, target, copied=named.add if named else None)
            except PartlyCopied as exc:
                if take_back:
                    raise self._take_back(target, exc) from exc
                raise
            try:
                trees.remove(self.store, source)
            except PartlyRemoved as exc:
                return exc
        return None

    def _take_back(self, target: str, failed: PartlyCopied) -> PartlyCopied:
        """Remove what a folder move's copy that ``failed`` made at ``target``, in the store
        (no policies, no events: :meth:`rename` tells them). Writers open below ``target``
        meanwhile never commit, readers keep what they read. Answers the error the move
        raises: a PartlyCopied of the same members whose reason says nothing was moved, or,
        when the removal failed too, whose ``left`` and reason say that."""
        try:
            self._keep_readers(target)
            self._detach(target)
            trees.remove(self.store, target)
        except DavstoreError as exc:
            logger.error(
                "a move's copy to %s failed (%s), and what it made there stays: %s",
                target,
                failed.reason,
                exc,
            )
            return PartlyCopied(
                failed.path,
                f"{failed.reason}, and what was copied to {target!r} could not all be"
                f" removed ({exc.reason})",
                failures=failed.failures,
                count=failed.count,
                left=exc,
            )
        finally:
            self._invalidate(target, tree=True)
            self._folders_moved(target, None)
        return PartlyCopied(
            failed.path,
            f"{failed.reason}: nothing was moved",
            failures=failed.failures,
            count=failed.count,
        )

    def _moved_back(
        self,
        source: str,
        target: str,
        failed: PartlyCopied,
        named: _Named | None,
        *,
        remake: bool,
    ) -> None:
        """After :meth:`_take_back`: the events of a folder move undone (see :meth:`rename`),
        and the empty folder it replaced made again."""
        files = named.files() if named is not None else None
        self._emit(Action.COPIED, source, is_dir=True, target=target, files=files)
        if failed.left is not None:
            return  # (logged by _take_back)
        first = f" (first {failed.failures[0][1]})" if failed.failures else ""
        logger.warning("moving %s to %s was undone: %s%s", source, target, failed, first)
        moved = None if files is None else tuple(target + f[len(source) :] for f in files)
        self._emit(Action.FOLDER_DELETED, target, is_dir=True, files=moved)
        if remake:
            try:
                self.mkdir(target)
            except DavstoreError as exc:
                logger.warning(
                    "the folder %s a failed move replaced is not made again: %s", target, exc
                )

    def _undo_move(self, source: str, target: str, is_dir: bool) -> None:
        """Put a moved entry back (a policy's commit failed after the store move)."""
        try:
            partly = self._store_move(target, source, is_dir)
            if partly is not None:
                logger.error("moving %s back to %s left members behind: %s", target, source, partly)
        finally:
            self._invalidate(source, tree=True)
            self._invalidate(target, tree=True)

    def _retarget(self, source: str, target: str) -> None:
        with self._lock:  # one MOVE at a time retargets
            for file in self._handles_within(source):
                shared = self._shared.get(file.path) is file
                if shared:
                    del self._shared[file.path]
                file.path = target + file.path[len(source) :]
                if shared:
                    self._shared[file.path] = file

    def copy(
        self,
        source: str,
        target: str,
        *,
        replace: bool = True,
        recursive: bool = True,
        onto_folder: bool = False,
    ) -> None:
        """Copy a file, or a folder (with its content unless ``recursive`` is false).

        A folder's tree is copied while it is walked, whatever its size (memory stays
        bounded); each file is a new file at ``target`` (the ``CREATE`` policies run for
        each one). A member that cannot be copied does not stop the rest (RFC 4918 section
        9.8.8): PartlyCopied names each one, after the change event of what was copied.
        Raises as :meth:`rename`.

        ``onto_folder`` (with ``replace``): a folder at ``target``, even one that is not
        empty, becomes the copy, as if it had been removed first (RFC 4918 section 9.8.4)
        but without ever being missing. What it holds that the copy would not (every
        member without ``recursive``; else each one the source lacks, or has as the other
        kind) is removed first, each through :meth:`remove` or :meth:`remove_tree` (their
        ``DELETE`` policies: the site guard may refuse, the trash keeps it; their change
        events); then the tree is copied onto it, a file the target has being replaced
        inside the ``REPLACE`` policies (the trash keeps its version; the guard validates
        the new content), a new one inside the ``CREATE`` policies. Both walks stream.
        PartlyCopied then names each member that could not be removed (at the target) or
        copied (at the source); what could, was. One ``COPIED`` change for the copy.
        """
        source, target = self.normalize(source), self.normalize(target)
        self._check_writable(target)
        for handle in self._handles_within(source):
            handle.commit()
        source_entry = self._stat(source)
        if source == target:
            raise AlreadyExists(target, "source and target are the same")
        onto_folder = onto_folder and source_entry.is_dir
        self._prepare_target(
            source, target, source_entry, replace=replace, verb="copy", onto_folder=onto_folder
        )
        if source_entry.is_dir:
            onto = onto_folder and self._lookup(target) is not None
            self._copy_folder(source, target, recursive=recursive, onto=onto)
            return
        kind = Kind.CREATE
        if self._policies and self._lookup(target) is not None:
            kind = Kind.REPLACE
        content = None
        if kind in self._policies:
            content = self._content(source, source_entry)
        try:
            self._apply(kind, target, lambda: self.store.copy(source, target), source=content)
        finally:
            if content is not None:
                content.close()
            self._invalidate(target, tree=True)
            self._changed_in(parent(target))
        self._emit(Action.COPIED, source, target=target)

    def _copy_folder(self, source: str, target: str, *, recursive: bool, onto: bool) -> None:
        """:meth:`copy` of folder ``source`` to ``target``: not there, or (``onto``) a
        folder to make the copy of ``source``."""
        named = _Named(self.max_tree_entries) if recursive and self._listeners else None
        failures: list[tuple[str, DavstoreError]] = []
        count = 0

        def failed(name: str, exc: DavstoreError) -> None:
            nonlocal count
            if isinstance(exc, PartlyDone):
                count += exc.count
                failures.extend(exc.failures[: PartlyCopied.KEPT - len(failures)])
                return
            count += 1
            if len(failures) < PartlyCopied.KEPT:
                failures.append((name, exc))

        copy_file = None
        if onto and (Kind.CREATE in self._policies or Kind.REPLACE in self._policies):
            copy_file = self._copy_member_onto
        elif Kind.CREATE in self._policies:
            copy_file = self._copy_member
        try:
            if onto:
                self._clear_for_copy(source, target, recursive=recursive, failed=failed)
            if recursive:
                trees.copy(
                    self.store,
                    source,
                    target,
                    copy_file=copy_file,
                    copied=named.add if named else None,
                )
            elif not onto:
                self.store.make_dir(target)
        except PartlyCopied as exc:
            failed(source, exc)
        finally:
            self._invalidate(target, tree=True)
            if onto:
                self._changed_in(target)
            self._changed_in(parent(target))
        files = named.files() if named is not None else None if recursive else ()
        self._emit(Action.COPIED, source, is_dir=True, target=target, files=files)
        if count:
            partly = PartlyCopied(source, failures=failures, count=count)
            logger.warning("copied %s to %s: %s", source, target, partly)
            raise partly

    def _clear_for_copy(
        self,
        source: str,
        target: str,
        *,
        recursive: bool,
        failed: Callable[[str, DavstoreError], None],
    ) -> None:
        """Remove from folder ``target`` what a copy of ``source`` onto it would not hold
        (see :meth:`copy`), each member through :meth:`remove` or :meth:`remove_tree`; a
        member that cannot be removed is told to ``failed``."""

        def keeps(entry: ObjectInfo) -> bool:
            if not recursive:
                return False
            found = self.store.find(source + entry.name[len(target) :])
            return found is not None and found.is_dir == entry.is_dir

        def remove(entry: ObjectInfo) -> None:
            if entry.is_dir:
                self.remove_tree(entry.name)
            else:
                self.remove(entry.name)

        trees.prune(self.store, target, keeps=keeps, remove=remove, failed=failed)

    def _copy_member(self, entry: Entry, dest: str) -> None:
        """One file of a folder's copy: a new file at ``dest``, inside the CREATE policies."""
        self._copy_file(Kind.CREATE, entry, dest)

    def _copy_member_onto(self, entry: Entry, dest: str) -> None:
        """One file of a folder's copy onto a folder: a new file at ``dest``, or one
        replacing the file there, inside the CREATE or REPLACE policies."""
        kind = Kind.REPLACE if self.store.find(dest) is not None else Kind.CREATE
        self._copy_file(kind, entry, dest)

    def _copy_file(self, kind: Kind, entry: Entry, dest: str) -> None:
        if kind not in self._policies:
            self.store.copy(entry.name, dest)
            return
        content = self._content(entry.name, entry)
        try:
            self._apply(kind, dest, lambda: self.store.copy(entry.name, dest), source=content)
        finally:
            content.close()


def _as_stream(source: BinaryIO | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
