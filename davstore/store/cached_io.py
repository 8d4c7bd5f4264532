"""System calls that the kernel answers from its caches, made without releasing the GIL.

CPython releases the GIL around every system call. With one thread that costs nothing;
with several threads that each run some Python between short system calls, every call is
a hand-over: another thread takes the GIL, the caller waits for it to come back when the
call returns (a futex wake and a context switch each way), and a 1 KiB GET made of five
short calls pays for five hand-overs (benchmarks/README.md, "System calls that keep the
GIL", has the figures).

So the local disk's small-request path (store/filesystem.py, and the file mutex of
frontends/webdav/state/sqlite_locks.py, which may use this module: it touches no Storage)
makes its calls through ``ctypes.PyDLL`` (whose functions keep the GIL), but only those that cannot
wait for a device:

- :func:`open_cached`: ``openat2`` with ``RESOLVE_CACHED`` (Linux 5.12), which fails with
  ``EAGAIN`` instead of reading a folder from the disk or revalidating a name; the caller
  then opens it the usual way (the GIL released). Given a ``dir_fd``, the name is resolved
  beneath that folder without following a symbolic link, in the same one call (the local
  disk store's root: store/beneath.py);
- :func:`read_cached`: ``preadv2`` with ``RWF_NOWAIT`` (Linux 4.14), which reads only what
  is in the page cache (``EAGAIN`` when nothing is); the caller reads the rest the usual way;
- :func:`stat_fd` and :func:`close_fd`: ``statx`` and ``close`` of a file opened on a
  local file system (the inode is in memory; nothing is flushed: :class:`HeldWriter`
  releases the GIL to close a file it truncated, which ext4 may start writing back);
- :func:`flock_held`: ``flock`` with ``LOCK_NB`` (a lock held elsewhere is then waited
  for with ``fcntl.flock``, the GIL released);
- on a file system held in memory (tmpfs) also the upload's calls, which never wait for
  a device there: :func:`open_held` (``O_TMPFILE``), :func:`write_held`, :func:`link_held`
  (:class:`HeldWriter`). On a disk they may wait for the journal, and release the GIL.

:func:`local_file_system` says whether a folder is on a file system where that holds
(ext4, xfs, btrfs, tmpfs, ...); network file systems (NFS, SMB, FUSE) revalidate inside
``stat`` and ``close`` and are left to the GIL-releasing calls. Everything here answers
``None`` (or :data:`AVAILABLE` is false) where the platform lacks the calls, and the caller
falls back; nothing changes what is read or written, only who may run meanwhile.

Neither this nor taking the request path's locks out (each a convoy of its own) helps
alone; only together do small requests on several threads run as fast as on one. On the
share the small requests of a local store run on the HTTP server's event loop, one
thread per process (davstore/http/server.py), where the GIL is not handed over
at all; the calls here still spare it a switch into the kernel's scheduler whenever the
loop shares the process with another request's thread.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import sys
from typing import Any, NamedTuple, NoReturn

__all__ = [
    "AVAILABLE",
    "MAX_HELD_BYTES",
    "CachedReader",
    "CachedStat",
    "HeldWriter",
    "close_fd",
    "flock_held",
    "link_held",
    "local_file_system",
    "open_cached",
    "open_held",
    "open_regular",
    "read_cached",
    "read_whole",
    "stat_cached",
    "stat_fd",
    "stat_in_folder",
    "write_held",
]

#: Reads and writes longer than this release the GIL (another thread can run while the
#: kernel copies them).
MAX_HELD_BYTES = 64 * 1024

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (new system calls)
_RESOLVE_CACHED = 0x20
#: RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH: a name given with a
#: ``dir_fd`` is resolved beneath that folder, no symbolic link followed (store/beneath.py).
_RESOLVE_BENEATH = 0x02 | 0x04 | 0x08
_RWF_NOWAIT = 0x08
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_STATX_BASIC_STATS = 0x7FF

#: statfs ``f_type`` of file systems whose stat/close of an open file never wait.
_LOCAL_TYPES = frozenset(
    {
        0xEF53,  # ext2/3/4
        0x58465342,  # xfs
        0x9123683E,  # btrfs
        0xF2F52010,  # f2fs
        0x2FC12FC1,  # zfs
        0x794C7630,  # overlayfs (over local layers)
    }
)
#: ... and those that hold every byte in memory (reads never wait either).
_MEMORY_TYPES = frozenset({0x01021994, 0x858458F6})  # tmpfs, ramfs


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


class _Timestamp(ctypes.Structure):
    _fields_ = (
        ("tv_sec", ctypes.c_int64),
        ("tv_nsec", ctypes.c_uint32),
        ("reserved", ctypes.c_int32),
    )


class _Statx(ctypes.Structure):
    """``struct statx`` (the same layout on every architecture)."""

    _fields_ = (
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _Timestamp),
        ("stx_btime", _Timestamp),
        ("stx_ctime", _Timestamp),
        ("stx_mtime", _Timestamp),
        ("rest", ctypes.c_uint64 * 16),
    )


class _Statfs(ctypes.Structure):
    _fields_ = (("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15))


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class CachedStat(NamedTuple):
    """What the file system store takes from a ``stat`` of an open file."""

    st_mode: int
    st_ino: int
    st_size: int
    st_mtime_ns: int
    st_nlink: int = 1

    @property
    def st_mtime(self) -> float:
        """Seconds, computed as ``os.stat`` computes them (the same float, bit for bit)."""
        seconds, nanoseconds = divmod(self.st_mtime_ns, 1_000_000_000)
        return seconds + nanoseconds * 1e-9


def _raise(path: str | None = None) -> NoReturn:
    """Raise the OSError of the last failed call (``ctypes``' copy of errno)."""
    code = ctypes.get_errno()
    if path is None:
        raise OSError(code, os.strerror(code))
    raise OSError(code, os.strerror(code), path)


def _load() -> tuple[ctypes.CDLL, ctypes.CDLL] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        held = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the call keeps the GIL
        free = ctypes.CDLL(None, use_errno=True)
        for name in (
            "syscall",
            "preadv2",
            "pread",
            "statx",
            "close",
            "statfs",
            "openat",
            "write",
            "linkat",
            "flock",
        ):
            getattr(held, name)
    except (OSError, AttributeError):
        return None
    return held, free


_LIBS = _load()

if _LIBS is not None:
    _held, _free = _LIBS
    _syscall = _held.syscall
    _syscall.restype = ctypes.c_long
    _syscall.argtypes = (
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(_OpenHow),
        ctypes.c_size_t,
    )
    _preadv2 = _held.preadv2
    _preadv2.restype = ctypes.c_ssize_t
    _preadv2.argtypes = (
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int,
    )
    _pread = _held.pread
    _pread.restype = ctypes.c_ssize_t
    _pread.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64)
    _statx = _held.statx
    _statx.restype = ctypes.c_int
    _statx.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_Statx),
    )
    _close = _held.close
    _close.restype = ctypes.c_int
    _close.argtypes = (ctypes.c_int,)
    _openat = _held.openat
    _openat.restype = ctypes.c_int
    _openat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint)
    _write = _held.write
    _write.restype = ctypes.c_ssize_t
    _write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    _linkat = _held.linkat
    _linkat.restype = ctypes.c_int
    _linkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    _flock = _held.flock
    _flock.restype = ctypes.c_int
    _flock.argtypes = (ctypes.c_int, ctypes.c_int)
    _statfs = _free.statfs  # may wait: released
    _statfs.restype = ctypes.c_int
    _statfs.argtypes = (ctypes.c_char_p, ctypes.POINTER(_Statfs))


def _probe() -> bool:
    """Whether this kernel has ``openat2`` (an old one answers ENOSYS: never again)."""
    if _LIBS is None:
        return False
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY, 0, _RESOLVE_CACHED)
    fd = _syscall(_SYS_OPENAT2, _AT_FDCWD, b"/", ctypes.byref(how), ctypes.sizeof(how))
    if fd >= 0:
        _close(fd)
        return True
    return ctypes.get_errno() == errno.EAGAIN


#: Whether the calls are there (Linux with ``openat2``); else every caller falls back.
AVAILABLE = _probe()


def local_file_system(path: str) -> str | None:
    """``"memory"`` when ``path`` lies on a file system held in memory (tmpfs), ``"disk"``
    on a local one (see the module's docstring), None elsewhere."""
    if not AVAILABLE:
        return None
    buf = _Statfs()
    if _statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        return None
    kind = buf.f_type & 0xFFFFFFFF
    if kind in _MEMORY_TYPES:
        return "memory"
    return "disk" if kind in _LOCAL_TYPES else None


#: ``os.fsencode`` without its Python-level call.
_FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


@functools.cache
def _how(flags: int, beneath: bool) -> tuple[Any, int]:
    """``byref`` of the ``open_how`` of ``flags`` (read only by the kernel: shared), and
    its size."""
    resolve = _RESOLVE_CACHED | (_RESOLVE_BENEATH if beneath else 0)
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    return ctypes.byref(how), ctypes.sizeof(how)


def _open_cached(path: str, flags: int, dir_fd: int | None) -> int | None:
    """``openat2(path, flags)`` resolved from the kernel's name cache alone; None when the
    lookup would need the disk (or the kernel lacks ``openat2``). With ``dir_fd``: beneath
    that folder, and a symbolic link on the way is FileNotFoundError (store/beneath.py)."""
    how, size = _how(flags, dir_fd is not None)
    at = _AT_FDCWD if dir_fd is None else dir_fd
    fd: int = _syscall(_SYS_OPENAT2, at, path.encode(*_FS_ENCODING), how, size)
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code in (errno.EAGAIN, errno.ENOSYS):
        return None
    if dir_fd is not None and code in (errno.ELOOP, errno.EXDEV):
        raise FileNotFoundError(
            errno.ENOENT, "no such file (symbolic links are not followed)", path
        )
    _raise(path)


def open_cached(path: str, dir_fd: int | None = None) -> int | None:
    """``path`` opened for reading from the kernel's name cache alone; None when that
    would need the disk (the caller opens it the usual way). With ``dir_fd``, ``path`` is
    relative to that folder and resolved beneath it without following a symbolic link.

    :raises OSError: as ``os.open`` would (ENOENT; EISDIR is not raised: a folder opens).
    ``O_NONBLOCK``: a FIFO opens at once instead of waiting for a writer with the GIL
    held (the caller keeps regular files only; reading one ignores the flag).
    """
    return _open_cached(path, os.O_RDONLY | os.O_NONBLOCK, dir_fd)


def stat_cached(path: str, dir_fd: int | None = None) -> CachedStat | None:
    """The stat of ``path`` from the kernel's caches (links followed; with ``dir_fd``, as
    :func:`open_cached`: never); None when that would need the disk.

    :raises OSError: as ``os.stat`` would (ENOENT when the name is known to be absent).
    """
    fd = _open_cached(path, os.O_PATH, dir_fd)
    if fd is None:
        return None
    try:
        return stat_fd(fd)
    finally:
        _close(fd)


def stat_in_folder(
    path: str, dir_fd: int | None = None
) -> tuple[CachedStat | None, CachedStat | None] | None:
    """The stat of ``path`` (of a link itself, never through one) and, when nothing is
    there, the stat of its folder, resolving the folder once from the kernel's caches:
    ``(stat, None)`` or ``(None, the folder's stat)``; None when the folder's resolution
    would need the disk. A name the caches do not know (a new file's) is looked up in the
    folder the usual way (``fstatat``, the GIL released).

    :raises OSError: as ``os.stat`` of the folder would (ENOENT, ENOTDIR).
    """
    folder, _, name = path.rpartition("/")
    folder_fd = _open_cached(folder or ".", os.O_PATH | os.O_DIRECTORY, dir_fd)
    if folder_fd is None:
        return None
    try:
        try:
            st = stat_cached(name, folder_fd)
            if st is None:
                found = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                st = CachedStat(
                    found.st_mode, found.st_ino, found.st_size, found.st_mtime_ns, found.st_nlink
                )
        except FileNotFoundError:
            return None, stat_fd(folder_fd)
        return st, None
    finally:
        _close(folder_fd)


def stat_fd(fd: int) -> CachedStat:
    """``fstat`` of ``fd`` (a file opened on a local file system)."""
    buf = _Statx()
    if _statx(fd, b"", _AT_EMPTY_PATH, _STATX_BASIC_STATS, ctypes.byref(buf)) != 0:
        _raise()
    mtime = buf.stx_mtime
    return CachedStat(
        buf.stx_mode,
        buf.stx_ino,
        buf.stx_size,
        mtime.tv_sec * 1_000_000_000 + mtime.tv_nsec,
        buf.stx_nlink,
    )


def read_cached(fd: int, size: int, offset: int, in_memory: bool = False) -> bytes | None:
    """Up to ``size`` bytes at ``offset`` that the page cache holds (fewer when only part
    of them is cached); None when none is, or ``size`` is over :data:`MAX_HELD_BYTES`.
    ``in_memory``: the file lies on a memory file system (a plain ``pread``)."""
    if size > MAX_HELD_BYTES or size <= 0:
        return None
    buf = ctypes.create_string_buffer(size)
    if in_memory:
        got: int = _pread(fd, buf, size, offset)
    else:
        iov = _IoVec(ctypes.addressof(buf), size)
        got = _preadv2(fd, ctypes.byref(iov), 1, offset, _RWF_NOWAIT)
    if got < 0:
        if ctypes.get_errno() in (errno.EAGAIN, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        _raise()
    return buf.raw[:got] if got < size else buf.raw


def open_regular(path: str, dir_fd: int | None = None) -> tuple[int, CachedStat] | None:
    """The regular file ``path`` opened from the kernel's caches (:func:`open_cached`,
    ``dir_fd`` as there), and its stat (:func:`stat_fd`); None when the name is not in
    them, or names a FIFO or a device (to be opened the usual way).

    :raises OSError: as ``os.open`` would (ENOENT...); IsADirectoryError for a folder.
    """
    fd = open_cached(path, dir_fd)
    if fd is None:
        return None
    try:
        st = stat_fd(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    except BaseException:
        close_fd(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        close_fd(fd)
        return None
    return fd, st


def read_whole(
    path: str, limit: int, in_memory: bool = False, dir_fd: int | None = None
) -> tuple[CachedStat, bytes] | None:
    """The stat and the whole content of the regular file ``path`` (``dir_fd`` as in
    :func:`open_cached`): :func:`open_regular`,
    :func:`read_cached` and :func:`close_fd` (every small GET of a local share). None when
    the name or the bytes are not all in the caches, the file holds more than ``limit``
    (at most :data:`MAX_HELD_BYTES`) bytes, or it is not a regular file (FIFO, device).

    :raises OSError: as ``os.open`` would (ENOENT...); IsADirectoryError for a folder.
    """
    opened = open_regular(path, dir_fd)
    if opened is None:
        return None
    fd, st = opened
    try:
        if st.st_size > limit:
            return None
        data = read_cached(fd, st.st_size, 0, in_memory) if st.st_size else b""
    finally:
        close_fd(fd)
    # None, or fewer bytes: not all cached, or the file is shorter now (being rewritten).
    if data is None or len(data) != st.st_size:
        return None
    return st, data


def close_fd(fd: int) -> None:
    """``close`` of a file on a local file system (see the module's docstring)."""
    if _close(fd) != 0:
        _raise()


class CachedReader:
    """A file opened for reading (a binary stream) whose reads of up to
    :data:`MAX_HELD_BYTES` bytes come from the page cache with the GIL held; longer reads,
    and those the cache cannot answer, are ``os.pread`` calls (GIL released).

    ``st`` is the file's stat, taken when it was opened."""

    def __init__(self, fd: int, st: CachedStat, name: str, in_memory: bool) -> None:
        self._fd = fd
        self._in_memory = in_memory
        self._pos = 0
        self.st = st
        self.name = name
        self.closed = False

    def fileno(self) -> int:
        return self._fd

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += os.fstat(self._fd).st_size
        elif whence != os.SEEK_SET:
            raise ValueError(f"invalid whence ({whence})")
        if offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = offset
        return offset

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        if size is None or size < 0:
            parts = []
            while data := os.pread(self._fd, 1 << 20, self._pos):
                parts.append(data)
                self._pos += len(data)
            return b"".join(parts)
        cached = read_cached(self._fd, size, self._pos, self._in_memory)
        data = os.pread(self._fd, size, self._pos) if cached is None else cached
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            close_fd(self._fd)

    def __enter__(self) -> CachedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self.closed:
            self.close()


def open_held(path: str, flags: int, mode: int, dir_fd: int | None = None) -> int:
    """``os.open`` holding the GIL (a file on a local file system); ``path`` relative to
    the folder ``dir_fd`` when given (``openat``: the caller resolved that folder)."""
    at = _AT_FDCWD if dir_fd is None else dir_fd
    fd: int = _openat(at, os.fsencode(path), flags, mode)
    if fd < 0:
        _raise(path)
    return fd


def write_held(fd: int, data: bytes) -> None:
    """All of ``data`` written to ``fd`` holding the GIL (``bytes`` are not copied unless
    a write comes up short; a memoryview or bytearray is copied once)."""
    chunk = data if type(data) is bytes else bytes(data)
    while chunk:
        got: int = _write(fd, chunk, len(chunk))
        if got < 0:
            if ctypes.get_errno() == errno.EINTR:
                continue
            _raise()
        chunk = chunk[got:]


def link_held(fd: int, path: str, dir_fd: int | None = None) -> bool:
    """Give the unnamed file ``fd`` the name ``path`` (relative to the folder ``dir_fd``
    when given); False when the name is taken."""
    src = f"/proc/self/fd/{fd}".encode()
    at = _AT_FDCWD if dir_fd is None else dir_fd
    if _linkat(_AT_FDCWD, src, at, os.fsencode(path), 0x400) != 0:  # AT_SYMLINK_FOLLOW
        if ctypes.get_errno() == errno.EEXIST:
            return False
        _raise(path)
    return True


def flock_held(fd: int, operation: int) -> bool:
    """``flock`` without waiting, holding the GIL; False when another holds it, or when
    this platform lacks the call (the caller then uses ``fcntl.flock``)."""
    if _LIBS is None:
        return False
    if _flock(fd, operation | 4) != 0:  # LOCK_NB
        if ctypes.get_errno() == errno.EWOULDBLOCK:
            return False
        _raise()
    return True


class HeldWriter:
    """An unbuffered binary file over ``fd`` (a new file on a local file system) whose
    close holds the GIL, and its writes too with ``hold_writes`` (a memory file system)."""

    def __init__(self, fd: int, hold_writes: bool = True) -> None:
        self._fd = fd
        self._hold_writes = hold_writes
        self._hold_close = True
        self.closed = False

    def fileno(self) -> int:
        return self._fd

    def write(self, data: bytes) -> int:
        if self._hold_writes and len(data) <= MAX_HELD_BYTES:
            write_held(self._fd, data)
            return len(data)
        return os.write(self._fd, data)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def truncate(self, size: int | None = None) -> int:
        if size is None:
            size = self.tell()
        os.ftruncate(self._fd, size)
        self._hold_close = self._hold_writes  # ext4 writes a truncated file back on close
        return size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while data := os.read(self._fd, 1 << 20):
                parts.append(data)
            return b"".join(parts)
        return os.read(self._fd, size)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._hold_close:
                close_fd(self._fd)
            else:
                os.close(self._fd)
