"""Accelerator for ``FileSystemStorage``: the local disk, used directly.

Listing is one ``os.scandir`` with the stat results it already has; an upload is staged in
a hidden temporary file in the target folder and put in place with ``os.replace`` (atomic:
readers see the old or the new content, never a mix, and a crash leaves the old file);
folders are real folders; rename is ``os.replace``/``os.rename``; copy uses the kernel's
copy (``shutil.copyfile``). Every name goes through ``storage.path()`` (Django's
``safe_join``), so nothing outside the storage's location is reachable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import FileSystemStorage

from davstore.errors import IsADirectory, NotADirectory, from_exception
from davstore.store import cached_io
from davstore.store.base import (
    INTERNAL_PREFIX,
    Capabilities,
    ObjectInfo,
    Upload,
    Usage,
    is_internal_name,
)
from davstore.store.cached_io import CachedReader
from davstore.store.generic import GenericStore

__all__ = [
    "FileSystemStore",
    "ReplaceUpload",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_DEFAULT_FILE_MODE = 0o666 & ~_UMASK
#: Unnamed files (``O_TMPFILE``) need Linux and /proc to be linked in.
_UNNAMED_FILES = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
_UNNAMED_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_RDWR | getattr(os, "O_CLOEXEC", 0)

_CREATE_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _plain_name(name: str) -> bool:
    """Whether ``name`` is a relative path without ".", ".." or empty segments."""
    return name[0] != "/" and name[-1] != "/" and "//" not in name and "/." not in "/" + name


def _info(name: str, st: os.stat_result | cached_io.CachedStat) -> ObjectInfo:
    if stat.S_ISDIR(st.st_mode):
        return ObjectInfo(name, True, None, st.st_mtime, None, st.st_mtime_ns)
    etag = f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"
    return ObjectInfo(name, False, st.st_size, st.st_mtime, etag, st.st_mtime_ns)


class FileSystemStore(GenericStore):
    """``FileSystemStorage`` on the local disk."""

    storage: FileSystemStorage

    def __init__(self, storage: FileSystemStorage) -> None:
        super().__init__(storage)
        self._plain_path = (
            type(storage).path is FileSystemStorage.path
            and os.sep == "/"
            and not str(storage.location).endswith("/")
        )
        try:
            os.makedirs(storage.location, exist_ok=True)
        except FileExistsError as exc:
            raise NotADirectory("", "the storage's location is not a folder") from exc
        except OSError as exc:
            raise from_exception(exc, "") from exc
        local = cached_io.local_file_system(str(storage.location))  # not NFS, SMB or FUSE
        self._cached_io = local if self._plain_path else None
        self.capabilities = dataclasses.replace(self.capabilities, quick=local is not None)

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            native_dirs=True,
            rename=True,
            server_side_copy=True,
            ranged_reads=True,
            atomic_replace=True,
            set_mtime=True,
            url=self.storage.base_url is not None,
        )

    def _path(self, name: str) -> str:
        if self._plain_path and name and _plain_name(name):
            # What safe_join answers for a name without ".", ".." or empty segments.
            return f"{self.storage.location}/{name}"
        try:
            return str(self.storage.path(name) if name else self.storage.location)
        except Exception as exc:
            raise from_exception(exc, name) from exc

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

    def _stat(self, name: str) -> ObjectInfo:
        """The entry of ``name`` (links followed). Raises OSError."""
        path = self._path(name)
        if self._cached_io:
            st = cached_io.stat_cached(path)
            if st is not None:
                return _info(name, st)
        return _info(name, os.stat(path))

    def list(self, name: str) -> Iterator[ObjectInfo]:
        prefix = f"{name}/" if name else ""
        try:
            with os.scandir(self._path(name)) as entries:
                for entry in entries:
                    if is_internal_name(entry.name):
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed meanwhile, or a dangling link
                        continue
                    yield _info(prefix + entry.name, st)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        path = self._path(name)
        if self._cached_io:
            reader = self._open_cached(name, path)
            if reader is not None:
                if offset:
                    reader.seek(offset)
                return reader  # type: ignore[return-value]
        try:
            # Unbuffered: the VFS's readers ask for whole blocks and read until they have
            # them, and a buffer costs an lseek per open (EISDIR: a folder).
            stream = open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise from_exception(exc, name) from exc
        if offset:
            stream.seek(offset)
        return stream

    def _open_cached(self, name: str, path: str) -> CachedReader | None:
        try:
            opened = cached_io.open_regular(path)
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
            got = cached_io.read_whole(self._path(name), limit, self._cached_io == "memory")
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

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        return ReplaceUpload(self, name)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            if os.path.isdir(path):
                raise IsADirectory(name)
            os.remove(path)
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def make_dir(self, name: str) -> None:
        path = self._path(name)
        mode = self.storage.directory_permissions_mode
        try:
            os.mkdir(path)
            if mode is not None:
                os.chmod(path, mode)
        except FileExistsError:
            if not os.path.isdir(path):
                raise NotADirectory(name) from None
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def remove_dir(self, name: str) -> None:
        try:
            os.rmdir(self._path(name))
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def rename(self, source: str, target: str) -> None:
        try:
            os.replace(self._path(source), self._path(target))
        except OSError as exc:
            raise from_exception(exc, source) from exc

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        path = self._path(name)
        try:
            atime_ns = os.stat(path).st_atime_ns
            os.utime(path, ns=(atime_ns, mtime_ns))
        except OSError as exc:
            raise from_exception(exc, name) from exc

    def copy(self, source: str, target: str) -> ObjectInfo:
        upload = ReplaceUpload(self, target)
        try:
            with open(self._path(source), "rb") as src:
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
        self._target = store._path(name)
        self._folder = os.path.dirname(self._target)
        self._temp: str | None = None
        self._chmod = True
        # On a local file system the stat and the close of the new file keep the GIL; on
        # a memory one (tmpfs) creating, writing and linking too: they never wait for a
        # device there. On a disk those may wait for the journal (cached_io.py).
        self._held_stat = store._cached_io is not None
        self._held_writes = store._cached_io == "memory"
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
        return f"{self._folder}/{INTERNAL_PREFIX}upload-{secrets.token_hex(8)}"

    def _open_unnamed(self) -> int | None:
        mode = self._store.storage.file_permissions_mode
        if mode is None:
            mode = 0o666  # less the umask, as FileSystemStorage makes files
            self._chmod = False
        elif mode & ~0o777 == 0 and mode & _UMASK == 0:
            self._chmod = False  # the umask leaves the mode as it is: no fchmod needed
        try:
            # Made with its final mode: nobody can open it before it has a name.
            open_ = cached_io.open_held if self._held_writes else os.open
            return open_(self._folder, _UNNAMED_FLAGS, mode if not self._chmod else 0o600)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                ReplaceUpload.unnamed = False  # this file system cannot: named files from now
                return None
            raise from_exception(exc, self._name) from exc

    def _open_named(self) -> int:
        for _ in range(100):
            temp = self._stage_name()
            try:
                fd = os.open(temp, _CREATE_FLAGS, 0o600)
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
                    cached_io.link_held(fd, self._target)
                    if self._held_writes
                    else self._link(fd, self._target)
                )
                if linked:
                    self.file.close()
                    return _info(self._name, st)
                temp = self._stage_name()  # the target exists: replace it
                if not self._link(fd, temp):  # pragma: no cover - 64 random bits taken
                    raise FileExistsError(errno.EEXIST, "no free temporary name")
                self._temp = temp
            else:
                os.fchmod(fd, mode if mode is not None else _DEFAULT_FILE_MODE)
                st = os.fstat(fd)
            self.file.close()
            os.replace(self._temp, self._target)  # EISDIR onto a folder
            return _info(self._name, st)
        except OSError as exc:
            self.file.close()
            self._discard()
            raise from_exception(exc, self._name) from exc

    @staticmethod
    def _link(fd: int, path: str) -> bool:
        """Give the unnamed file ``fd`` the name ``path``; False when that name is taken."""
        try:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: a dir_fd makes os.link call
            # linkat (plain link() would not follow the magic link); an absolute source
            # path ignores it.
            os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd, follow_symlinks=True)
        except FileExistsError:
            return False
        return True

    def abort(self) -> None:
        self.file.close()
        self._discard()

    def _discard(self) -> None:
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)
