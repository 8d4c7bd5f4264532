"""Mounting and unmounting: process lifecycle, kernel tuning and clean shutdown.

:func:`mount` daemonises by default and returns once the kernel has accepted the mount
(or with the mount process's error), so a script can use the folder on the next line.
The VFS is built after the fork, in the process that serves it: Django, database
connections and backend clients never cross a ``fork``.

Shutdown: SIGTERM, SIGINT and SIGHUP commit every open file (``VFS.flush_all``), then
unmount; when the mount is busy the FUSE loop is ended and the mount detached, so the
process exits (later calls on files still open there fail with ENOTCONN).
``davstore umount`` (``fusermount3 -u``) unmounts an idle mount; open files are committed
as the process ends. A killed mount process (``kill -9``) commits nothing: the store
keeps the previous version of every file being written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from davstore.vfs import VFS

if TYPE_CHECKING:
    from davstore.frontends.fuse.operations import Operations

__all__ = ["MountOptions", "fuse_options", "mount", "umount"]

logger = logging.getLogger(__name__)

_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_IO_SIZE = 1 << 20
#: The kernel's timeouts on a libfuse that cannot notify the kernel (libfuse 2).
UNTOLD_TTL = 1.0
#: libfuse 3's worker threads per mount (its default ``max_threads``).
WORKER_THREADS = 10


@dataclasses.dataclass(frozen=True, slots=True)
class MountOptions:
    """How to mount.

    :param foreground: serve in this process until unmounted (else daemonise).
    :param allow_other: let other users in (needs root or ``user_allow_other`` in
        /etc/fuse.conf); the kernel then checks the reported modes (owner read-write,
        others read-only).
    :param uid: owner reported for every file (default: the mounting user).
    :param gid: group reported for every file (default: the mounting user's group).
    :param cache_ttl: seconds the kernel keeps names, attributes and absences (at most
        :data:`UNTOLD_TTL` on libfuse 2); the same TTL as the VFS's metadata cache. What
        changes behind the mount is dropped from the kernel's cache as the VFS learns of it
        (the share's journal, its revalidation).
    :param read_only: mount read-only (EROFS for every change, from the kernel and the VFS).
    """

    foreground: bool = False
    allow_other: bool = False
    uid: int | None = None
    gid: int | None = None
    cache_ttl: float = 3600.0
    read_only: bool = False


def fuse_options(options: MountOptions, libfuse_version: tuple[int, int]) -> dict[str, Any]:
    """The libfuse mount options for ``options`` on the given libfuse version.

    - ``fsname``/``subtype`` ``davstore``: ``mount`` and ``df`` show ``davstore`` as the
      type;
    - with ``allow_other``, ``default_permissions``: the kernel checks the reported modes,
      so other users only read. Without ``allow_other`` only the mounting user gets in and
      what that user may do is the share's policy (read-only: ``ro`` and the VFS's EROFS),
      not modes; ``default_permissions`` would also make the kernel fetch a folder's
      attributes again after every change in it (one more call per file created);
    - big requests: libfuse 3 negotiates 1 MiB writes (and direct reads) by itself;
      libfuse 2 needs ``big_writes`` and gets 128 KiB; page-cache reads come in
      read-ahead windows (128 KiB by default, ``/sys/class/bdi/<dev>/read_ahead_kb``);
    - ``attr_timeout``/``entry_timeout``/``negative_timeout`` = the cache TTL (the mount
      tells the kernel what changed behind it: notify.py); on libfuse 2, which cannot,
      at most :data:`UNTOLD_TTL`;
    - ``auto_cache``: the kernel keeps a file's pages between opens and drops them when
      the size or modification time changed (files of unknown size bypass it);
    - no ``hard_remove``: libfuse renames a file removed or replaced while open to a
      ``.fuse_hidden*`` name and removes that at the last close, so the kernel can still
      ask for the open file's attributes (``fstat``; with ``hard_remove`` libfuse answers
      those ESTALE). The operations take that rename for the removal it stands for
      (``Operations.rename``): the store never holds a ``.fuse_hidden*`` file;
    - libfuse 3: ``max_threads`` and ``max_idle_threads`` both :data:`WORKER_THREADS` (the
      pool's size, libfuse's own default): workers live as long as the mount, as the
      binding's kept thread states assume. Named, not left to the default: libfuse 3.12 to
      3.14 default ``max_idle_threads`` to ``UINT_MAX``, then refuse it at every mount
      with "Ignoring invalid max threads value 4294967295 > max (100000)" on stderr.
      ``max_threads`` exists since 3.12; before, the pool had no bound to name.
    """
    # libfuse 2 cannot tell the kernel what changed behind the mount (notify.py): its
    # kernel entries stay short there, whatever the VFS keeps.
    seconds = options.cache_ttl
    if libfuse_version < (3, 1):
        seconds = min(seconds, UNTOLD_TTL)
    ttl = f"{seconds:g}"
    opts: dict[str, Any] = {
        "fsname": "davstore",
        "subtype": "davstore",
        "attr_timeout": ttl,
        "entry_timeout": ttl,
        "negative_timeout": ttl,
        "auto_cache": True,
    }
    if libfuse_version[0] < 3:
        # libfuse 3 negotiates 1 MiB writes and atomic O_TRUNC by itself.
        opts.update(
            big_writes=True, max_write=_IO_SIZE, max_readahead=_IO_SIZE, atomic_o_trunc=True
        )
    else:
        opts["max_idle_threads"] = WORKER_THREADS
        if libfuse_version >= (3, 12):
            opts["max_threads"] = WORKER_THREADS
    if options.allow_other:
        opts.update(allow_other=True, default_permissions=True)
    if options.read_only:
        opts["ro"] = True
    return opts


def mount(vfs_factory: Callable[[], VFS], mountpoint: str, options: MountOptions) -> int:
    """Mount the VFS that ``vfs_factory`` builds at ``mountpoint``; the exit status.

    In the foreground, serve until unmounted or signalled and return 0 (1 when the mount
    failed). Else fork a daemon, wait until the mount is ready, and return 0, or the
    daemon's error status (its reason is logged here).
    """
    mountpoint = os.path.abspath(mountpoint)
    if not os.path.isdir(mountpoint):
        logger.error("cannot mount on %s: not a folder", mountpoint)
        return 1
    if os.path.ismount(mountpoint):
        logger.error("cannot mount on %s: something is mounted there already", mountpoint)
        return 1
    try:
        importlib.import_module("davstore.frontends.fuse.binding")
    except ImportError as exc:
        logger.error("cannot mount: %s", exc)
        return 1
    if options.foreground:
        return _serve(vfs_factory, mountpoint, options, None)
    return _daemonise(vfs_factory, mountpoint, options)


def _daemonise(vfs_factory: Callable[[], VFS], mountpoint: str, options: MountOptions) -> int:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process
        os.close(read_end)
        status = 1
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            status = _serve_daemon(vfs_factory, mountpoint, options, write_end)
        except BaseException:
            logger.exception("the mount process failed")
        finally:
            os._exit(status)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    if message == "ready":
        return 0
    logger.error("mount on %s failed%s", mountpoint, f": {message}" if message else "")
    return 1


def _serve_daemon(  # pragma: no cover - runs in the forked process
    vfs_factory: Callable[[], VFS], mountpoint: str, options: MountOptions, pipe: int
) -> int:
    def ready() -> None:
        with contextlib.suppress(OSError):
            os.write(pipe, b"ready")
            os.close(pipe)
        _detach_stdio()

    try:
        status = _serve(vfs_factory, mountpoint, options, ready)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.write(pipe, f"{type(exc).__name__}: {exc}".encode())
        raise
    with contextlib.suppress(OSError):
        os.close(pipe)
    return status


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _serve(
    vfs_factory: Callable[[], VFS],
    mountpoint: str,
    options: MountOptions,
    ready: Callable[[], None] | None,
) -> int:
    # Signals go to one thread that commits open files and then unmounts; libfuse's own
    # handlers would unmount first and leave the commit to the end. They are blocked
    # before the VFS is built: a thread it starts (the change journal's follower, the
    # trash's purges) inherits the mask, else a SIGTERM could land there and end the
    # process with the mount left behind and open files not committed.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        return _serve_blocked(vfs_factory, mountpoint, options, ready)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _serve_blocked(
    vfs_factory: Callable[[], VFS],
    mountpoint: str,
    options: MountOptions,
    ready: Callable[[], None] | None,
) -> int:
    from davstore.frontends.fuse.binding import FUSE, LIBFUSE_VERSION
    from davstore.frontends.fuse.notify import KernelNotifier
    from davstore.frontends.fuse.operations import Operations

    vfs = vfs_factory()
    vfs.use_store_workers()
    notifier = KernelNotifier(vfs, mountpoint)

    def started() -> None:
        notifier.start()  # in init: where the binding reaches the mount's handle
        if ready is not None:
            ready()

    operations = Operations(
        vfs,
        uid=options.uid,
        gid=options.gid,
        on_ready=started,
        on_stop=notifier.close,
        shared=options.allow_other,
    )
    kernel = fuse_options(options, LIBFUSE_VERSION)
    logger.info(
        "mounting %s on %s (libfuse %d.%d)%s",
        vfs.describe(),
        mountpoint,
        *LIBFUSE_VERSION,
        " read-only" if options.read_only else "",
    )
    stopper = threading.Thread(
        target=_stop_on_signal,
        args=(vfs, mountpoint, operations),
        name="davstore-signals",
        daemon=True,
    )
    stopper.start()
    try:
        FUSE(operations, mountpoint, raw_fi=True, foreground=True, **kernel)
    except RuntimeError as exc:
        logger.error("libfuse could not mount %s (%s)", mountpoint, exc)
        return 1
    finally:
        notifier.close()
        vfs.flush_all()
        vfs.close()
    logger.info("unmounted %s", mountpoint)
    return 0


def _stop_on_signal(vfs: VFS, mountpoint: str, operations: Operations) -> None:
    signum = signal.sigwait(_SIGNALS)
    logger.info("%s received: committing open files, then unmounting", signal.Signals(signum).name)
    try:
        vfs.flush_all()
    finally:
        if _unmount(mountpoint, lazy=False):
            # Busy (a file is open, or a working folder is inside): end the FUSE loop from
            # within a callback (the only place libfuse allows it); libfuse then detaches
            # the mount. What was written is committed; later calls on files still open
            # there fail with ENOTCONN.
            operations._exit_on_next_call()
            with contextlib.suppress(OSError):
                os.stat(os.path.join(mountpoint, f".davstore-exit-{os.getpid()}"))
            _unmount(mountpoint, lazy=True)


def umount(mountpoint: str, *, lazy: bool = False) -> int:
    """Unmount a FUSE mount (``fusermount3 -u``, else ``fusermount -u``, else ``umount``).

    ``lazy`` detaches a busy mount now and finishes when it is no longer used. Returns 0,
    or 1 with the reason logged.
    """
    mountpoint = os.path.abspath(mountpoint)
    reasons = _unmount(mountpoint, lazy=lazy)
    if reasons:
        logger.error("cannot unmount %s: %s", mountpoint, "; ".join(reasons))
        return 1
    return 0


def _unmount(mountpoint: str, *, lazy: bool) -> list[str]:
    """Try each unmount tool; the reasons they failed (empty when unmounted)."""
    flag = ["-z"] if lazy else []
    commands = [
        [tool, "-u", *flag, mountpoint]
        for tool in ("fusermount3", "fusermount")
        if shutil.which(tool)
    ]
    if shutil.which("umount") and os.geteuid() == 0:
        commands.append(["umount", *(["-l"] if lazy else []), mountpoint])
    reasons = []
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            _wait_unmounted(mountpoint)
            return []
        reasons.append(done.stderr.strip() or f"{command[0]} exited {done.returncode}")
    return reasons or ["no unmount tool found (fusermount3, fusermount, umount)"]


def _wait_unmounted(mountpoint: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not os.path.ismount(mountpoint):
                return
        except OSError:
            return
        time.sleep(0.02)
