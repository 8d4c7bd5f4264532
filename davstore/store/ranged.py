"""Ranged reads for object stores: one reader, windows that grow, any backend underneath.

A :class:`RangedReader` reads one object through a :class:`RangeSource` (S3's ranged
GetObject, GCS's ranged media download, Azure's ranged Get Blob). It asks for a window of
bytes at a time: the first window is small (a Range GET or a FUSE ``read`` costs little),
and each time the reader uses a window up sequentially the next one is twice as wide, up to
a limit. Positioning is lazy: ``seek`` only notes the offset; the next ``read`` continues the
open window, reads through a short forward gap, or opens a new window at the offset. The
first window pins the object's version (ETag, generation): later windows ask for that
version only, so a reader never stitches two versions together (the source raises
``Conflict`` instead). Never a whole-object download, never the whole window in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from typing import Protocol

from davstore.errors import Conflict, DavstoreError, StoreError, StoreUnavailable

__all__ = ["RangeBody", "RangeResponse", "RangeSource", "RangedReader", "Windows"]

logger = logging.getLogger(__name__)

MiB = 1 << 20


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


class RangeSource(Protocol):
    """How one backend opens windows of one object."""

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        """Open ``length`` bytes from ``start``; ``None`` when ``start`` is at or past the end.

        ``version`` (from an earlier window) MUST be sent as a precondition: an object
        replaced since raises ``Conflict``. Raises only davstore errors (``NotFound`` for a
        missing object).
        """

    def body_error(self, exc: Exception) -> DavstoreError:
        """The davstore error for ``exc``, raised while reading a body."""


@dataclasses.dataclass(frozen=True, slots=True)
class Windows:
    """Window sizes: the first, the largest, and how far a forward jump reads through."""

    first: int = 1 * MiB
    largest: int = 64 * MiB
    skip_limit: int = 256 << 10


class RangedReader:
    """A seekable reader of one object through ``source`` (see the module docstring).

    The first window opens at construction, so a missing object fails at open time.
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
        self._body_pos = 0
        self._body_end = 0
        self._window = windows.first
        self._size: int | None = None
        self._version: str | None = None
        #: The size the first window reported: another size later is another version.
        self._first_size: int | None = None
        self.closed = False
        self._open(offset)

    @property
    def size(self) -> int | None:
        """The object's size once a window told it."""
        return self._size

    def _open(self, start: int) -> None:
        self._close_body()
        response = self._source.open_range(start, self._window, self._version)
        if response is None:
            self._size = start if self._size is None else min(self._size, start)
            return
        if self._first_size is not None and response.size != self._first_size:
            with contextlib.suppress(Exception):
                response.body.close()
            raise Conflict(self._name, "the object changed while it was being read")
        self._first_size = response.size
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

    def _position(self) -> None:
        """Make the open window deliver the byte at ``self._pos`` next."""
        is_open = self._body is not None
        gap = self._pos - self._body_pos
        if is_open and gap == 0 and self._body_pos < self._body_end:
            return
        if is_open and 0 < gap <= self._windows.skip_limit and self._pos < self._body_end:
            while self._body_pos < self._pos and self._read_body(
                min(self._pos - self._body_pos, 1 << 16)
            ):
                pass
            if self._body_pos == self._pos:
                return
        if is_open and gap == 0:  # the window is used up: go on with a wider one
            self._window = min(self._window * 2, self._windows.largest)
        else:
            self._window = self._windows.first
        self._open(self._pos)

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
        self._body_pos += len(chunk)
        if not chunk and self._body_pos < self._body_end:
            self._close_body()
            raise StoreUnavailable(self._name, f"{self._label} ended the response early")
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError(f"read of a closed {self._label} stream")
        if size is None or size < 0:
            size = (self._size if self._size is not None else 1 << 62) - self._pos
        parts: list[bytes] = []
        while size > 0 and (self._size is None or self._pos < self._size):
            if (
                self._body is None
                or self._body_pos != self._pos
                or self._body_pos >= self._body_end
            ):
                self._position()
                if self._body is None:  # past the end
                    break
            chunk = self._read_body(min(size, self._body_end - self._body_pos))
            if not chunk:
                break
            parts.append(chunk)
            self._pos += len(chunk)
            size -= len(chunk)
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
        self._close_body()
        self.closed = True

    def __enter__(self) -> RangedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
