"""Tell the kernel at once what changed behind the mount.

The kernel answers ``stat``, ``open`` and name lookups from its own cache for
``entry_timeout`` / ``attr_timeout`` / ``negative_timeout`` seconds without asking the
mount, so a file the site saved, or another davstore process changed, would stay unseen
there (a cached "no such file", an old size) however quickly the VFS learned of it. A
:class:`KernelNotifier` watches the VFS (:meth:`davstore.vfs.VFS.watch`): every path the
VFS forgets for a change made elsewhere (the share's journal, Redis, a whole-cache drop) is
dropped from the kernel's cache too, through :class:`~davstore.frontends.fuse.binding.KernelCache`:

- the path's name in its folder (known, or known missing), and for a folder all the
  kernel holds below it; the folder's attributes with it;
- the path's attributes and cached pages (a file that got new content: ``cat`` reads it,
  ``stat`` shows its size);
- a folder above it the kernel knows as missing (a save that made ``a/b/`` for
  ``a/b/c.txt``): that name, and nothing below it is cached then.

The work happens on a thread of its own, never in a FUSE callback (libfuse forbids it:
the kernel may wait for that callback). That thread also asks the VFS every
:data:`INTERVAL` seconds to catch up on what the share's other processes announced
(:meth:`davstore.vfs.VFS.refresh`; with the host-peers file that is one 512-byte
comparison): while the kernel answers from its cache no callback comes to do it.
Where the binding cannot notify (libfuse 2, fusepy) nothing is started and the kernel's
timeouts bound what stays unseen.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
from collections.abc import Callable

from davstore.frontends.fuse.binding import ROOT_NODE, KernelCache, kernel_cache
from davstore.vfs import VFS

__all__ = ["INTERVAL", "KernelNotifier"]

logger = logging.getLogger(__name__)

#: Seconds between two looks at what the share's other processes announced.
INTERVAL = 0.02
#: Paths told at once past which the kernel forgets everything instead.
_MOST = 10_000
#: Seconds :meth:`KernelNotifier.close` waits for a notification under way.
_CLOSE_WAIT = 5.0
#: Seconds the thread waits after a first path for the rest of its burst.
_BURST = 0.005


def _below_any(path: str, folders: set[str]) -> bool:
    """Whether a folder above ``path`` is in ``folders``."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        if path in folders:
            return True
    return False


class KernelNotifier:
    """Drops from the kernel's cache of the mount at ``mountpoint`` what ``vfs`` forgets
    for changes made elsewhere.

    :meth:`start` is called from the mount's ``init`` callback (where the binding can
    reach the mount's handle); :meth:`close` before the mount is torn down (``destroy``);
    after it, nothing reaches libfuse. :attr:`told` counts the paths told to the kernel
    (tests read it), :attr:`available` says whether the binding can notify at all.
    """

    def __init__(self, vfs: VFS, mountpoint: str, *, interval: float = INTERVAL) -> None:
        self.vfs = vfs
        self.mountpoint = mountpoint
        self.interval = interval
        self.told = 0
        self.available = False
        self._kernel: KernelCache | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unwatch: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"KernelNotifier({self.mountpoint!r})"

    def start(self) -> None:
        """Reach the mount's kernel cache (in ``init``) and start following the VFS."""
        kernel = kernel_cache()
        if kernel is None:
            logger.info(
                "this libfuse cannot notify the kernel: changes made behind the mount show "
                "there within the cache TTL"
            )
            return
        self._kernel = kernel
        self.available = True
        self._unwatch = self.vfs.watch(self._watched)
        self._thread = threading.Thread(target=self._run, name="davstore-kernel", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop; nothing reaches libfuse afterwards (idempotent)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._stop.set()
        # A notification under way may wait in the kernel for a request nobody answers
        # any more (the mount going away): give it a bounded time, never a deadlock.
        held = self._lock.acquire(timeout=_CLOSE_WAIT)
        self._kernel = None
        if held:
            self._lock.release()
        else:
            logger.warning("a kernel notification did not end in %s s", _CLOSE_WAIT)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_CLOSE_WAIT)

    def _watched(self, path: str, tree: bool) -> None:
        self._queue.put((path, tree))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=self.interval)
                self._stop.wait(_BURST)  # the rest of a burst (a journal batch, a round)
            except queue.Empty:
                first = None
            try:
                self.vfs.refresh()
                batch: dict[str, bool] = {}
                if first is not None:
                    batch[first[0]] = first[1]
                while True:
                    try:
                        path, tree = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch[path] = batch.get(path, False) or tree
                if len(batch) > _MOST:
                    tops = {path.split("/", 1)[0] for path in batch}
                    batch = {top: True for top in tops}
                dropped: set[str] = set()
                for path in sorted(batch):
                    if self._stop.is_set():
                        return
                    if _below_any(path, dropped):
                        continue  # the kernel dropped all below a name it was told of
                    self._tell(path)
                    if path:
                        dropped.add(path)
            except Exception:
                logger.exception("telling the kernel what changed failed")

    def _tell(self, path: str) -> None:
        """Drop ``path`` (canonical: ``""`` is the root) from the kernel's cache."""
        node = ROOT_NODE
        parts = path.split("/") if path else []
        for depth, name in enumerate(parts[:-1]):
            folder = "/".join(parts[: depth + 1])
            try:
                found = os.lstat(self._in_mount(folder))
            except FileNotFoundError:
                # Known missing (or gone): that name, and nothing below it is cached.
                self._call(KernelCache.forget_name, node, name)
                return
            except OSError as exc:
                logger.debug("cannot find %s in the mount: %s", folder, exc)
                return
            node = found.st_ino
        self._call(KernelCache.forget_node, "/" + path)
        if parts:
            self._call(KernelCache.forget_name, node, parts[-1])
        self.told += 1

    def _in_mount(self, path: str) -> bytes:
        return os.fsencode(self.mountpoint) + b"/" + path.encode("utf-8", "surrogateescape")

    def _call(self, forget: Callable[..., int], *args: object) -> None:
        with self._lock:
            kernel = self._kernel
            if kernel is None:
                return
            result = forget(kernel, *args)
        if result not in (0, -errno.ENOENT):  # ENOENT: nothing cached there
            logger.debug("the kernel answered %s", result)
