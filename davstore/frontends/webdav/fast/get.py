"""GET and HEAD of a whole file, answered without wsgidav's request machinery.

Most requests a share sees are plain downloads. wsgidav runs a lot of Python on each
(path re-encoding, provider resolution, three layers of middleware, resource objects,
conditional-header evaluation) before the file is opened. :class:`PlainGet` sits in front
of wsgidav, after :class:`~davstore.frontends.webdav.guards.PathGuard`, and answers a GET
or HEAD itself only when all of these hold; anything else goes to wsgidav unchanged:

- the client may read the share: the share is anonymous, or the request carries valid
  HTTP Basic credentials of a configured user (Digest and everything else: wsgidav);
- no conditional header (``If``, ``If-Match``, ``If-None-Match``, ``If-Modified-Since``,
  ``If-Unmodified-Since``; ``If-Range`` only beside a ``Range``), no request body, Depth
  absent or ``0``; a ``Range`` wsgidav would answer with ``206`` (its parser, its rules:
  the first range of a list, ``If-Range`` by ETag or whole second, no range of an empty
  file), not one it refuses (``416``);
- the path names a file (folders get wsgidav's HTML listing) whose size, modification
  time and ETag the store knows.

The headers are wsgidav's, in its order: Content-Length, Last-Modified, Content-Type,
Date, ETag, Accept-Ranges, and those of content_safety.py (tests/webdav/fast/test_get.py
compares them). Their dates and
the MIME type are cached (by the second, by the name's suffixes). A file of at most
:data:`WHOLE` bytes is read before answering (by one store call where the store can:
``VFS.read_small``) and sent as one piece with its head. A bigger one (or range) whose
handle has an OS file (``ReadHandle.os_file``: a local disk) is answered with a
:class:`~davstore.http.wsgi.FileBody` of that range, which davstore's HTTP server sends
with ``sendfile(2)``; elsewhere it streams in ``block_size`` pieces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from wsgidav import util
from wsgidav.dav_error import DAVError

from davstore.errors import DavstoreError
from davstore.frontends.webdav.content_safety import CONTENT_HEADERS
from davstore.frontends.webdav.fast.common import CONDITIONALS, http_date, read_up_to, share_path
from davstore.frontends.webdav.fixed_users import basic_credentials_ok
from davstore.http.wsgi import Environ, FileBody, StartResponse, WSGIApp
from davstore.vfs import VFS, Entry, ReadHandle

__all__ = [
    "NOT_PLAIN_HEADERS",
    "WHOLE",
    "PlainGet",
]

#: The request headers, as on the wire in lower case, that make a GET not plain (the
#: conditions above, a range, a Depth, a body): :meth:`PlainGet.whole_file`'s callers
#: that read raw headers check these.
NOT_PLAIN_HEADERS = frozenset(
    {key[5:].lower().replace("_", "-").encode() for key in CONDITIONALS}
    | {b"range", b"depth", b"content-length", b"transfer-encoding"}
)

#: Files up to this size are read whole before the answer starts.
WHOLE = 64 * 1024

logger = logging.getLogger(__name__)


class PlainGet:
    """Answer plain whole-file GET and HEAD requests; pass everything else to ``app``.

    :param users: ``{name: password}`` as given to ``create_app``; ``None``: anonymous.
    :param config: wsgidav's configuration (``default_charset`` for text types).
    """

    def __init__(
        self,
        app: WSGIApp,
        vfs: VFS,
        *,
        users: dict[str, str] | None,
        block_size: int,
        config: dict[str, Any],
    ) -> None:
        self.app = app
        self.vfs = vfs
        self.users = users
        self.block_size = block_size
        self.config = config
        self._mime_types: dict[str, str] = {}  # by the name's suffixes
        self.enabled = "response_headers" not in config

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if not self.enabled or method not in ("GET", "HEAD") or not self._plain(environ):
            return self.app(environ, start_response)
        path = share_path(environ.get("PATH_INFO", ""))
        if path is None:
            return self.app(environ, start_response)
        ranged = "HTTP_RANGE" in environ
        if method == "GET" and not ranged and (whole := self.whole_file(path)) is not None:
            headers, data = whole
            start_response("200 OK", headers)
            return [data]
        try:
            handle = None
            data = b""
            # The length promised must be the length of the version sent (a folder raises
            # IsADirectory: wsgidav lists it).
            if method == "HEAD":
                entry = self.vfs.stat(path)
            else:
                handle = self.vfs.open_read(path, exact=True)
                entry = handle.entry
            if entry.is_dir or entry.size is None or entry.mtime is None or entry.etag is None:
                if handle is not None:
                    handle.close()
                return self.app(environ, start_response)
        except DavstoreError:
            return self.app(environ, start_response)  # wsgidav answers with the right error
        answered = self._part(path, entry, environ if ranged else None)
        if answered is None:  # wsgidav refuses the range (416)
            if handle is not None:
                handle.close()
            return self.app(environ, start_response)
        status, headers, start, length = answered
        if handle is not None and length > WHOLE and (fd := handle.os_file()) is not None:
            start_response(status, headers)
            return FileBody(fd, start, length, handle.close, block_size=self.block_size)
        if handle is not None and length <= WHOLE:
            try:
                handle.seek(start)
                data = _read_whole(handle, length)
            except DavstoreError:
                return self.app(environ, start_response)  # wsgidav answers with the right error
            finally:
                handle.close()
            handle = None
        start_response(status, headers)
        if handle is None:
            return [data]
        handle.seek(start)
        return _Body(handle, length, self.block_size)

    def whole_file(self, path: str) -> tuple[list[tuple[str, str]], bytes] | None:
        """The answer's headers and body for a plain GET of ``path`` (from
        :func:`share_path`), when it is a file of at most :data:`WHOLE` bytes that the VFS
        reads in one store call (``VFS.read_small``); None otherwise, and on an error
        (then wsgidav answers)."""
        try:
            small = self.vfs.read_small(path, WHOLE)
        except DavstoreError:
            return None
        if small is None:
            return None
        entry, data = small
        if entry.is_dir or entry.size is None or entry.mtime is None or entry.etag is None:
            return None
        return self._headers(path, entry), data

    def file_answer(
        self, path: str, ranges: dict[str, str] | None = None
    ) -> tuple[str, list[tuple[str, str]], FileBody] | None:
        """The answer's status, headers and a :class:`~davstore.http.wsgi.FileBody` for a
        plain GET of ``path`` (from :func:`share_path`): of the whole file, or of the part
        ``ranges`` asks (``HTTP_RANGE`` and ``HTTP_IF_RANGE`` as PathGuard leaves them), as
        :meth:`__call__` answers it, when the VFS opens the file without waiting for a
        device (``VFS.open_cached``) on an OS file; None otherwise, for a range wsgidav
        refuses, and on an error (then the usual way answers)."""
        try:
            handle = self.vfs.open_cached(path)
        except DavstoreError:
            return None
        if handle is None:
            return None
        entry = handle.entry
        fd = handle.os_file()
        if fd is None or entry.size is None or entry.mtime is None or entry.etag is None:
            handle.close()
            return None
        answered = self._part(path, entry, ranges)
        if answered is None:
            handle.close()
            return None
        status, headers, start, length = answered
        return (
            status,
            headers,
            FileBody(fd, start, length, handle.close, block_size=self.block_size),
        )

    def _part(
        self, path: str, entry: Entry, ranges: Environ | None
    ) -> tuple[str, list[tuple[str, str]], int, int] | None:
        """``(status, headers, start, length)`` of the answer to a GET of ``entry``, the
        part ``ranges`` asks (wsgidav's rules: :func:`_range`) or the whole file; None for
        a range wsgidav refuses (416)."""
        assert entry.size is not None
        headers = self._headers(path, entry)
        if ranges is None or "HTTP_RANGE" not in ranges:
            return "200 OK", headers, 0, entry.size
        part = _range(ranges, entry)
        if part is None:
            return None
        if part is _WHOLE_FILE:
            return "200 OK", headers, 0, entry.size
        start, end, length = part
        headers[0] = ("Content-Length", str(length))
        headers.append(("Content-Range", f"bytes {start}-{end}/{entry.size}"))
        return "206 Partial Content", headers, start, length

    def _headers(self, path: str, entry: Entry) -> list[tuple[str, str]]:
        assert entry.mtime is not None
        return [
            ("Content-Length", str(entry.size)),
            ("Last-Modified", http_date(int(entry.mtime))),
            ("Content-Type", self._mime_type(path)),
            ("Date", http_date(int(time.time()))),
            ("ETag", f'"{entry.etag}"'),
            ("Accept-Ranges", "bytes"),
            *CONTENT_HEADERS,
        ]

    def _mime_type(self, path: str) -> str:
        """wsgidav's type for ``path``, which depends on the name's suffixes only."""
        name = path.rpartition("/")[2].lstrip(".")  # ".tar" has no suffix, as in splitext
        dot = name.find(".")
        suffixes = name[dot:] if dot >= 0 else ""
        found = self._mime_types.get(suffixes)
        if found is None:
            if len(self._mime_types) > 4096:
                self._mime_types.clear()
            found = str(util.guess_mime_type("f" + suffixes, self.config))
            self._mime_types[suffixes] = found
        return found

    def _plain(self, environ: Environ) -> bool:
        if (environ.get("CONTENT_LENGTH") or "0") != "0" or "HTTP_TRANSFER_ENCODING" in environ:
            return False
        if environ.get("HTTP_DEPTH", "0") != "0":
            return False
        if not _REFUSED.isdisjoint(environ):
            return False
        if "HTTP_IF_RANGE" in environ and "HTTP_RANGE" not in environ:
            return False
        if self.users is None:
            return True
        return basic_credentials_ok(self.users, environ.get("HTTP_AUTHORIZATION", ""))


#: The conditions that leave a GET to wsgidav (If-Range beside a Range is PlainGet's).
_REFUSED = CONDITIONALS - {"HTTP_IF_RANGE"}


def _range(environ: Environ, entry: Entry) -> tuple[int, int, int] | None:
    """``(start, end, length)`` of the part of ``entry`` a GET with a Range header gets,
    as wsgidav's ``_send_resource`` decides it (its parser, its quirks), ``end`` included;
    ``(0, -1, -1)``: the whole file (If-Range not met, an empty file); None: wsgidav
    refuses the range (416)."""
    assert entry.size is not None and entry.mtime is not None
    if entry.size == 0:
        return _WHOLE_FILE
    if_range = environ.get("HTTP_IF_RANGE")
    if if_range is not None:
        seconds = util.parse_time_string(if_range)
        if seconds:
            if int(entry.mtime) != seconds:
                return _WHOLE_FILE
        elif if_range.strip('" ') != entry.etag:
            return _WHOLE_FILE
    try:
        ranges, _ = util.obtain_content_ranges(environ["HTTP_RANGE"], entry.size)
    except DAVError:
        return None
    if not ranges:
        return None
    start, end, length = ranges[0]  # wsgidav sends the first range of several
    return int(start), int(end), int(length)


_WHOLE_FILE = (0, -1, -1)


def _read_whole(handle: ReadHandle, size: int) -> bytes:
    data = read_up_to(handle, size)
    if len(data) < size:
        logger.warning("%r ended %d bytes early", handle.path, size - len(data))
    return data


class _Body:
    """The file's bytes in ``block_size`` pieces; closes the handle when done."""

    def __init__(self, handle: ReadHandle, size: int, block_size: int) -> None:
        self._handle = handle
        self._left = size
        self._block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        while self._left > 0:
            data = self._handle.read(min(self._left, self._block_size))
            if not data:
                logger.warning("%r ended %d bytes early", self._handle.path, self._left)
                return
            self._left -= len(data)
            yield data

    def close(self) -> None:
        self._handle.close()
