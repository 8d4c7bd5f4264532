"""FUSE operations: each call translated into one VFS call, each error into one errno.

This class only translates. Paths arrive as the kernel sends them (``/a/b``) and go to the
VFS unchanged; the VFS checks them, keeps the cache, the open handles and the read-only
policy. Errors leave through :func:`_errno_of`, the one outbound table: an ``OSError``
returns its errno (``ENOSYS`` is sent as ``ENOTSUP``, because the kernel switches an
operation off for good after one ``ENOSYS``), and anything else is logged once with its
traceback and returns ``EIO``. Nothing escapes a callback, so no error unmounts.

Every attribute named like a FUSE operation becomes one (the binding registers whatever
it finds), so helpers here are private (``_name``) and none shadows an operation name.

What each operation does on each kind of store is written down in docs/FUSE.md.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import pwd
import stat
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from davstore.errors import ReadOnly
from davstore.frontends.fuse.binding import FuseOSError, fuse_exit
from davstore.frontends.fuse.kept import KeptListings
from davstore.vfs import VFS, Entry, ReadHandle, WriteHandle
from davstore.vfs.events import acting_as
from davstore.vfs.paths import MAX_NAME_BYTES

__all__ = ["Operations"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: The names libfuse renames a file removed or replaced while open to (``hide_node``).
_HIDDEN_PREFIX = ".fuse_hidden"
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_BLOCK = 4096
#: What statfs reports where the store cannot tell its size (1 PiB, as rclone does): a
#: file manager refuses to copy onto a volume that says it has no room.
_UNKNOWN_SPACE = 1 << 50
_IO_SIZE = 1 << 20

Handle = ReadHandle | WriteHandle
#: One ``readdir`` entry as fusepy takes it: name, attributes, offset (0: libfuse counts).
_Item = tuple[str, dict[str, int], int]
#: Entries (over all folders) whose ``readdir`` answer is kept while the VFS's listing of
#: their folder is unchanged; the newest folder is kept whatever its size.
_LISTED_ENTRIES_KEPT = 100_000

#: The origin of changes made through a mount.
ORIGIN = "fuse"


def _login_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _errno_of(exc: BaseException, op: str, args: tuple[Any, ...]) -> int:
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return errno.ENOTSUP if exc.errno == errno.ENOSYS else exc.errno
    logger.error("FUSE %s%r failed; answering EIO", op, args, exc_info=exc)
    return errno.EIO


def _translated(method: F) -> F:
    """Whatever the operation raises becomes a ``FuseOSError`` with an errno."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Operations, *args: Any) -> Any:
        try:
            return method(self, *args)
        except Exception as exc:
            raise FuseOSError(_errno_of(exc, name, args)) from None

    return wrapper  # type: ignore[return-value]


def _changing(method: F) -> F:
    """As :func:`_translated`, for an operation that may change the share: it runs as the
    mount's user (VFS change events). The others skip setting that up."""

    @functools.wraps(method)
    def as_the_mounts_user(self: Operations, *args: Any) -> Any:
        with acting_as(self._actor, ORIGIN):
            return method(self, *args)

    return _translated(as_the_mounts_user)  # type: ignore[return-value]


class _Borrowed:
    """A read-only descriptor on a file this mount holds open for writing: it reads what
    was written, committed or not. Once the writer is released (``release`` comes
    asynchronously), it reads the committed file instead; its own release leaves the
    writer alone."""

    def __init__(self, writer: WriteHandle, reopen: Callable[[], ReadHandle]) -> None:
        self.writer = writer
        self._reopen = reopen
        self._reader: ReadHandle | None = None

    def pread(self, size: int, offset: int) -> bytes:
        if self._reader is None:
            try:
                return self.writer.pread(size, offset)
            except ValueError:  # closed meanwhile
                if not self.writer.closed:
                    raise
            self._reader = self._reopen()
        return self._reader.pread(size, offset)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _path_of(handle: Handle | _Borrowed) -> str:
    return handle.writer.path if isinstance(handle, _Borrowed) else handle.path


class _Listing(Sequence[_Item]):
    """A folder's ``readdir`` answer: ``.``, ``..``, then its entries, each one made as it
    is asked for (the binding asks once per listing and keeps its own form)."""

    def __init__(
        self, entries: list[Entry], dir_mode: int, attrs: Callable[[Entry], dict[str, int]]
    ) -> None:
        self.entries = entries
        self._dot: _Item = (".", {"st_mode": dir_mode}, 0)
        self._attrs = attrs

    def __len__(self) -> int:
        return len(self.entries) + 2

    @overload
    def __getitem__(self, index: int) -> _Item: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[_Item]: ...
    def __getitem__(self, index: int | slice) -> _Item | Sequence[_Item]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index < 2:
            if index < 0:
                raise IndexError(index)
            return self._dot if index == 0 else ("..", self._dot[1], 0)
        entry = self.entries[index - 2]
        return entry.basename, self._attrs(entry), 0


class Operations:
    """The fusepy-API operations of one mount over one :class:`~davstore.vfs.VFS`.

    :param vfs: the share.
    :param uid: owner reported for every file (default: the mounting user).
    :param gid: group reported for every file (default: the mounting user's group).
    :param on_ready: called once when the kernel has accepted the mount (FUSE ``init``).
    :param on_stop: called once when the mount is being torn down (FUSE ``destroy``),
        before open files are committed.
    :param actor: the user name VFS change events carry (default: the mounting user's
        login name); their origin is ``"fuse"``.
    :param shared: other users can reach the mount (``--allow-other``): a ``chmod`` that
        would take a permission away is EPERM there, since modes are not kept and the
        kernel goes on granting what the reported modes grant.
    """

    #: Times cross the binding as integer nanoseconds (rsync compares them exactly).
    use_ns = True
    #: libfuse 2: pass ``UTIME_OMIT`` through, so ``touch -m`` changes only the mtime.
    flag_utime_omit_ok = True

    def __init__(
        self,
        vfs: VFS,
        *,
        uid: int | None = None,
        gid: int | None = None,
        on_ready: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
        actor: str | None = None,
        shared: bool = False,
    ) -> None:
        self._vfs = vfs
        self._shared = shared
        self._actor = actor if actor is not None else _login_name()
        self._uid = os.getuid() if uid is None else uid
        self._gid = os.getgid() if gid is None else gid
        self._on_ready = on_ready
        self._on_stop = on_stop
        self._started_ns = time.time_ns()
        self._lock = threading.Lock()
        self._open: dict[int, Handle | _Borrowed] = {}
        self._folders: dict[int, tuple[str | None, _Listing | None]] = {}
        #: Files removed or replaced while open, by the hidden name libfuse gave them:
        #: their open handles (the store no longer holds them; see :meth:`rename`).
        self._hidden: dict[str, list[Handle | _Borrowed]] = {}
        self._listings: KeptListings[str, _Listing] = KeptListings(_LISTED_ENTRIES_KEPT, len)
        self._numbers = itertools.count(1)
        self._exiting = False
        writable = 0 if vfs.read_only else 0o200
        self._file_mode = stat.S_IFREG | 0o444 | writable
        self._dir_mode = stat.S_IFDIR | 0o555 | writable

    # -- helpers (private: a public name could become a FUSE operation) ---------------

    def _attrs(self, entry: Entry) -> dict[str, int]:
        if entry.mtime_ns is not None:
            mtime = entry.mtime_ns
        elif entry.mtime is not None:
            mtime = int(entry.mtime * 1_000_000_000)
        else:
            mtime = self._started_ns
        size = 0 if entry.is_dir else entry.size or 0
        return {
            "st_mode": self._dir_mode if entry.is_dir else self._file_mode,
            # A folder's count where the store knows it (local disk: 2 + subfolders),
            # else 1, "not counted" (as btrfs): tools then assume nothing from it.
            "st_nlink": (entry.links or 1) if entry.is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": _IO_SIZE,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_mtime": mtime,
            "st_ctime": mtime,
            "st_atime": mtime,
        }

    def _items(self, folder: str) -> _Listing:
        """``readdir``'s answer for ``folder``; the same object while the VFS answers with
        the same listing (the binding keeps its kernel form of it)."""
        entries = self._vfs.listdir(folder)
        known = self._listings.get(folder)
        if known is not None and known.entries is entries:
            return known
        listing = _Listing(entries, self._dir_mode, self._attrs)
        self._listings.put(folder, listing)
        return listing

    def _add(self, handle: Handle | _Borrowed) -> int:
        with self._lock:
            number = next(self._numbers)
            self._open[number] = handle
            return number

    def _get(self, fh: Any) -> Handle | _Borrowed:
        number = fh if isinstance(fh, int) else fh.fh
        with self._lock:
            handle = self._open.get(number)
        if handle is None:
            raise FuseOSError(errno.EBADF)
        return handle

    def _writer(self, fh: Any) -> WriteHandle:
        handle = self._get(fh)
        if not isinstance(handle, WriteHandle):
            raise FuseOSError(errno.EBADF)
        return handle

    def _writer_of(self, path: str) -> WriteHandle | None:
        """The newest handle of this mount with uncommitted writes to ``path``."""
        canonical = self._vfs.normalize(path)
        with self._lock:
            writers = [h for h in self._open.values() if isinstance(h, WriteHandle) and h.dirty]
        return next((h for h in reversed(writers) if h.path == canonical), None)

    def _check_change(self, path: str) -> None:
        """Metadata changes the store cannot keep: the file must exist, the share be writable."""
        self._vfs.stat(path)
        if self._vfs.read_only:
            raise ReadOnly(path, "the share is read-only")

    def _exit_on_next_call(self) -> None:
        """End the FUSE loop at the next ``getattr`` (libfuse ends it only from a callback)."""
        self._exiting = True

    # -- lifecycle --------------------------------------------------------------------

    @_translated
    def init(self, path: str) -> None:
        if self._on_ready is not None:
            self._on_ready()

    @_changing
    def destroy(self, path: str) -> None:
        if self._on_stop is not None:
            self._on_stop()
        self._vfs.flush_all()

    # -- metadata ---------------------------------------------------------------------

    @_translated
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        if self._exiting and fuse_exit is not None:
            fuse_exit()
        handle = self._get(fh) if fh is not None else None
        if handle is None and path is not None and self._hidden:
            hidden = self._hidden.get(path)  # removed while open: answered by its handles
            handle = hidden[0] if hidden else None
        if isinstance(handle, _Borrowed):
            handle = handle.writer
        if handle is None:
            if path is None:
                raise FuseOSError(errno.EBADF)
            return self._attrs(self._vfs.stat(path))
        return self._attrs(self._vfs.fstat(handle))

    @_translated
    def opendir(self, path: str) -> int:
        with self._lock:
            number = next(self._numbers)
            self._folders[number] = (path, None)
            return number

    @_translated
    def readdir(self, path: str | None, fh: int, offset: int = 0) -> Sequence[_Item]:
        """The folder's entries with their attributes, ``.`` and ``..`` first.

        One open folder reads one listing (offsets stay valid between calls); a read from
        offset 0 (the first, or a rewind) takes the listing afresh.
        """
        with self._lock:
            folder, items = self._folders.get(fh, (path, None))
        if items is None or offset == 0:
            if folder is None:
                raise FuseOSError(errno.EBADF)
            items = self._items(folder)
            with self._lock:
                if fh in self._folders:
                    self._folders[fh] = (folder, items)
        return items

    @_translated
    def releasedir(self, path: str | None, fh: int) -> int:
        with self._lock:
            self._folders.pop(fh, None)
        return 0

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """Extended attributes are not kept: ENOTSUP for every name.

        Not ENOSYS (as for the other xattr calls): after an ENOSYS here the kernel stops
        asking, but then answers POSIX ACL queries itself with "no ACL" (ENODATA), so
        ``ls -l``, file managers and ``cp -p`` ask again for every file they see; ENOTSUP
        makes them stop after the first. The price: the kernel asks for
        ``security.capability`` before each write (libfuse 3.14 cannot negotiate
        ``FUSE_HANDLE_KILLPRIV_V2``, which would spare that).
        """
        raise FuseOSError(errno.ENOTSUP)

    @_translated
    def statfs(self, path: str) -> dict[str, int]:
        usage = self._vfs.usage()
        used = usage.used or 0
        free = usage.available if usage.available is not None else _UNKNOWN_SPACE
        total = used + free
        return {
            "f_bsize": _BLOCK,
            "f_frsize": _BLOCK,
            "f_blocks": total // _BLOCK,
            "f_bfree": free // _BLOCK,
            "f_bavail": free // _BLOCK,
            "f_files": 1 << 32,
            "f_ffree": 1 << 31,
            "f_favail": 1 << 31,
            "f_namemax": MAX_NAME_BYTES,
        }

    @_translated
    def access(self, path: str, amode: int) -> int:
        """As the reported modes answer their owner: files are not executable, nothing is
        writable on a read-only share. (With ``--allow-other`` the kernel checks the
        modes itself and does not ask.)"""
        entry = self._vfs.stat(path)
        if amode & os.W_OK and self._vfs.read_only:
            raise ReadOnly(path, "the share is read-only")
        if amode & os.X_OK and not entry.is_dir:
            raise FuseOSError(errno.EACCES)
        return 0

    @_changing
    def utimens(self, path: str, times: tuple[int | None, int | None] | None = None) -> int:
        """The modification time is kept where the store keeps one (FileSystemStorage);
        elsewhere it is accepted and ignored. The access time is never kept."""
        mtime = time.time_ns() if times is None else times[1]
        if mtime is None:
            self._check_change(path)
        else:
            self._vfs.set_mtime(path, mtime)
        return 0

    @_translated
    def chmod(self, path: str, mode: int) -> int:
        """Accepted and ignored on every store: modes are not kept (see docs/FUSE.md).

        On a mount other users can reach, a mode that takes away a permission the mount
        reports (``chmod 600``, ``chmod a-w``) is EPERM: accepting it would tell the
        caller the file is protected while every user still reads it."""
        entry = self._vfs.stat(path)
        if self._vfs.read_only:
            raise ReadOnly(path, "the share is read-only")
        reported = self._dir_mode if entry.is_dir else self._file_mode
        if self._shared and reported & 0o777 & ~mode:
            raise FuseOSError(errno.EPERM)
        return 0

    @_translated
    def chown(self, path: str, uid: int, gid: int) -> int:
        """Accepted and ignored on every store: owners are not kept (see docs/FUSE.md)."""
        self._check_change(path)
        return 0

    # -- files ------------------------------------------------------------------------

    @_translated
    def open(self, path: str, fi: Any) -> int:
        flags = fi.flags
        if flags & os.O_ACCMODE == os.O_RDONLY:
            writer = self._writer_of(path)
            if writer is not None:
                fi.fh = self._add(_Borrowed(writer, lambda: self._vfs.open_read(path)))
                fi.direct_io = 1
                return 0
            reader = self._vfs.open_read(path)
            fi.fh = self._add(reader)
            # The kernel stops reading at st_size: a size the store does not know must
            # not cut the file short, so such files bypass the page cache.
            fi.direct_io = int(reader.size is None)
            return 0
        handle = self._vfs.open_write(
            path, truncate=bool(flags & os.O_TRUNC), create=False, shared=True
        )
        fi.fh = self._add(handle)
        return 0

    @_translated
    def create(self, path: str, mode: int, fi: Any) -> int:
        flags = fi.flags
        handle = self._vfs.open_write(
            path,
            truncate=bool(flags & os.O_TRUNC),
            create=True,
            exclusive=bool(flags & os.O_EXCL),
            shared=True,
        )
        fi.fh = self._add(handle)
        return 0

    @_translated
    def read(self, path: str | None, size: int, offset: int, fh: Any) -> bytes:
        return self._get(fh).pread(size, offset)

    @_translated
    def write(self, path: str | None, data: bytes, offset: int, fh: Any) -> int:
        return self._writer(fh).pwrite(data, offset)

    @_changing
    def truncate(self, path: str | None, length: int, fh: Any = None) -> int:
        if fh is not None:
            self._writer(fh).truncate(length)
            return 0
        if path is None:
            raise FuseOSError(errno.EBADF)
        with self._vfs.open_write(path, truncate=False, create=False, shared=True) as handle:
            handle.truncate(length)
        return 0

    @_changing
    def flush(self, path: str | None, fh: Any) -> int:
        handle = self._get(fh)
        if isinstance(handle, WriteHandle):
            handle.commit()
        return 0

    @_changing
    def fsync(self, path: str | None, datasync: int, fh: Any) -> int:
        handle = self._get(fh)
        if isinstance(handle, WriteHandle):
            handle.commit()
        return 0

    @_changing
    def release(self, path: str | None, fh: Any) -> int:
        number = fh if isinstance(fh, int) else fh.fh
        with self._lock:
            handle = self._open.pop(number, None)
        if handle is not None:
            handle.close()
        return 0

    # -- names ------------------------------------------------------------------------

    @_changing
    def unlink(self, path: str) -> int:
        with self._lock:
            hidden = self._hidden.pop(path, None)
        if hidden is None:  # a hidden file's last close: it is gone already
            self._vfs.remove(path)
        return 0

    @_changing
    def mkdir(self, path: str, mode: int) -> int:
        self._vfs.mkdir(path)
        return 0

    @_changing
    def rmdir(self, path: str) -> int:
        self._vfs.rmdir(path)
        return 0

    @_changing
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        """A rename, or libfuse hiding a file removed or replaced while open: a move to
        ``.fuse_hidden*`` is the removal of ``old`` (the VFS keeps the content its open
        handles read, and their writes are never committed); the hidden name answers
        ``getattr`` from those handles until libfuse unlinks it at the last close."""
        if flags & _RENAME_EXCHANGE or flags & ~(_RENAME_NOREPLACE | _RENAME_EXCHANGE):
            raise FuseOSError(errno.EINVAL)
        if new.rpartition("/")[2].startswith(_HIDDEN_PREFIX):
            canonical = self._vfs.normalize(old)
            with self._lock:
                handles = [h for h in self._open.values() if _path_of(h) == canonical]
            self._vfs.remove(old)
            with self._lock:
                self._hidden[new] = handles
            return 0
        self._vfs.rename(old, new, replace=not flags & _RENAME_NOREPLACE)
        return 0

    # -- what a Storage cannot hold ----------------------------------------------------

    @_translated
    def symlink(self, target: str, source: str) -> int:
        raise FuseOSError(errno.EPERM)

    @_translated
    def link(self, target: str, source: str) -> int:
        raise FuseOSError(errno.EPERM)

    @_translated
    def mknod(self, path: str, mode: int, dev: int) -> int:
        """Fifos, sockets and devices: EPERM. A regular file never arrives here: the
        kernel turns ``mknod(S_IFREG)`` into a ``create``, which makes an empty file."""
        raise FuseOSError(errno.EPERM)

    @_translated
    def readlink(self, path: str) -> str:
        self._vfs.stat(path)
        raise FuseOSError(errno.EINVAL)
