"""Accelerator for ``FileSystemStorage``: the local disk, used directly.

Listing is one ``os.scandir`` with the stat results it already has; an upload is staged in
a hidden temporary file in the target folder and put in place with ``os.replace`` (atomic:
readers see the old or the new content, never a mix, and a crash leaves the old file);
folders are real folders; rename is ``os.replace``/``os.rename``; copy streams through.

Every name is resolved relative to a descriptor of the storage's location, beneath it,
without following a symbolic link (:mod:`davstore.store.beneath`): nothing outside the
location is reachable, whatever links a site, a checkout or a person with a shell left in
it. A link is not part of the share: never listed, never opened, never followed in a path;
a change on its name acts on the link itself (docs/SEMANTICS.md, *Symbolic links*). Names
are otherwise those of Django's ``storage.path()``: what davstore writes at ``a/b.txt`` is
the file the site opens at ``storage.path("a/b.txt")``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import resource
import secrets
import shutil
import stat
import weakref
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

from django.core.files.storage import FileSystemStorage

from davstore.errors import AlreadyExists, InvalidPath, IsADirectory, NotADirectory, from_exception
from davstore.store import cached_io
from davstore.store.base import (
    INTERNAL_PREFIX,
    Capabilities,
    ObjectInfo,
    Upload,
    Usage,
    is_internal_name,
)
from davstore.store.beneath import folder_of, open_beneath, stat_beneath
from davstore.store.cached_io import CachedReader
from davstore.store.generic import GenericStore

__all__ = [
    "FileSystemStore",
    "ReplaceUpload",
]

T = TypeVar("T")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_DEFAULT_FILE_MODE = 0o666 & ~_UMASK
#: Unnamed files (``O_TMPFILE``) need Linux and /proc to be linked in.
_UNNAMED_FILES = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
_UNNAMED_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_RDWR | getattr(os, "O_CLOEXEC", 0)

#: The longest path a system call takes, the terminating NUL included (Linux: 4096).
_PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096

_CREATE_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


_ROOT_FLAGS = os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY
_READ_FLAGS = os.O_RDONLY
_FOLDER_FLAGS = _ROOT_FLAGS


def _relative(name: str) -> str:
    """``name`` as a path relative to the root; InvalidPath for one with an empty, "." or
    ".." segment or a leading "/" (share paths never have them: see vfs/paths.py)."""
    suspect = name and (name[0] == "/" or name[-1] == "/" or "//" in name or "/." in "/" + name)
    if suspect and (name[0] == "/" or any(p in ("", ".", "..") for p in name.split("/"))):
        raise InvalidPath(name, "not a relative path inside the storage's location")
    return name


def _size_limit() -> int | None:
    """This process's file size limit (``RLIMIT_FSIZE``) where it has one; past it, and
    past the file system's own limit, the stage's ``ftruncate`` answers EFBIG itself."""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _info(name: str, st: os.stat_result | cached_io.CachedStat) -> ObjectInfo:
    if stat.S_ISDIR(st.st_mode):
        return ObjectInfo(name, True, None, st.st_mtime, None, st.st_mtime_ns, links=st.st_nlink)
    etag = f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"
    return ObjectInfo(name, False, st.st_size, st.st_mtime, etag, st.st_mtime_ns)


class FileSystemStore(GenericStore):
    """``FileSystemStorage`` on the local disk."""

    storage: FileSystemStorage

    def __init__(self, storage: FileSystemStorage) -> None:
        super().__init__(storage)
        self._location = str(storage.location)
        try:
            os.makedirs(self._location, exist_ok=True)
            self._open_root()
        except (FileExistsError, NotADirectoryError) as exc:
            raise NotADirectory("", "the storage's location is not a folder") from exc
        except OSError as exc:
            raise from_exception(exc, "") from exc
        local = cached_io.local_file_system(self._location)  # not NFS, SMB or FUSE
        self._cached_io = local
        self.capabilities = dataclasses.replace(self.capabilities, quick=local is not None)

    def _open_root(self) -> None:
        """Open the location (links in its own path followed: the administrator's choice);
        every name is resolved beneath this descriptor."""
        fd = os.open(self._location, _ROOT_FLAGS)
        st = os.fstat(fd)
        # Closed with the store, never before: another thread may be resolving in it.
        weakref.finalize(self, os.close, fd)
        self._root = fd
        self._root_id = (st.st_dev, st.st_ino)

    def _moved_root(self) -> bool:
        """Whether the location is now another folder than the one opened (removed and made
        again by an administrator): then it is opened again, and True."""
        try:
            st = os.stat(self._location)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) == self._root_id or not stat.S_ISDIR(st.st_mode):
            return False
        self._open_root()
        return True

    def _at(self, name: str, call: Callable[[int, str], T]) -> T:
        """``call(root_fd, relative name)``, again on a location made anew (FileNotFoundError)."""
        rel = _relative(name)
        try:
            return call(self._root, rel)
        except FileNotFoundError:
            if not self._moved_root():
                raise
            return call(self._root, rel)

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            native_dirs=True,
            folder_mtime=True,
            # Every call names the file by its absolute path: PATH_MAX (4096, with the
            # terminating NUL) holds the location, a slash and the share path.
            max_path_bytes=_PATH_MAX - 1 - len(os.fsencode(self.storage.location)) - 1,
            rename=True,
            server_side_copy=True,
            ranged_reads=True,
            atomic_replace=True,
            set_mtime=True,
            url=self.storage.base_url is not None,
            held_reads=True,  # a descriptor reads its inode after an unlink or a replace
            max_file_size=_size_limit(),
        )

    def head(self, name: str) -> ObjectInfo:
        try:
            return self._stat(name)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def find(self, name: str) -> ObjectInfo | None:
        try:
            return self._stat(name)
        except (FileNotFoundError, NotADirectoryError):
            return None  # no davstore error made, raised and caught: a new file's PUT
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def find_with_parent(self, name: str) -> tuple[ObjectInfo | None, ObjectInfo | None]:
        if not self._cached_io or not name:
            return self.find(name), None
        try:
            got = self._at(name, lambda root, rel: cached_io.stat_in_folder(rel, root))
        except (FileNotFoundError, NotADirectoryError):
            return None, None  # the folder is not there (or not a folder) either
        except OSError as exc:
            raise from_exception(exc, name) from exc
        if got is None:  # the kernel's caches could not tell
            return self.find(name), None
        st, folder_st = got
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                return self.find(name), None  # a link is not part of the share: as find says
            return _info(name, st), None
        assert folder_st is not None
        return None, _info(name.rpartition("/")[0], folder_st)

    def _stat(self, name: str) -> ObjectInfo:
        """The entry of ``name`` (never of a link). Raises OSError."""
        return self._at(name, self._stat_at)

    def _stat_at(self, root: int, rel: str) -> ObjectInfo:
        if self._cached_io:
            st = cached_io.stat_cached(rel or ".", root)
            if st is not None:
                return _info(rel, st)
        return _info(rel, stat_beneath(root, rel))

    def list(self, name: str) -> Iterator[ObjectInfo]:
        prefix = f"{name}/" if name else ""
        try:
            fd = self._at(name, lambda root, rel: open_beneath(root, rel, _LIST_FLAGS))
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if is_internal_name(entry.name) or entry.is_symlink():
                            continue  # a link is not part of the share
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:  # removed meanwhile
                            continue
                        if stat.S_ISLNK(st.st_mode):  # made a link meanwhile
                            continue
                        yield _info(prefix + entry.name, st)
            finally:
                os.close(fd)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        if self._cached_io:
            reader = self._open_cached(name)
            if reader is not None:
                if offset:
                    reader.seek(offset)
                return reader  # type: ignore[return-value]
        try:
            stream = self._open_stream(name)
        except OSError as exc:
            raise from_exception(exc, name) from exc
        if offset:
            stream.seek(offset)
        return stream

    def _open_stream(self, name: str) -> BinaryIO:
        """``name`` opened for reading, the usual way (the GIL released). Raises OSError
        (IsADirectoryError for a folder)."""
        fd = self._at(name, lambda root, rel: open_beneath(root, rel, _READ_FLAGS))
        try:
            # Unbuffered: the VFS's readers ask for whole blocks and read until they have
            # them, and a buffer costs an lseek per open (EISDIR: a folder).
            return os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def _open_cached(self, name: str) -> CachedReader | None:
        try:
            opened = self._at(name, lambda root, rel: cached_io.open_regular(rel or ".", root))
        except OSError as exc:
            raise from_exception(exc, name) from exc
        if opened is None:
            return None
        fd, st = opened
        return CachedReader(fd, st, name, self._cached_io == "memory")

    def read_small(self, name: str, limit: int) -> tuple[ObjectInfo, bytes] | None:
        """Open, ``fstat``, read and close with the GIL held (``cached_io.read_whole``),
        when the name and the bytes are in the kernel's caches; ``None`` when they are
        not, or the file holds more than ``limit`` bytes or is not a regular file
        (:meth:`open_read` then)."""
        if not self._cached_io:
            return None
        try:
            in_memory = self._cached_io == "memory"
            got = self._at(
                name, lambda root, rel: cached_io.read_whole(rel or ".", limit, in_memory, root)
            )
        except OSError as exc:
            raise from_exception(exc, name) from exc
        if got is None:
            return None
        st, data = got
        return _info(name, st), data

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        if isinstance(stream, CachedReader):
            return _info(name, stream.st)
        # Overwrites replace the inode (os.replace), so an open file never changes under us.
        return _info(name, os.fstat(stream.fileno()))

    def open_cached(self, name: str) -> BinaryIO | None:
        if not self._cached_io:
            return None
        return self._open_cached(name)  # type: ignore[return-value]

    def stream_fd(self, name: str, stream: BinaryIO) -> int | None:
        if isinstance(stream, CachedReader):
            return None if stream.closed else stream.fileno()  # a regular file (open_regular)
        if not isinstance(stream, io.FileIO) or stream.closed:
            return None
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        return ReplaceUpload(self, name)

    def delete(self, name: str) -> None:
        def unlink(root: int, rel: str) -> None:
            with folder_of(root, rel) as (fd, base):
                if stat.S_ISDIR(os.stat(base, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise IsADirectory(name)
                os.unlink(base, dir_fd=fd)  # a link: the link itself, never what it leads to

        try:
            self._at(name, unlink)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def make_dir(self, name: str) -> None:
        mode = self.storage.directory_permissions_mode

        def mkdir(root: int, rel: str) -> None:
            with folder_of(root, rel) as (fd, base):
                try:
                    os.mkdir(base, dir_fd=fd)
                except FileExistsError:
                    st = os.stat(base, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        raise AlreadyExists(name, "a symbolic link has this name") from None
                    if not stat.S_ISDIR(st.st_mode):
                        raise NotADirectory(name) from None
                    return
                if mode is not None:
                    # Through the new folder itself: a link put in its place is not followed.
                    made = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    try:
                        os.fchmod(made, mode)
                    finally:
                        os.close(made)

        try:
            self._at(name, mkdir)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def remove_dir(self, name: str) -> None:
        def rmdir(root: int, rel: str) -> None:
            with folder_of(root, rel) as (fd, base):
                try:
                    os.rmdir(base, dir_fd=fd)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY or not _unlink_links(fd, base):
                        raise
                    os.rmdir(base, dir_fd=fd)

        try:
            self._at(name, rmdir)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def rename(self, source: str, target: str) -> None:
        def replace(root: int, rel: str) -> None:
            with (
                folder_of(root, rel) as (old, old_base),
                folder_of(root, _relative(target)) as (new, new_base),
            ):
                os.replace(old_base, new_base, src_dir_fd=old, dst_dir_fd=new)

        try:
            self._at(source, replace)
        except OSError as exc:
            raise from_exception(exc, source) from exc

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        def utime(root: int, rel: str) -> None:
            with folder_of(root, rel) as (fd, base):
                st = os.stat(base, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise FileNotFoundError(errno.ENOENT, "a symbolic link", name)
                os.utime(base, ns=(st.st_atime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)

        try:
            self._at(name, utime)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def copy(self, source: str, target: str) -> ObjectInfo:
        try:
            src = self._open_stream(source)
        except OSError as exc:
            raise from_exception(exc, source) from exc
        with src:
            upload = ReplaceUpload(self, target)
            try:
                if not _copy_in_kernel(src.fileno(), upload.file.fileno()):
                    shutil.copyfileobj(src, upload.file, 1 << 20)
            except OSError as exc:
                upload.abort()
                raise from_exception(exc, source) from exc
        return upload.commit()

    def usage(self) -> Usage:
        try:
            disk = shutil.disk_usage(self.storage.location)
        except OSError:
            return Usage(None, None)
        return Usage(disk.total - disk.free, disk.free)


#: ``copy_file_range`` errors that mean "not between these two files": the bytes go
#: through Python instead (files on two file systems before Linux 5.19, a file system
#: without the call).
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


def _copy_in_kernel(source: int, target: int) -> bool:
    """Copy the open file ``source`` from its start into the new, empty file ``target``
    with ``copy_file_range(2)``: the kernel copies without handing the bytes to Python
    (faster, with less CPU, on ext4 and on tmpfs: benchmarks/README.md), and file systems
    that share extents (Btrfs, XFS) make the copy a reflink at once. False, having
    copied nothing, where the call cannot copy between these files; OSError for a
    failure on the way."""
    copy = getattr(os, "copy_file_range", None)
    if copy is None:
        return False
    copied = 0
    while True:
        try:
            got = copy(source, target, 1 << 30)
        except OSError as exc:
            if copied == 0 and exc.errno in _NO_KERNEL_COPY:
                return False
            raise
        if got == 0:
            return True
        copied += got


def _unlink_links(parent_fd: int, name: str) -> bool:
    """Remove the symbolic links left in folder ``name`` (which the share does not show: a
    folder that looks empty is removed with them; what they lead to is never touched).
    True when any was removed."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    removed = False
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_symlink():
                    os.unlink(entry.name, dir_fd=fd)
                    removed = True
    finally:
        os.close(fd)
    return removed


class ReplaceUpload(Upload):
    """The new content in a file of its own, put in place of the target in one step.

    Where the file system offers it (Linux ``O_TMPFILE``: ext4, xfs, btrfs, tmpfs), the file
    has no name while it is written: the commit links it in under the target's name (one
    directory change, and nothing is left behind by a crash), or, when the target exists,
    under a hidden name that ``os.replace`` then moves over it. Elsewhere it is a hidden
    temporary file beside the target, moved over it with ``os.replace``.

    Not fsync'ed (as Django's ``FileSystemStorage`` does not): the replace is atomic
    towards readers, and a crash leaves the old file or the new one.
    """

    #: ``O_TMPFILE`` works in this process's file systems until one refuses it.
    unnamed = _UNNAMED_FILES

    def __init__(self, store: FileSystemStore, name: str) -> None:
        self._store = store
        self._name = name
        # The target's folder, resolved beneath the root once: every later call is made
        # relative to it (a link put in its path meanwhile changes nothing).
        try:
            self._folder, self._own_folder = store._at(name, _open_folder)
        except OSError as exc:
            raise from_exception(exc, name) from exc
        self._target = name.rpartition("/")[2]
        self._temp: str | None = None
        try:
            self._open()
        except BaseException:
            self._close_folder()
            raise

    def _open(self) -> None:
        self._chmod = True
        # On a local file system the stat and the close of the new file keep the GIL; on
        # a memory one (tmpfs) creating, writing and linking too: they never wait for a
        # device there. On a disk those may wait for the journal (cached_io.py).
        self._held_stat = self._store._cached_io is not None
        self._held_writes = self._store._cached_io == "memory"
        fd = self._open_unnamed() if ReplaceUpload.unnamed else None
        if fd is None:
            fd = self._open_named()
        # Unbuffered: the writers (the VFS's write handles) write whole chunks, and a
        # buffered file costs four lseek calls per upload (one 1 KiB PUT made 12 system
        # calls, 7 without them and the fchmod below).
        if self._held_stat:
            self.file = cached_io.HeldWriter(fd, self._held_writes)  # type: ignore[assignment]
        else:
            self.file = os.fdopen(fd, "w+b", buffering=0)

    def _stage_name(self) -> str:
        """A fresh hidden name beside the target (internal: never listed)."""
        return f"{INTERNAL_PREFIX}upload-{secrets.token_hex(8)}"

    def _open_unnamed(self) -> int | None:
        mode = self._store.storage.file_permissions_mode
        if mode is None:
            mode = 0o666  # less the umask, as FileSystemStorage makes files
            self._chmod = False
        elif mode & ~0o777 == 0 and mode & _UMASK == 0:
            self._chmod = False  # the umask leaves the mode as it is: no fchmod needed
        try:
            # Made with its final mode: nobody can open it before it has a name.
            open_ = cached_io.open_held if self._held_writes else _open_at
            return open_(".", _UNNAMED_FLAGS, mode if not self._chmod else 0o600, self._folder)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                ReplaceUpload.unnamed = False  # this file system cannot: named files from now
                return None
            raise from_exception(exc, self._name) from exc

    def _open_named(self) -> int:
        for _ in range(100):
            temp = self._stage_name()
            try:
                fd = os.open(temp, _CREATE_FLAGS, 0o600, dir_fd=self._folder)
            except FileExistsError:
                continue
            except OSError as exc:
                raise from_exception(exc, self._name) from exc
            self._temp = temp
            return fd
        raise from_exception(  # pragma: no cover - 100 collisions of 64 random bits
            FileExistsError(errno.EEXIST, "no free temporary name"), self._name
        )

    def commit(self) -> ObjectInfo:
        mode = self._store.storage.file_permissions_mode
        try:
            # The permissions and the metadata are taken through the open file (no path
            # lookups); the inode, size and mtime stay what they are through the rename.
            fd = self.file.fileno()
            if self._temp is None:
                if mode is not None and self._chmod:
                    os.fchmod(fd, mode)
                st = cached_io.stat_fd(fd) if self._held_stat else os.fstat(fd)
                linked = (
                    cached_io.link_held(fd, self._target, self._folder)
                    if self._held_writes
                    else self._link(fd, self._target)
                )
                if linked:
                    self.file.close()
                    self._close_folder()
                    return _info(self._name, st)
                temp = self._stage_name()  # the target exists: replace it
                if not self._link(fd, temp):  # pragma: no cover - 64 random bits taken
                    raise FileExistsError(errno.EEXIST, "no free temporary name")
                self._temp = temp
            else:
                os.fchmod(fd, mode if mode is not None else _DEFAULT_FILE_MODE)
                st = os.fstat(fd)
            self.file.close()
            # EISDIR onto a folder; a link at the target is replaced, its target untouched.
            folder = self._folder
            os.replace(self._temp, self._target, src_dir_fd=folder, dst_dir_fd=folder)
            self._close_folder()
            return _info(self._name, st)
        except OSError as exc:
            self.file.close()
            self._discard()
            raise from_exception(exc, self._name) from exc

    def _link(self, fd: int, name: str) -> bool:
        """Give the unnamed file ``fd`` the name ``name`` in the target's folder; False when
        that name is taken."""
        try:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N (the magic link is the source,
            # followed by the kernel; the new name is made in the resolved folder).
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=self._folder, follow_symlinks=True)
        except FileExistsError:
            return False
        return True

    def abort(self) -> None:
        self.file.close()
        self._discard()

    def _discard(self) -> None:
        try:
            if self._temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp, dir_fd=self._folder)
        finally:
            self._close_folder()

    def _close_folder(self) -> None:
        if self._own_folder:
            self._own_folder = False
            os.close(self._folder)


def _open_folder(root: int, rel: str) -> tuple[int, bool]:
    """The folder that holds ``rel`` (beneath ``root``; ``root`` itself for a top name),
    and whether it is a descriptor of its own (to be closed)."""
    parent = rel.rpartition("/")[0]
    return (open_beneath(root, parent, _FOLDER_FLAGS), True) if parent else (root, False)


def _open_at(path: str, flags: int, mode: int, dir_fd: int) -> int:
    return os.open(path, flags, mode, dir_fd=dir_fd)
