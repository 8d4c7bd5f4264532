"""What desktop WebDAV clients need beyond RFC 4918: Explorer, Finder, Office.

- :class:`AnonymousOptions` (outside wsgidav, after the path guard): an ``OPTIONS`` request
  without credentials is answered ``200`` with ``DAV: 1,2``, ``Allow`` and
  ``MS-Author-Via: DAV`` (:func:`share_options`, which ``OPTIONS *`` answers too).
  Windows' Mini-Redirector and Office send ``OPTIONS`` before they log in and give up on
  a ``401``; the answer says nothing about the share's content (it is the same for every
  path). Every other method still needs credentials.
- :class:`NfcPaths` (inside wsgidav, after authentication, so a Digest ``uri`` is checked
  against the path as the client sent it): the request path and the ``Destination`` header
  are NFC-normalised, so a name Finder sends in NFD and the same name sent in NFC by
  another client reach the same file *and* the same locks and dead properties (wsgidav
  keys both by URL).
- :func:`fix_destination_parsing`: wsgidav 4 percent-decodes the whole ``Destination``
  header before splitting it, so a target name holding ``?`` or ``;`` (``%3F``, ``%3B``)
  was cut there (``MOVE`` to ``q?uery.txt`` made ``q``). The header is split first and
  its path decoded after.
- Win32 properties (:data:`WIN32_NAMESPACE`): Explorer sends ``Win32CreationTime``,
  ``Win32LastAccessTime``, ``Win32LastModifiedTime`` and ``Win32FileAttributes`` with
  ``PROPPATCH``. They are kept as dead properties; ``Win32LastModifiedTime`` is also applied
  as the file's modification time where the store keeps one (``VFS.set_mtime``), so
  ``getlastmodified`` reports it (:func:`win32_mtime_ns`). Explorer may send it before the
  ``PUT`` that carries the bytes: a ``PUT`` made under a lock applies it again after the
  commit (:func:`reapply_win32_mtime`).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from wsgidav.mw.base_mw import BaseMiddleware

from davstore.http.wsgi import Environ, StartResponse, WSGIApp

if TYPE_CHECKING:
    from davstore.vfs import VFS

__all__ = [
    "WIN32_LAST_MODIFIED",
    "WIN32_NAMESPACE",
    "AnonymousOptions",
    "NfcPaths",
    "fix_destination_parsing",
    "nfc",
    "options_headers",
    "share_options",
    "win32_mtime_ns",
]

logger = logging.getLogger(__name__)


WIN32_NAMESPACE = "{urn:schemas-microsoft-com:}"
WIN32_LAST_MODIFIED = WIN32_NAMESPACE + "Win32LastModifiedTime"

_READ_METHODS = ("OPTIONS", "GET", "HEAD", "PROPFIND")
_WRITE_METHODS = ("PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK")


def options_headers(*, read_only: bool, report: bool = False) -> list[tuple[str, str]]:
    """The headers of an ``OPTIONS`` answer given before login, or for ``*``: the share's
    options whatever the path (class 2 unless read-only).

    ``Allow`` names every method the share answers on some resource: what the
    authenticated answer names depends on the path (a file's, a folder's, a missing
    name's differ), and an answer that followed the path would tell a client without
    credentials whether, and as what, the path exists. With ``report`` (a share with a
    change journal) ``REPORT`` is among them, last, as the authenticated root's ``Allow``
    names it (RFC 6578 section 3: sync-collection is answered on every collection, and the
    root always is one); that tells only what the share is, as ``DAV`` does of read-only."""
    methods = _READ_METHODS if read_only else _READ_METHODS + _WRITE_METHODS
    if report:
        methods = (*methods, "REPORT")
    return [
        ("Content-Length", "0"),
        ("DAV", "1" if read_only else "1,2"),
        ("Allow", ", ".join(methods)),
        ("MS-Author-Via", "DAV"),
    ]


def share_options(vfs: VFS) -> list[tuple[str, str]]:
    """:func:`options_headers` of the share ``vfs`` serves, as it is now: read-only or
    not, and with ``REPORT`` once it follows a change journal (which is attached after
    its app is made)."""
    return options_headers(read_only=vfs.read_only, report=vfs.change_feed is not None)


class AnonymousOptions:
    """Answer ``OPTIONS`` without credentials with :func:`share_options` of ``vfs``; pass
    everything else to ``app``."""

    def __init__(self, app: WSGIApp, vfs: VFS) -> None:
        self.app = app
        self.vfs = vfs

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "OPTIONS" or environ.get("HTTP_AUTHORIZATION"):
            return self.app(environ, start_response)
        start_response("200 OK", share_options(self.vfs))
        return [b""]


def nfc(text: str) -> str:
    """``text`` in Unicode NFC (ASCII is returned as it is)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


class NfcPaths(BaseMiddleware):  # type: ignore[misc]
    """NFC-normalise ``PATH_INFO`` and the path of the ``Destination`` header."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        environ["PATH_INFO"] = nfc(path)
        destination = environ.get("HTTP_DESTINATION")
        if destination:
            parts = urlsplit(destination, allow_fragments=False)
            decoded = unquote(parts.path)
            normal = nfc(decoded)
            if normal != decoded:
                environ["HTTP_DESTINATION"] = parts._replace(
                    path=quote(normal, safe="/!*'(),$-_|.~:@&=+")
                ).geturl()
        return self.next_app(environ, start_response)  # type: ignore[no-any-return]


class _Destination(NamedTuple):
    scheme: str
    netloc: str
    path: str
    params: str
    query: str
    fragment: str


def _keep(header: str) -> str:
    """Stands in for ``unquote`` in wsgidav's COPY/MOVE: the header stays encoded."""
    return header


def _parse_destination(header: str, scheme: str = "", allow_fragments: bool = True) -> Any:
    """Split the still-encoded header, then decode its path (query and ``;`` stay in it)."""
    parts = urlsplit(header, scheme, allow_fragments=False)
    return _Destination(parts.scheme, parts.netloc, unquote(parts.path), "", "", "")


def fix_destination_parsing() -> None:
    """Make wsgidav split ``Destination`` before decoding it (idempotent).

    ``wsgidav.request_server`` uses ``unquote`` and ``urlparse`` only to read that header
    (checked by tests/webdav/test_desktop.py for the installed version).
    """
    from wsgidav import request_server

    request_server.unquote = _keep
    request_server.urlparse = _parse_destination


def win32_mtime_ns(text: str | None) -> int | None:
    """A ``Win32LastModifiedTime`` value (an RFC 1123 date) in ns, ``None`` if unreadable."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return int(when.timestamp()) * 1_000_000_000
