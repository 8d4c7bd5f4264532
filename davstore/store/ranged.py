"""Ranged reads for object stores: one reader, windows that grow, any backend underneath.

A :class:`RangedReader` reads one object through a :class:`RangeSource` (S3's ranged
GetObject, GCS's ranged media download, Azure's ranged Get Blob). It asks for a window of
bytes at a time: the first window is small (a Range GET or a FUSE ``read`` costs little),
and each time the reader uses a window up sequentially the next one is twice as wide, up to
a limit. Positioning is lazy: ``seek`` only notes the offset; the next ``read`` serves it
from memory, continues the open window, reads through a short forward gap, or opens a new
window at the offset.

Readers that are *almost* sequential cost no more than sequential ones. The kernel sends a
FUSE mount's reads of one file from several threads and a little out of order (readahead,
async reads), so the reader keeps the bytes it fetched last (:attr:`Windows.keep` behind
the position, plus what it read ahead) and serves reads a little behind or ahead from
memory; a jump that is not served so but stays near the stream (:attr:`Windows.near`)
keeps the window size instead of falling back to the first one. While a reader goes on
sequentially, the next window is opened on a background thread before the current one
runs out (at most one window ahead; cancelled on a jump or ``close``; its errors are
raised, translated, by the ``read`` that needs it): the wait for its first byte overlaps
the reading of the open one. A window opened ahead waits unread meanwhile; if the
endpoint dropped its connection by then, the rest of it is asked for once more.

The first window pins the object's version (ETag, generation): later windows ask for that
version only, so a reader never stitches two versions together (the source raises
``Conflict`` instead). Never a whole-object download: the bytes a reader holds are
bounded by ``keep + max(prefetch, skip_limit)`` plus one block (about 6 MiB by default).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import logging
import threading
from typing import BinaryIO, Protocol

from davstore.errors import Conflict, DavstoreError, StoreError, StoreUnavailable
from davstore.store.base import ObjectInfo

__all__ = [
    "RangeBody",
    "RangeResponse",
    "RangeSource",
    "RangedReader",
    "Windows",
    "reader_info",
]

logger = logging.getLogger(__name__)

MiB = 1 << 20

#: Bytes taken from a body at a time (what the reader keeps is made of such blocks).
_BLOCK = 256 << 10


class RangeBody(Protocol):
    """The streamed body of one ranged response."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class RangeResponse:
    """One window as a source opened it."""

    body: RangeBody
    #: Offset of the first byte ``body`` delivers (0 when the store sent the whole object).
    start: int
    #: Bytes ``body`` delivers.
    length: int
    #: Size of the whole object.
    size: int
    #: What pins later windows to this version (ETag, generation); ``None`` if unknown.
    version: str | None
    #: The version's ETag as the store's listings give it (for ``stream_info``).
    etag: str | None = None
    #: The version's modification time (seconds since the epoch), where the answer says.
    mtime: float | None = None


class RangeSource(Protocol):
    """How one backend opens windows of one object."""

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        """Open ``length`` bytes from ``start``; ``None`` when ``start`` is at or past the end.

        ``version`` (from an earlier window) MUST be sent as a precondition: an object
        replaced since raises ``Conflict``. Raises only davstore errors (``NotFound`` for a
        missing object). May be called from a background thread (prefetch).
        """

    def body_error(self, exc: Exception) -> DavstoreError:
        """The davstore error for ``exc``, raised while reading a body."""


@dataclasses.dataclass(frozen=True, slots=True)
class Windows:
    """How a reader fetches: window sizes, read-through, memory kept, prefetch."""

    #: The first window, and the largest one (it doubles while reading on).
    first: int = 1 * MiB
    largest: int = 64 * MiB
    #: A forward jump up to this far is read through (the skipped bytes are kept).
    skip_limit: int = 2 * MiB
    #: Bytes kept in memory behind the newest ones, for reads a little behind.
    keep: int = 4 * MiB
    #: A jump this near the stream keeps the window size (else it starts at ``first``).
    near: int = 16 * MiB
    #: While reading on, open the next window on a background thread (one window ahead).
    ahead: bool = True
    #: Bytes of that window the thread reads into memory too. 0 by default: the request's
    #: wait (time to first byte) is what the thread hides; bytes read on other threads
    #: land in other malloc arenas, which glibc keeps, and the resident memory grows.
    prefetch: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Version:
    size: int
    etag: str | None
    mtime: float | None


class _Prefetch:
    """The window at ``start`` opened, and its first ``preload`` bytes read, on a thread."""

    def __init__(
        self,
        source: RangeSource,
        start: int,
        length: int,
        version: str | None,
        preload: int,
        *,
        label: str,
        name: str,
    ) -> None:
        self.start = start
        self.length = length
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._cancelled = False
        self._response: RangeResponse | None = None
        self._chunks: list[bytes] = []
        self._error: BaseException | None = None
        thread = threading.Thread(
            target=self._run,
            args=(source, version, preload, label, name),
            name=f"davstore-prefetch-{label}",
            daemon=True,  # a hung endpoint never holds the process up at exit
        )
        thread.start()

    def _run(
        self, source: RangeSource, version: str | None, preload: int, label: str, name: str
    ) -> None:
        response: RangeResponse | None = None
        chunks: list[bytes] = []
        error: BaseException | None = None
        try:
            response = source.open_range(self.start, self.length, version)
            want = 0 if response is None else min(preload, response.length)
            got = 0
            while response is not None and got < want and not self._cancelled:
                try:
                    chunk = bytes(response.body.read(min(_BLOCK, want - got)))
                except Exception as exc:
                    translated = source.body_error(exc)
                    if isinstance(translated, StoreError):
                        logger.warning("%s read ahead of %r failed: %s", label, name, exc)
                    raise translated from exc
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except BaseException as exc:  # kept for the read that needs this window
            error = exc
        with self._lock:
            cancelled = self._cancelled
            if not cancelled:
                self._response, self._chunks, self._error = response, chunks, error
            self._done.set()
        if cancelled and response is not None:
            with contextlib.suppress(Exception):
                response.body.close()

    def result(self) -> tuple[RangeResponse | None, list[bytes]]:
        """Wait for the window; raises what opening or reading it raised."""
        self._done.wait()
        with self._lock:
            response, chunks, error = self._response, self._chunks, self._error
            self._response, self._chunks, self._error = None, [], None
        if error is not None:
            raise error
        return response, chunks

    def cancel(self) -> None:
        """Drop the window (its body is closed now, or by the thread when it is done)."""
        with self._lock:
            self._cancelled = True
            response, self._response, self._chunks = self._response, None, []
        if response is not None:
            with contextlib.suppress(Exception):
                response.body.close()


class RangedReader:
    """A seekable reader of one object through ``source`` (see the module docstring).

    The first window opens at construction, so a missing object fails at open time.
    Not thread-safe: one caller at a time (``ReadHandle`` holds a lock around it).
    """

    def __init__(
        self, source: RangeSource, name: str, offset: int, windows: Windows, *, label: str
    ) -> None:
        self._source = source
        self._name = name
        self._windows = windows
        self._label = label
        self._pos = offset
        self._body: RangeBody | None = None
        #: Where the stream is: the next byte the open body delivers (or would).
        self._body_pos = offset
        self._body_end = offset
        self._window = windows.first
        #: The open window continues the one before (or is wide): worth reading ahead.
        self._sequential = False
        #: The open window waited, half read, while the one before was read (prefetch):
        #: an endpoint may have dropped it meanwhile, so a lost connection is retried once.
        self._may_retry = False
        self._prefetch: _Prefetch | None = None
        #: Blocks fetched last, as (offset, bytes), oldest first; ``_kept_bytes`` in all.
        self._kept: collections.deque[tuple[int, bytes]] = collections.deque()
        self._kept_bytes = 0
        self._size: int | None = None
        self._version: str | None = None
        #: What the first window's answer said of the version read (``stream_info``).
        self._first: _Version | None = None
        self.closed = False
        self._open(offset)

    @property
    def size(self) -> int | None:
        """The object's size once a window told it."""
        return self._size

    @property
    def version_info(self) -> tuple[int, str | None, float | None] | None:
        """Size, ETag and modification time of the version being read, from the first
        window's answer; ``None`` when the reader started at or past the end and learnt
        nothing of the version."""
        if self._first is None:
            return None
        return self._first.size, self._first.etag, self._first.mtime

    # -- windows -----------------------------------------------------------------------

    def _open(self, start: int, length: int | None = None) -> None:
        self._close_body()
        self._may_retry = False
        self._body_pos = self._body_end = start
        response = self._source.open_range(start, length or self._window, self._version)
        self._use(response, start)

    def _use(self, response: RangeResponse | None, start: int) -> None:
        """Make ``response`` (opened at ``start``) the open window."""
        if response is None:
            self._size = start if self._size is None else min(self._size, start)
            return
        if self._first is not None and response.size != self._first.size:
            with contextlib.suppress(Exception):
                response.body.close()
            raise Conflict(self._name, "the object changed while it was being read")
        if self._first is None:
            self._first = _Version(response.size, response.etag, response.mtime)
        self._version = self._version or response.version
        self._size = response.size
        self._body = response.body
        self._body_pos = response.start
        self._body_end = response.start + response.length

    def _close_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            with contextlib.suppress(Exception):
                body.close()

    def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            prefetch, self._prefetch = self._prefetch, None
            prefetch.cancel()

    def _next_window(self) -> None:
        """Open the window right after the used-up one (the prefetched one if there is).

        A failure leaves the window size as it was, so the read that retries asks again
        for the same window."""
        start = self._body_end
        self._close_body()
        previous = self._window
        self._window = min(previous * 2, self._windows.largest)
        self._sequential = True
        prefetch, self._prefetch = self._prefetch, None
        try:
            if prefetch is None or prefetch.start != start:
                if prefetch is not None:
                    prefetch.cancel()
                self._open(start)
                return
            self._window = prefetch.length
            response, chunks = prefetch.result()
        except BaseException:
            self._window = previous
            raise
        self._use(response, start)
        if response is not None:
            for chunk in chunks:
                self._keep(self._body_pos, chunk)
                self._body_pos += len(chunk)
            self._may_retry = self._body_pos < self._body_end

    def _maybe_prefetch(self) -> None:
        """Start opening the next window while a sequential reader uses the open one: the
        time an answer takes to start (on moto, a copy of the whole object) is spent
        while the open window is read."""
        windows = self._windows
        if (
            not windows.ahead
            or not self._sequential
            or self._prefetch is not None
            or self._body is None
            or self._size is None
            or self._body_end >= self._size
        ):
            return
        self._prefetch = _Prefetch(
            self._source,
            self._body_end,
            min(self._window * 2, windows.largest),
            self._version,
            windows.prefetch,
            label=self._label,
            name=self._name,
        )

    def _jump(self, pos: int) -> None:
        """Open a window at ``pos``, away from the stream and from the kept bytes."""
        self._cancel_prefetch()
        if abs(pos - self._body_pos) > self._windows.near:
            self._window = self._windows.first
            self._sequential = False
        else:  # near-sequential: keep the pace
            self._sequential = self._window > self._windows.first
        self._open(pos)

    # -- bytes -------------------------------------------------------------------------

    def _keep(self, start: int, chunk: bytes) -> None:
        self._kept.append((start, chunk))
        self._kept_bytes += len(chunk)
        limit = self._windows.keep + max(self._windows.prefetch, self._windows.skip_limit)
        while self._kept_bytes - len(self._kept[0][1]) >= limit:
            self._kept_bytes -= len(self._kept.popleft()[1])

    def _from_kept(self, pos: int, size: int) -> memoryview | None:
        for start, chunk in reversed(self._kept):
            if start <= pos < start + len(chunk):
                offset = pos - start
                return memoryview(chunk)[offset : offset + size]
        return None

    def _fill(self, want: int) -> bool:
        """Read the next block of the stream into memory (opening the next window when
        the open one is used up); False at the end of the object."""
        if self._body is None or self._body_pos >= self._body_end:
            if self._size is not None and self._body_end >= self._size:
                return False
            self._next_window()
            if self._body is None:
                return False
            if self._body_pos >= self._body_end:  # all of it came with the prefetch
                self._maybe_prefetch()
                return True
        size = min(max(want, _BLOCK), self._body_end - self._body_pos)
        try:
            chunk = self._read_body(size)
        except StoreUnavailable:
            if not self._may_retry:
                raise
            self._may_retry = False
            logger.info("%s read of %r: reopening a window read ahead", self._label, self._name)
            # The rest of the window, of the same version (If-Match), from where it broke.
            self._open(self._body_pos, self._body_end - self._body_pos)
            if self._body is None:
                return False
            size = min(size, self._body_end - self._body_pos)
            chunk = self._read_body(size)
        if not chunk:
            return False
        self._keep(self._body_pos, chunk)
        self._body_pos += len(chunk)
        self._maybe_prefetch()
        return True

    def _read_body(self, size: int) -> bytes:
        body = self._body
        if body is None:
            return b""
        try:
            chunk = bytes(body.read(size))
        except Exception as exc:
            self._close_body()
            error = self._source.body_error(exc)
            if isinstance(error, StoreError):
                logger.warning("%s read of %r failed: %s", self._label, self._name, exc)
            raise error from exc
        if not chunk and self._body_pos < self._body_end:
            self._close_body()
            raise StoreUnavailable(self._name, f"{self._label} ended the response early")
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError(f"read of a closed {self._label} stream")
        if size is None or size < 0:
            size = (self._size if self._size is not None else 1 << 62) - self._pos
        parts: list[memoryview] = []
        while size > 0 and (self._size is None or self._pos < self._size):
            data = self._from_kept(self._pos, size)
            if data is not None:
                parts.append(data)
                self._pos += len(data)
                size -= len(data)
                continue
            gap = self._pos - self._body_pos
            if 0 <= gap <= self._windows.skip_limit:
                # The stream is at the position, or a little behind it: read on.
                if not self._fill(size + gap):
                    break
                continue
            self._jump(self._pos)
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self._size or 0
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._cancel_prefetch()
        self._close_body()
        self._kept.clear()
        self._kept_bytes = 0
        self.closed = True

    def __enter__(self) -> RangedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def reader_info(name: str, stream: BinaryIO) -> ObjectInfo | None:
    """``stream_info`` of a store whose streams are :class:`RangedReader`: the metadata of
    the version the first window read (no request); ``None`` when the answer did not name
    the version (no ETag: gcp-storage-emulator), so the caller asks the store instead."""
    info = stream.version_info if isinstance(stream, RangedReader) else None
    if info is None or info[1] is None:
        return None
    size, etag, mtime = info
    return ObjectInfo(name, False, size, mtime, etag)
