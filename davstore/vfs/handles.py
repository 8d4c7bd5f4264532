"""Open files: ranged reads of committed content, and spooled writes committed whole.

A :class:`ReadHandle` reads what the store holds, at any offset: a sequential reader costs
one open stream; a jump costs a seek where the stream can seek, else a reopen at the new
offset (one ranged request on stores that have them). It keeps reading the version it
opened when the name is removed or replaced (POSIX: content stays readable to open handles
until the last close): on stores whose streams outlive the name (a file descriptor on local
disk, a snapshot in memory) the stream is opened at open; elsewhere the VFS has the handle
copy that version into a spool (:meth:`ReadHandle.keep`) before the name goes.

A :class:`WriteHandle` is one descriptor on an :class:`OpenFile`, and every handle opened
``shared`` on one path shares that one open file: one stage, one size, one commit of what
all of them wrote. The open file stages every write in the store's
:class:`~davstore.store.Upload` (a file in the target's folder on local disk, a bounded
spool elsewhere) and puts it in the store with :meth:`OpenFile.commit`: on
``flush``/``fsync``/``close`` (FUSE) or at the end of a PUT (WebDAV). Random writes, reads
of what was written, truncate and append work; a file opened without truncation copies the
old content into the stage at its first change; a growing truncate extends the stage
sparsely, never writing zeros. A commit that fails, or an abort, leaves the old content
untouched; a file whose name was removed or replaced never commits.
"""

from __future__ import annotations

import contextlib
import errno
import io
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from davstore.errors import (
    Conflict,
    DavstoreError,
    FileTooLarge,
    InvalidPath,
    from_exception,
)
from davstore.store.base import ObjectInfo, Upload

if TYPE_CHECKING:
    from davstore.vfs.core import VFS

__all__ = ["OpenFile", "ReadHandle", "WriteHandle", "read_full", "same_version", "write_all"]

_COPY_BLOCK = 1 << 20


H = TypeVar("H", bound="_Handle")


class _Handle:
    path: str
    closed: bool = False

    def __enter__(self: H) -> H:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


class ReadHandle(_Handle):
    """A seekable reader of one file's committed content.

    Concurrent ``pread`` calls (a FUSE mount reads one file from several threads) are
    serialised on one stream; a stream that can seek is never reopened (the store's
    reader serves reads a little out of order from memory). ``entry`` describes the
    version being read: when a stream is opened, ``describe`` (the store's
    ``stream_info``) may correct it, so a file replaced between the stat and the first read
    reports the size of the bytes actually read. ``stale`` becomes true when the VFS learns
    the file changed (or a read found it replaced): the entry no longer answers stats.
    """

    def __init__(
        self,
        open_stream: Callable[[int], BinaryIO],
        entry: ObjectInfo,
        *,
        describe: Callable[[BinaryIO], ObjectInfo | None] | None = None,
        on_close: Callable[[ReadHandle], None] | None = None,
        fd_of: Callable[[BinaryIO], int | None] | None = None,
    ) -> None:
        self.path = entry.name
        self.entry = entry
        self.stale = False
        #: Reads come from a copy made when the name was removed or replaced (:meth:`keep`).
        self.kept = False
        self._open_stream = open_stream
        self._describe = describe
        self._on_close = on_close
        self._fd_of = fd_of
        self._stream: BinaryIO | None = None
        self._stream_pos = 0
        self._pos = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int | None:
        return self.entry.size

    def adopt(self, stream: BinaryIO, entry: ObjectInfo) -> None:
        """Read from ``stream`` (opened at offset 0), which holds the version ``entry``."""
        with self._lock:
            if self._stream is not None:
                self._stream.close()
            self._stream, self._stream_pos, self.entry = stream, 0, entry

    def _open(self, offset: int) -> BinaryIO:
        stream = self._open_stream(offset)
        if self._describe is not None:
            try:
                actual = self._describe(stream)
            except DavstoreError:
                actual = None
            if actual is not None and not same_version(actual, self.entry):
                self.entry = actual
        return stream

    def open_now(self) -> None:
        """Open the stream at once (it is else opened by the first read): on a store whose
        open streams outlive the name (``Capabilities.held_reads``), the handle then reads
        the version that was there at open, whatever becomes of the name."""
        with self._lock:
            if self._stream is None:
                self._stream, self._stream_pos = self._open(0), 0

    def os_file(self) -> int | None:
        """An OS file descriptor holding the bytes of the version ``entry`` describes, at
        their offsets, when the store's open stream is such a file (the store's
        ``stream_fd``: local disk); ``None`` otherwise, before the stream is open (open the
        handle with ``exact``), and once the handle reads from a copy (:meth:`keep`).

        It lets a frontend send the bytes with ``sendfile(2)`` (or ``pread`` them) without
        reading them into Python. It stays the handle's: valid until :meth:`close`, never
        closed by the caller, read only with calls that take an offset."""
        with self._lock:
            stream = self._stream
            if stream is None or self._fd_of is None or self.kept or self.closed:
                return None
            return self._fd_of(stream)

    def keep(self, spool: BinaryIO) -> None:
        """Read from now on from a copy of the version being read, made in ``spool`` (the
        VFS calls it before the file's name is removed or replaced, on a store whose open
        streams do not outlive the name). Raises the store's errors and the spool's."""
        with self._lock:
            if self.kept:
                spool.close()
                return
            try:
                offset = 0
                while chunk := self._pread(_COPY_BLOCK, offset):
                    write_all(spool, chunk)
                    offset += len(chunk)
            except BaseException:
                spool.close()
                raise
            if self._stream is not None:
                self._stream.close()
            self._stream, self._stream_pos = spool, offset
            self.kept = True
            if self.entry.size != offset:
                self.entry = ObjectInfo(
                    self.entry.name,
                    False,
                    offset,
                    self.entry.mtime,
                    self.entry.etag,
                    self.entry.mtime_ns,
                )

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        if offset < 0:
            raise InvalidPath(self.path, "negative offset")
        with self._lock:
            return self._pread(size, offset)

    def _pread(self, size: int, offset: int) -> bytes:
        stream = self._stream
        if stream is None or offset != self._stream_pos:
            if stream is not None and stream.seekable():
                stream.seek(offset)
            else:
                if stream is not None:
                    stream.close()
                self._stream = None
                stream = self._stream = self._open(offset)
        try:
            data = read_full(stream, size)
        except Conflict:
            self.stale = True
            raise
        except DavstoreError:
            raise
        except Exception as exc:
            raise from_exception(exc, self.path) from exc
        self._stream_pos = offset + len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.pread(_COPY_BLOCK, self._pos):
                chunks.append(chunk)
                self._pos += len(chunk)
            return b"".join(chunks)
        data = self.pread(size, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self.entry.size or 0
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            was_closed, self.closed = self.closed, True
        if not was_closed and self._on_close is not None:
            self._on_close(self)


def same_version(a: ObjectInfo, b: ObjectInfo) -> bool:
    """Whether two entries describe one version of a file (size and ETag agree; times may
    differ in precision: listings give milliseconds, HTTP answers whole seconds)."""
    if a.size != b.size or a.is_dir != b.is_dir:
        return False
    if a.etag is not None and b.etag is not None:
        return a.etag == b.etag
    return a.mtime == b.mtime


def write_all(stage: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` (an unbuffered file may take less than it is given)."""
    written = stage.write(data)
    if written is None or written >= len(data):
        return
    view = memoryview(data)[written:]
    while view:
        written = stage.write(view)
        if not written:
            raise OSError(errno.EIO, "the file took no more bytes")
        view = view[written:]


def read_full(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes from ``stream``, fewer only at its end: a raw stream may answer a
    read with fewer bytes than asked (a local file read from the page cache answers
    with what the cache holds)."""
    data = stream.read(size)
    if not data or len(data) >= size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class OpenFile:
    """One file open for writing, shared by every write handle open on it.

    The stage (the store's :class:`~davstore.store.Upload`), the size and the uncommitted
    state belong to the file, not to a descriptor: two handles on one file see each other's
    writes and truncates, and a commit puts in the store what all of them wrote (the way
    rclone's VFS keeps one cache item per open file). ``detached`` becomes true when the
    file's name was removed or replaced (unlink, a rename over it): the handles go on
    reading and writing their own copy, and nothing of it is ever committed.
    """

    def __init__(
        self,
        vfs: VFS,
        path: str,
        *,
        existing_size: int | None,
        truncate: bool,
        max_size: int | None,
        shared: bool,
    ) -> None:
        self.path = path
        #: Joinable by later opens of the same path (else a private stage: a WebDAV PUT).
        self.shared = shared
        self.detached = False
        #: When the content last changed and was not committed since (``time.time()``).
        self.mtime: float | None = None
        self._vfs = vfs
        self._max_size = max_size
        self._lock = threading.RLock()
        self._upload: Upload | None = None
        self._handles = 0
        # An existing file not truncated: its content is copied in at the first change.
        self._load_existing = existing_size is not None and not truncate
        self._size = 0 if truncate or existing_size is None else existing_size
        self._dirty = truncate or existing_size is None
        self._created = existing_size is None
        if self._dirty:
            self.mtime = time.time()
        # Where the stage file's own position is, when known: sequential writes skip the
        # seek (a system call per write on a file).
        self._stage_at: int | None = None

    @property
    def size(self) -> int:
        """The size as written so far, committed or not."""
        return self._size

    @property
    def dirty(self) -> bool:
        return self._dirty and not self.detached

    def _changed(self) -> None:
        self._dirty = True
        self.mtime = time.time()

    def _check_size(self, size: int) -> None:
        if self._max_size is not None and size > self._max_size:
            raise FileTooLarge(self.path, f"the file would exceed {self._max_size} bytes")

    def _stage(self) -> BinaryIO:
        if self._upload is None:
            upload = self._vfs._start_upload(self.path)
            self._stage_at = 0
            try:
                if self._load_existing:
                    self._size = self._vfs._copy_committed(self.path, upload.file)
                    self._stage_at = None
            except BaseException:
                upload.abort()
                raise
            self._upload = upload
        return self._upload.file

    def _extend(self, size: int) -> None:
        """Grow the stage to ``size`` bytes of zeros, sparsely (see ``Upload.extend``)."""
        assert self._upload is not None
        self._stage_at = None
        try:
            self._upload.extend(size)
        except DavstoreError as exc:
            raise type(exc)(self.path, exc.reason) from exc
        except OSError as exc:
            raise from_exception(exc, self.path) from exc

    def pwrite(self, data: bytes, offset: int) -> int:
        if offset < 0:
            raise InvalidPath(self.path, "negative offset")
        if not data:
            return 0
        end = offset + len(data)
        self._check_size(end)
        with self._lock:
            stage = self._stage()
            if offset > self._size:
                self._extend(offset)  # a hole: checked for room as a truncate is
            try:
                if self._stage_at != offset:
                    self._stage_at = None
                    stage.seek(offset)
                write_all(stage, data)
            except OSError as exc:
                self._stage_at = None
                raise from_exception(exc, self.path) from exc
            self._stage_at = end
            self._size = max(self._size, end)
            self._changed()
            return len(data)

    def pread(self, size: int, offset: int) -> bytes:
        with self._lock:
            if self._upload is None and self._load_existing and not self._dirty:
                return self._vfs._read_committed(self.path, size, offset)
            stage = self._stage()
            self._stage_at = None
            stage.seek(offset)
            return stage.read(max(0, min(size, self._size - offset)))

    def truncate(self, size: int) -> int:
        """Shrink or grow to ``size`` bytes. Growing never writes zeros where the stage is
        a file (it is extended sparsely) and is refused up front: FileTooLarge (EFBIG) past
        the share's maximum file size or what the spool's file system takes,
        InsufficientStorage (ENOSPC) when the spool has less room than the new bytes. A
        refused truncate changes nothing."""
        if size < 0:
            raise InvalidPath(self.path, "negative size")
        self._check_size(size)
        with self._lock:
            if size == 0 and self._upload is None:
                self._load_existing = False  # nothing of the old content to copy in
            stage = self._stage()
            self._stage_at = None
            if size > self._size:
                self._extend(size)
            else:
                try:
                    stage.truncate(size)
                except OSError as exc:
                    raise from_exception(exc, self.path) from exc
            self._size = size
            self._changed()
            return size

    def commit(self) -> None:
        """Put what the handles wrote in the store (if anything changed).

        A failed commit raises the store's error; the store still holds the old content,
        the bytes written since the last commit are dropped, and the handles go on from
        the committed content.
        """
        with self._lock:
            if not self._dirty or self.detached:
                return
            self._stage()
            upload = self._upload
            assert upload is not None
            self._upload = None
            try:
                info = self._vfs._commit_upload(self.path, upload, created=self._created)
            except BaseException:
                with contextlib.suppress(Exception):
                    upload.abort()  # a policy refused it before the commit: drop the stage
                self._vfs._invalidate(self.path)
                raise
            finally:
                self._dirty = False
                self._load_existing = True
                self.mtime = None
            created, self._created = self._created, False
            self._vfs._committed(self, info, created=created)

    def abort(self) -> None:
        """Drop everything not committed; the store keeps what it had."""
        with self._lock:
            if self._upload is not None:
                self._upload.abort()
                self._upload = None
            self._dirty = False
            self.mtime = None

    def attach(self) -> None:
        """One more handle (called by the VFS with its lock held)."""
        self._handles += 1

    def release(self) -> None:
        """One handle is done; the last one frees the stage (uncommitted bytes dropped)."""
        with self._vfs._lock:  # an open joining the file meanwhile would find it freed
            self._handles -= 1
            last = self._handles <= 0
            if last:
                self._vfs._release(self)
        if last:
            self.abort()


class WriteHandle(_Handle):
    """One descriptor open for writing: its own position and open state over the
    :class:`OpenFile` it shares with every other handle on the file (see the module
    docstring for the commit model)."""

    def __init__(self, file: OpenFile) -> None:
        self.file = file
        self._pos = 0
        file.attach()

    @property
    def path(self) -> str:  # type: ignore[override]
        return self.file.path

    @property
    def size(self) -> int:
        """The file's size as written so far by every handle, committed or not."""
        return self.file.size

    @property
    def dirty(self) -> bool:
        return self.file.dirty

    @property
    def detached(self) -> bool:
        return self.file.detached

    def pwrite(self, data: bytes, offset: int) -> int:
        self._check_open()
        return self.file.pwrite(data, offset)

    def write(self, data: bytes) -> int:
        written = self.pwrite(data, self._pos)
        self._pos += written
        return written

    def pread(self, size: int, offset: int) -> bytes:
        self._check_open()
        return self.file.pread(size, offset)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.file.size - self._pos)
        data = self.pread(size, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self.file.size
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def writable(self) -> bool:
        return True

    def truncate(self, size: int | None = None) -> int:
        self._check_open()
        return self.file.truncate(self._pos if size is None else size)

    def commit(self) -> None:
        """Put what every handle on the file wrote in the store; the handle stays open.
        Raises the store's error (see :meth:`OpenFile.commit`)."""
        self._check_open()
        self.file.commit()

    def flush(self) -> None:
        self.commit()

    def abort(self) -> None:
        """Drop what was not committed (the store keeps what it had) and close the handle;
        on a file other handles still have open, only this handle is closed."""
        if not self.closed:
            self.closed = True
            self.file.release()

    def close(self) -> None:
        """Commit what is left, then release the handle (also when the commit fails)."""
        if self.closed:
            return
        try:
            self.file.commit()
        finally:
            self.abort()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed davstore file")
