"""The store contract: one Django Storage seen as a few flat primitives.

A store adapter turns one Django ``Storage`` into the primitives below and translates its
errors once, into :mod:`davstore.errors`. Names passed to a store are canonical share paths
(see :mod:`davstore.vfs.paths`): already validated, ``/``-separated, never empty except for
the root where a method says so. A store knows nothing of WebDAV, FUSE, caching or
read-only policy: those live in the VFS.

Every method MUST raise only :class:`~davstore.errors.DavstoreError` subclasses:

- ``NotFound`` when the name does not exist (or a parent is missing),
- ``NotSupported`` when the backend lacks the operation (Django's ``NotImplementedError``),
- ``InvalidPath`` when the backend refuses the name (``SuspiciousFileOperation``),
- ``StoreError`` and its subclasses for any other backend failure.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from davstore.errors import (
    InsufficientStorage,
    NotADirectory,
    NotFound,
    NotSupported,
    from_exception,
)

__all__ = [
    "DIRECTORY_MARKER",
    "INTERNAL_PREFIX",
    "Capabilities",
    "ObjectInfo",
    "ObjectStore",
    "Upload",
    "Usage",
    "extend_file",
    "is_internal_name",
]

#: The object that keeps an empty folder alive on a store without native directories.
#: It is never listed, never served and never counted as content.
DIRECTORY_MARKER = ".davstore-folder"

#: Names davstore keeps for itself (markers, staged uploads): never listed, never served,
#: never reachable by path. Every store and the VFS apply this one rule.
INTERNAL_PREFIX = ".davstore-"


def is_internal_name(name: str) -> bool:
    """True for the basename of an object davstore keeps for itself."""
    return name.startswith(INTERNAL_PREFIX)


@dataclasses.dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do; the VFS degrades operations a store cannot do."""

    listdir: bool = True
    delete: bool = True
    size: bool = True
    mtime: bool = True
    url: bool = True
    #: Directories exist on their own (mkdir/rmdir are real operations, not markers).
    native_dirs: bool = False
    #: ``rename`` moves an object in one cheap call.
    rename: bool = False
    #: ``copy`` is done by the backend without moving the bytes through davstore.
    server_side_copy: bool = False
    #: ``open_read(offset=...)`` costs one ranged request instead of a full download.
    ranged_reads: bool = False
    #: An overwrite replaces the old content in one step (never a missing or partial file).
    atomic_replace: bool = False
    #: ``set_mtime`` keeps a modification time given by a client (``touch -d``, ``rsync -t``).
    set_mtime: bool = False
    #: An open stream (``open_read``) reads the version it opened to its end whatever then
    #: happens to the name (a file descriptor on local disk, a snapshot in memory): a reader
    #: keeps its content across a delete or a replace without a copy.
    held_reads: bool = False
    #: The biggest file the store takes (S3: 5 TiB), where it has a limit of its own;
    #: None where the stage's file system decides (its EFBIG).
    max_file_size: int | None = None
    #: Calls answer from this host's memory or page cache without waiting on a network
    #: (a local disk, tmpfs, memory): a frontend may make a small one on its event loop.
    quick: bool = False
    #: A folder's modification time is the store's and moves when its entries change
    #: (local disk, memory). Elsewhere the VFS keeps the times of changes it made.
    folder_mtime: bool = False
    #: The longest share path the store can hold, in UTF-8 bytes and, where the store
    #: counts characters instead, in characters (its own prefix, such as a bucket's
    #: ``location``, already taken off). Longer paths are ENAMETOOLONG in the VFS.
    max_path_bytes: int = 1024
    max_path_chars: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of one name in the store. ``size``/``mtime``/``etag`` may be unknown."""

    name: str
    is_dir: bool
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None
    #: The exact modification time in nanoseconds where the store knows it (local disk);
    #: frontends that show nanoseconds (FUSE) prefer it to ``mtime``.
    mtime_ns: int | None = dataclasses.field(default=None, compare=False)
    #: For a folder: its complete listing (as :meth:`ObjectStore.list` would give it), when
    #: the store learnt it in the same request that answered :meth:`ObjectStore.head`
    #: (object stores whose "stat" is itself a listing). ``None`` means unknown, never
    #: "empty"; a partial listing is never given. The VFS caches it as the folder's
    #: listing, so a stat followed by a listing (PROPFIND Depth 1, ``ls -l``) costs one
    #: request. Only ``head`` sets it; entries of listings and caches never carry it.
    children: tuple[ObjectInfo, ...] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    #: For a folder: its link count (2 plus its subfolders) where the store knows it at no
    #: cost (local disk); ``None`` elsewhere.
    links: int | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def basename(self) -> str:
        return self.name.rpartition("/")[2]


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Quota figures in bytes; ``None`` where the store cannot tell."""

    used: int | None
    available: int | None


class Upload(abc.ABC):
    """A staged write of one object.

    ``file`` is a seekable, readable and writable binary file that starts empty. Nothing is
    visible in the store until :meth:`commit`; :meth:`abort` (or a failed commit) leaves the
    old content, if any, untouched and no partial object behind. Exactly one of ``commit``
    and ``abort`` is called, after which the upload is finished.
    """

    file: BinaryIO

    @abc.abstractmethod
    def commit(self) -> ObjectInfo:
        """Store the staged bytes under the exact name given at creation.

        MUST either replace the whole content or leave the old content, and MUST never store
        under another name (``Storage.get_available_name``): a renamed save is undone and
        raises ``StoreError``.
        """

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the staged bytes; the store is unchanged."""

    def extend(self, size: int) -> None:
        """Make ``file`` ``size`` bytes long (it holds fewer), the new bytes zeros.

        The file is extended sparsely (``ftruncate``): no zero is written. The new bytes
        must fit in the free room of the file's file system should they all be written
        later (and an object store's commit sends them all): otherwise the file is left as
        it was and ``InsufficientStorage`` (ENOSPC) is raised at once. A size the file
        system refuses raises its own error (EFBIG: ``FileTooLarge``).
        """
        extend_file(self.file, size)


def extend_file(file: BinaryIO, size: int) -> None:
    """:meth:`Upload.extend` of a file with a descriptor (``fileno``)."""
    current = file.seek(0, io.SEEK_END)
    if size <= current:
        return
    fd = file.fileno()
    try:
        file.truncate(size)  # the file system's own limit first (EFBIG), as natively
    except OSError as exc:
        raise from_exception(exc) from exc
    room = os.fstatvfs(fd)
    free = room.f_bavail * room.f_frsize
    if size - current > free:
        file.truncate(current)
        raise InsufficientStorage(
            "", f"the spool has room for {free} more bytes, not {size - current}"
        )


class ObjectStore(abc.ABC):
    """Flat primitives over one Django Storage. Subclasses fill in what their backend can do."""

    capabilities: Capabilities

    @abc.abstractmethod
    def head(self, name: str) -> ObjectInfo:
        """Metadata for ``name`` (``""`` is the root, always a directory). Raises NotFound.

        A store whose cheapest stat is a listing MAY fill ``children`` of a folder's entry
        with its complete listing when that came back in the same request (see
        :attr:`ObjectInfo.children`); wrappers pass it through unchanged.
        """

    def find(self, name: str) -> ObjectInfo | None:
        """:meth:`head` that answers None where ``name`` does not exist (NotFound, or a
        parent that is a file: NotADirectory): the cheaper question where absence is
        common, such as the name of a file about to be made. Wrappers MUST pass it through.
        """
        try:
            return self.head(name)
        except (NotFound, NotADirectory):
            return None

    def find_with_parent(self, name: str) -> tuple[ObjectInfo | None, ObjectInfo | None]:
        """:meth:`find` of ``name`` and, when nothing is there and the store learnt it in
        the same call, the entry of its parent folder (``None`` where it did not: ask
        :meth:`find`): what one who is about to make ``name`` asks (a new file's PUT). A
        local disk resolves the folder once and stats the name in it. Wrappers MUST pass
        it through."""
        return self.find(name), None

    @abc.abstractmethod
    def list(self, name: str) -> Iterator[ObjectInfo]:
        """The direct children of directory ``name`` with their metadata.

        Directory markers are never yielded. A name that is both a directory and a file
        (possible on flat stores) is yielded once, as the directory. Raises NotFound when the
        directory does not exist and NotADirectory when ``name`` is a file.
        """

    @abc.abstractmethod
    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        """A readable binary stream of ``name`` positioned at ``offset``.

        Callers seek forward/backward on it only when :meth:`seekable` is true; otherwise
        they reopen with a new offset. Raises NotFound, IsADirectory.
        """

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        """Metadata of the very version ``stream`` (from :meth:`open_read`) reads, where the
        store can tell without another request (local disk: ``fstat``; S3: the answer's
        Content-Range and ETag); ``None`` otherwise. Wrappers MUST pass it through.

        A frontend that promises a length before sending the bytes (an HTTP GET) needs it:
        the cached size may be up to one TTL old when the site changed the file meanwhile.
        """
        return None

    def open_cached(self, name: str) -> BinaryIO | None:
        """:meth:`open_read` of file ``name`` at offset 0 made without waiting for a device:
        where its name and inode are in the kernel's caches (a local disk: ``openat2`` with
        ``RESOLVE_CACHED``); ``None`` when the store cannot open it so (then
        :meth:`open_read`). Raises NotFound, IsADirectory. Wrappers MUST pass it through.
        """
        return None

    def stream_fd(self, name: str, stream: BinaryIO) -> int | None:
        """An OS file descriptor of a regular file that holds the very bytes ``stream``
        (from :meth:`open_read`) reads, at the same offsets, where the stream is one (local
        disk); ``None`` otherwise. A frontend may hand it to the kernel (``sendfile``) or
        ``pread`` it instead of reading through the stream; it stays the stream's: valid
        until the stream is closed, never closed by the caller, and read only with calls
        that take their own offset (the stream's position is not moved). No I/O beyond a
        ``fstat``. Wrappers MUST pass it through.
        """
        return None

    def read_small(self, name: str, limit: int) -> tuple[ObjectInfo, bytes] | None:
        """The whole content of file ``name`` and the metadata of that very version, in one
        call, when the file holds at most ``limit`` bytes and the store can answer so
        cheaply (a local disk: open, ``fstat``, read, close); ``None`` otherwise, and the
        caller opens it with :meth:`open_read`. Raises NotFound, IsADirectory. Wrappers
        MUST pass it through.
        """
        return None

    @abc.abstractmethod
    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        """Begin a staged write of ``name`` (see :class:`Upload`)."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the file ``name``. Raises NotFound when it is missing."""

    @abc.abstractmethod
    def make_dir(self, name: str) -> None:
        """Create the directory ``name`` (its parent exists). Idempotent."""

    @abc.abstractmethod
    def remove_dir(self, name: str) -> None:
        """Remove the empty directory ``name`` (the VFS has checked it is empty)."""

    def delete_many(self, names: Sequence[str]) -> None:
        """Remove the files ``names`` (a folder's content being removed), in as few calls as
        the store allows. Default: :meth:`delete` each, in order, stopping at the first error
        (raised); object stores delete in batches. Missing names are not an error here.
        """
        for name in names:
            try:
                self.delete(name)
            except NotFound:
                continue

    def copy(self, source: str, target: str) -> ObjectInfo:
        """Copy the file ``source`` to ``target``, replacing it. Default: stream through."""
        with self.open_read(source) as stream:
            upload = self.start_upload(target, spool_dir=None, spool_memory=8 << 20)
            try:
                while chunk := stream.read(1 << 20):
                    upload.file.write(chunk)
                return upload.commit()
            except BaseException:
                upload.abort()
                raise

    def rename(self, source: str, target: str) -> None:
        """Move file or directory ``source`` to ``target`` in one step (replacing a file).

        Only called when ``capabilities.rename`` is true.
        """
        raise NotSupported(source, "this store has no native rename")

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        """Set the modification time of file or directory ``name`` (ns since the epoch).

        Only called when ``capabilities.set_mtime`` is true. Raises NotFound.
        """
        raise NotSupported(name, "this store cannot set modification times")

    def url(self, name: str) -> str:
        """The public URL the Storage gives for ``name``."""
        raise NotSupported(name, "this store gives no URLs")

    def usage(self) -> Usage:
        """Used and available bytes, where the store can tell cheaply."""
        return Usage(None, None)

    def root_exists(self) -> bool:
        """Whether the store's own root folder exists: False only for a store that has one
        (a Storage on a local folder) when that folder is missing, such as ``STATIC_ROOT``
        before ``collectstatic``; such a share answers nothing until it is made. A store
        without a root folder of its own (a bucket, memory) says True. One cheap call;
        wrappers MUST pass it through."""
        return True

    def describe(self) -> str:
        """A short human description (backend class and location) for logs and the CLI."""
        return type(self).__name__
