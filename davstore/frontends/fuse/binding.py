"""The one import seam for the FUSE binding.

davstore speaks the fusepy API. It prefers mfusepy (the maintained fork, which drives
libfuse 3 or libfuse 2) and falls back to fusepy (libfuse 2 only). Where both libfuse
versions are installed, mfusepy is pointed at libfuse 3 (1 MiB writes, ``renameat2``
flags, atomic ``O_TRUNC``); ``DAVSTORE_FUSE_LIBRARY=fuse`` (or ``fuse3``, or a path) picks
one explicitly, and ``FUSE_LIBRARY_PATH`` is honoured as mfusepy does.

The :class:`FUSE` exported here is the binding's class with three calls widened, so the
operations see what the kernel asked for and not a lossy conversion:

- ``rename`` receives the ``renameat2`` flags (libfuse 3): ``rename(old, new, flags)``;
- ``truncate`` receives the open file (libfuse 3 ``ftruncate``): ``truncate(path, n, fh)``;
- ``utimens`` receives ``(atime_ns, mtime_ns)`` where each is ``None`` for ``UTIME_OMIT``
  and ``UTIME_NOW`` is resolved to the current time (``times`` is ``None`` for "both now").

With mfusepy it also passes more to the kernel, and faster:

- ``readdir`` goes to libfuse in offset mode with ``FUSE_FILL_DIR_PLUS`` (the only way
  libfuse's high-level API hands a filler's attributes on): readdirplus, asked for on every
  listing, so ``ls -l`` needs no lookup per entry;
- attributes are packed into ``struct stat`` bytes with one ``struct.pack`` (getattr; each
  listing once), not one ctypes field per value;
- on libfuse 3 each worker thread keeps its Python thread state between callbacks.

fusepy dispatches through ``operations(name, *args)``; :class:`FUSE` adapts a plain
operations object to that, so an operations class never needs ``__call__`` (mfusepy warns
about one) and never subclasses a binding's ``Operations`` (whose defaults would register
callbacks davstore does not mean to offer).

Importing this module raises ``ImportError`` when no binding or no libfuse is installed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from davstore.frontends.fuse.kept import KeptListings

__all__ = [
    "BINDING",
    "FUSE",
    "LIBFUSE_VERSION",
    "ROOT_NODE",
    "FuseOSError",
    "KernelCache",
    "fuse_exit",
    "fuse_get_context",
    "kernel_cache",
]

_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_READDIR_PLUS = 1
_CAP_READDIRPLUS_AUTO = 1 << 14
_FILL_DIR_PLUS = 2
#: Entries (over all folders) kept in kernel form; the newest folder is kept whatever its size.
_PACKED_ENTRIES_KEPT = 100_000
_STAT_KEYS = (
    *("st_ino", "st_mode", "st_nlink", "st_uid", "st_gid"),
    *("st_size", "st_blksize", "st_blocks"),
)
_TIME_KEYS = ("st_atime", "st_mtime", "st_ctime")


def _libfuse3_path() -> str | None:
    choice = os.environ.get("DAVSTORE_FUSE_LIBRARY", "fuse3")
    if os.sep in choice:
        return choice
    return ctypes.util.find_library(choice)


def _import_mfusepy() -> Any:
    saved = os.environ.get("FUSE_LIBRARY_PATH")
    if saved is None:
        path = _libfuse3_path()
        if path:
            os.environ["FUSE_LIBRARY_PATH"] = path
    try:
        return importlib.import_module("mfusepy")
    finally:
        if saved is None:
            os.environ.pop("FUSE_LIBRARY_PATH", None)


try:
    _lib: Any = _import_mfusepy()
    BINDING = "mfusepy"
    LIBFUSE_VERSION: tuple[int, int] = (_lib.fuse_version_major, _lib.fuse_version_minor)
except (ImportError, OSError, AttributeError) as _mfusepy_error:
    try:
        _lib = importlib.import_module("fuse")
    except (ImportError, OSError) as exc:
        raise ImportError(
            "davstore mount needs mfusepy (pip install 'davstore[fuse]') and libfuse "
            f"(apt-get install fuse3): {_mfusepy_error}; fusepy: {exc}"
        ) from exc
    BINDING = "fusepy"
    LIBFUSE_VERSION = (2, 9)

FuseOSError: type[OSError] = _lib.FuseOSError
fuse_get_context = _lib.fuse_get_context
fuse_exit: Any = getattr(_lib, "fuse_exit", None)


#: The kernel's node number of a mount's root folder (``FUSE_ROOT_ID``).
ROOT_NODE = 1


class KernelCache:
    """What the kernel caches of one mount, and the two ways libfuse 3 lets a file system
    drop it from outside a request (the kernel would else keep it for ``entry_timeout``
    and ``attr_timeout``, whatever changed in the store):

    - :meth:`forget_node`, libfuse's high-level ``fuse_invalidate_path``: the attributes
      and cached pages of a path libfuse has a node for (``fuse_lowlevel_notify_inval_inode``
      on it); a path it has none for is ``-ENOENT``, nothing to drop;
    - :meth:`forget_name`, ``fuse_lowlevel_notify_inval_entry`` on the mount's session: a
      name in a folder, known or known missing (a negative entry), and for a folder all
      the kernel holds below it; the folder's own attributes with it. The folder is named
      by its kernel node number: high-level libfuse reports node numbers as ``st_ino``
      (without ``use_ino``), so ``lstat`` of the folder in the mount tells it, and the
      root is :data:`ROOT_NODE`.

    Both answer 0 or ``-errno`` and must not be called from a callback of the same mount
    (libfuse: the kernel may wait for that callback to end). Made by :func:`kernel_cache`.
    """

    def __init__(self, library: Any, handle: int) -> None:
        self._invalidate_path = library.fuse_invalidate_path
        self._invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._invalidate_path.restype = ctypes.c_int
        session = library.fuse_get_session
        session.argtypes = [ctypes.c_void_p]
        session.restype = ctypes.c_void_p
        self._entry = library.fuse_lowlevel_notify_inval_entry
        self._entry.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
        self._entry.restype = ctypes.c_int
        self._fuse = ctypes.c_void_p(handle)
        self._session = ctypes.c_void_p(session(self._fuse))

    def forget_node(self, path: str) -> int:
        """Drop the attributes and pages of ``path`` (``/a/b``, as the kernel names it)."""
        return int(self._invalidate_path(self._fuse, _name(path)))

    def forget_name(self, folder_node: int, name: str) -> int:
        """Drop ``name`` in the folder whose node number is ``folder_node``."""
        raw = _name(name)
        return int(self._entry(self._session, folder_node, raw, len(raw)))


def kernel_cache() -> KernelCache | None:
    """The kernel cache of the mount whose callback is running (call it from ``init``), or
    None where the binding cannot reach it: fusepy and libfuse 2. (libfuse 2.9's
    high-level ``fuse_invalidate`` does nothing; its low-level notifications take the
    session's channel, which mfusepy does not reach: docs/FUSE.md.)"""
    if BINDING != "mfusepy" or LIBFUSE_VERSION < (3, 1):
        return None
    library = _lib._libfuse
    if not hasattr(library, "fuse_invalidate_path"):
        return None
    handle = library.fuse_get_context().contents.fuse
    return KernelCache(library, handle) if handle else None


def _timespec_ns(ts: Any) -> int | None:
    if ts.tv_nsec == _UTIME_OMIT:
        return None
    if ts.tv_nsec == _UTIME_NOW:
        return time.time_ns()
    return int(ts.tv_sec) * 1_000_000_000 + int(ts.tv_nsec)


def _times(buf: Any) -> tuple[int | None, int | None] | None:
    if not buf:
        return None
    return _timespec_ns(buf.contents.actime), _timespec_ns(buf.contents.modtime)


class _Dispatch:
    """fusepy calls ``operations(name, *args)``; this forwards to a plain object."""

    def __init__(self, operations: Any) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    def __call__(self, op: str, *args: Any) -> Any:
        return getattr(self._operations, op)(*args)


def _path(raw: bytes | None, encoding: str = "utf-8") -> str | None:
    return None if raw is None else raw.decode(encoding, "surrogateescape")


def _fh(fip: Any, raw_fi: bool) -> Any:
    if not fip:
        return None
    return fip.contents if raw_fi else fip.contents.fh


def _name(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _stat_packer(c_stat: Any, c_timespec: Any) -> Callable[[dict[str, int]], bytes]:
    """A function from a fusepy attribute dict (times in ns) to the bytes of the platform's
    ``struct stat``, laid out after the binding's own ctypes definition of it."""
    slots: list[tuple[int, int, str, int]] = []  # offset, size, key, part (0 value, 1 s, 2 ns)
    for key in _STAT_KEYS:
        if hasattr(c_stat, key):
            field = getattr(c_stat, key)
            slots.append((field.offset, field.size, key, 0))
    for key in _TIME_KEYS:
        spec = getattr(c_stat, key + "spec", None)
        if spec is not None:
            for part, field in ((1, c_timespec.tv_sec), (2, c_timespec.tv_nsec)):
                slots.append((spec.offset + field.offset, field.size, key, part))
    slots.sort()
    layout, position = "@", 0
    for offset, size, _, part in slots:
        code = {2: "H", 4: "I", 8: "Q"}[size]
        layout += f"{offset - position}x{code.lower() if part else code}"
        position = offset + size
    packer = struct.Struct(f"{layout}{ctypes.sizeof(c_stat) - position}x").pack
    fields = [(key, part) for _, _, key, part in slots]

    def pack(attrs: dict[str, int]) -> bytes:
        values = []
        for key, part in fields:
            value = attrs.get(key, 0)
            if part == 1:
                value //= 1_000_000_000
            elif part == 2:
                value %= 1_000_000_000
            values.append(value)
        return packer(*values)

    return pack


_kept = threading.local()


def _keep_thread_state() -> None:
    """Keep the calling thread's Python thread state between callbacks.

    A ctypes callback on a thread that Python did not start gets a fresh thread state,
    destroyed when it returns: allocating its frame stack costs an mmap, a munmap and a
    gettid on every call (benchmarks/README.md has the cost per file created). One more
    ``PyGILState_Ensure``, never released, keeps it. libfuse 3 serves from a bounded pool
    of worker threads that live as long as the mount, so this keeps one thread state per
    worker. ``threading.local`` data then survives between callbacks on one worker;
    nothing relies on that (DESIGN §5).
    """
    if not getattr(_kept, "state", False):
        ctypes.pythonapi.PyGILState_Ensure()
        _kept.state = True


if BINDING == "mfusepy":
    #: libfuse 2's workers come and go (a kept thread state would leak with each).
    _KEEP_THREAD_STATES = LIBFUSE_VERSION[0] >= 3
    _pack_stat = _stat_packer(_lib.c_stat, _lib.c_timespec)
    _STAT_SIZE = ctypes.sizeof(_lib.c_stat)
    #: libfuse 3's filler, with the ``struct stat`` passed as bytes.
    _PackedFiller = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, _lib.c_off_t, ctypes.c_int
    )

    class FUSE(_lib.FUSE):  # type: ignore[misc]
        """mfusepy's FUSE with rename flags, ftruncate's handle and exact utimens, and
        attributes passed to the kernel without a ctypes field per value (getattr,
        readdirplus)."""

        def __init__(self, operations: Any, mountpoint: str, **kwargs: Any) -> None:
            self._packed: KeptListings[str | None, tuple[Any, list[tuple[bytes, bytes]]]] = (
                KeptListings(_PACKED_ENTRIES_KEPT, lambda kept: len(kept[1]))
            )
            super().__init__(operations, mountpoint, **kwargs)  # serves until unmounted

        def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
            if _KEEP_THREAD_STATES:
                _keep_thread_state()
            return super()._wrapper(func, *args, **kwargs)

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return int(self.operations.rename(_path(old), _path(new), flags) or 0)

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fh = _fh(fip, self.raw_fi)
            return int(self.operations.truncate(_path(path), length, fh) or 0)

        def utimens_fuse_2(self, path: bytes | None, buf: Any) -> int:
            return int(self.operations.utimens(_path(path), _times(buf)) or 0)

        def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
            return self.utimens_fuse_2(path, buf)

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            if conn:
                info = conn.contents
                # Every readdir with attributes: listings carry them anyway.
                info.want &= ~_CAP_READDIRPLUS_AUTO
            super().init_fuse_3(conn, config)

        def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
            fh = _fh(fip, self.raw_fi)
            ctypes.memmove(buf, _pack_stat(self.operations.getattr(_path(path), fh)), _STAT_SIZE)
            return 0

        def readdir_fuse_3(  # noqa: PLR0917 - libfuse's signature
            self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
        ) -> int:
            """Offset mode, and with each entry's attributes when the kernel asks for them
            (readdirplus): the kernel then needs no lookup per entry (``ls -l``). libfuse
            only passes the attributes on in offset mode with ``FUSE_FILL_DIR_PLUS``."""
            folder = _path(path)
            items = self.operations.readdir(folder, fip.contents.fh, offset)
            entries = self._packed_listing(folder, items)
            plus = _FILL_DIR_PLUS if flags & _READDIR_PLUS else 0
            fill = ctypes.cast(filler, _PackedFiller)
            for index in range(offset, len(entries)):
                name, packed = entries[index]
                if fill(buf, name, packed, index + 1, plus):
                    break
            return 0

        def _packed_listing(self, folder: str | None, items: Any) -> list[tuple[bytes, bytes]]:
            """``items`` in kernel form, kept per folder while the operations answer with
            the same ``items`` object (they do while the listing is unchanged)."""
            found = self._packed.get(folder)
            if found is not None and found[0] is items:
                return found[1]
            packed = [(_name(name), _pack_stat(attrs)) for name, attrs, _ in items]
            self._packed.put(folder, (items, packed))
            return packed

else:

    class FUSE(_lib.FUSE):  # type: ignore[misc, no-redef]
        """fusepy's FUSE over a plain operations object, with exact utimens."""

        def __init__(self, operations: Any, mountpoint: str, **kwargs: Any) -> None:
            super().__init__(_Dispatch(operations), mountpoint, **kwargs)

        def utimens(self, path: bytes | None, buf: Any) -> int:
            return int(self.operations("utimens", _path(path), _times(buf)) or 0)
