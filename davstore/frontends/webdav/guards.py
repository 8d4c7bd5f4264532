"""WSGI middlewares that refuse bad input before it reaches wsgidav or the store.

- :class:`PathGuard` (outermost, before wsgidav normalises anything): the request path and
  the ``Destination`` header must be share paths the VFS accepts. Refused with 400:
  ``..`` segments (wsgidav would silently resolve them), percent-encoded slashes, backslashes,
  dots or NULs left after decoding (double encoding), control characters, names that are
  not UTF-8, a leading ``//``, names over the VFS length limits and davstore's reserved
  names. Nothing refused here reaches a Storage.
- The others sit inside wsgidav's stack, after authentication (so an anonymous client gets
  401 first), and are configured through the ``davstore`` key of wsgidav's config:

  - :class:`ReadOnlyGuard`: on a read-only share every writing method is 403;
  - :class:`UploadLimit`: a PUT whose Content-Length (for a chunked body: Finder's
    ``X-Expected-Entity-Length``) exceeds ``max_upload_size`` is 413 (chunked bodies are
    also stopped at the limit by the provider);
  - :class:`XmlGuard`: XML bodies (PROPFIND, PROPPATCH, LOCK, ...) are read whole, up to
    ``max_xml_size`` (else 413), and refused with 400 when they declare a DOCTYPE or an
    ENTITY (billion laughs, external entities) or are not well-formed XML.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree
from wsgidav.mw.base_mw import BaseMiddleware

from davstore.errors import InvalidPath
from davstore.http.wsgi import Environ, StartResponse, WSGIApp
from davstore.vfs import VFS

__all__ = [
    "WRITING_METHODS",
    "XML_METHODS",
    "ChunkedInputGuard",
    "CloseUnreadBodies",
    "PathGuard",
    "ReadOnlyGuard",
    "UploadLimit",
    "XmlGuard",
    "check_path",
    "check_range",
    "respond",
    "xml_problem",
]

logger = logging.getLogger(__name__)


#: Methods that change the share (COPY changes its destination).
WRITING_METHODS = frozenset(
    {"PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "POST", "PATCH"}
)
#: Methods whose request body is XML.
XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "LOCK", "REPORT", "SEARCH"})

DEFAULT_MAX_XML_SIZE = 1 << 20

_ENCODED_TRICKS = ("%2f", "%5c", "%2e", "%00")
_DECLARATION = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)


def respond(
    environ: Environ,
    start_response: StartResponse,
    status: str,
    message: str,
    *,
    close: bool = False,
) -> list[bytes]:
    """A short plain-text answer; ``close`` when an unread request body is left behind."""
    body = f"{status}\n{message}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
        # Tell wsgidav's response wrapper not to drain the body we refused.
        environ["wsgidav.some_input_read"] = 1
    start_response(status, headers)
    return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


def _has_body(environ: Environ) -> bool:
    length = environ.get("CONTENT_LENGTH", "") or "0"
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked or length.strip() not in ("", "0")


def check_path(path: str) -> None:
    """Raise ``InvalidPath`` unless ``path`` (percent-decoded once) is a safe share path."""
    if path.startswith("//"):
        raise InvalidPath(path, "an absolute name is not a share path")
    if "%" in path:
        lowered = path.lower()
        if any(trick in lowered for trick in _ENCODED_TRICKS):
            raise InvalidPath(path, "percent-encoded separators, dots or NULs are refused")
    if ".." in path.split("/"):
        raise InvalidPath(path, "'..' is not allowed in a share path")
    VFS.normalize(path)


def _decode_path_info(environ: Environ) -> str:
    raw = environ.get("PATH_INFO", "")
    try:
        return str(raw.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError) as exc:
        raise InvalidPath(repr(raw), "the path is not UTF-8") from exc


def _destination_path(destination: str) -> str:
    """The share path a Destination header names, refusing encoded separators and NULs."""
    raw = urlsplit(destination).path.lower()
    if any(trick in raw for trick in ("%2f", "%5c", "%00")):
        raise InvalidPath(destination, "percent-encoded separators or NULs are refused")
    # Split first, then decode the path: as wsgidav does once fix_destination_parsing ran.
    return unquote(urlsplit(destination, allow_fragments=False).path) or "/"


class PathGuard:
    """Refuse request paths and Destination headers the share must never see, and a
    Content-Length that is not a number (400). ``OPTIONS *`` (the server's options, for any
    resource: RFC 9110 section 9.3.7) is answered here with ``options()``, the headers an
    ``OPTIONS`` without credentials gets (:func:`~davstore.frontends.webdav.desktop.share_options`);
    any other method may not name ``*`` (400)."""

    def __init__(self, app: WSGIApp, *, options: Callable[[], list[tuple[str, str]]]) -> None:
        self.app = app
        self.options = options

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "*":
            if environ.get("REQUEST_METHOD") == "OPTIONS":
                start_response("200 OK", self.options())
                return [b""]
            return respond(environ, start_response, "400 Bad Request", "'*' names no resource.")
        if "HTTP_RANGE" in environ:
            check_range(environ)
        length = (environ.get("CONTENT_LENGTH") or "").strip()
        if length and not length.isdigit():
            return respond(
                environ, start_response, "400 Bad Request", "Invalid Content-Length.", close=True
            )
        try:
            check_path(_decode_path_info(environ))
            destination = environ.get("HTTP_DESTINATION")
            if destination is not None:
                check_path(_destination_path(destination))
        except InvalidPath as exc:
            logger.info("refused %s %r: %s", environ.get("REQUEST_METHOD"), exc.path, exc)
            return respond(
                environ, start_response, "400 Bad Request", str(exc), close=_has_body(environ)
            )
        return self.app(environ, start_response)


_RANGE = re.compile(r"\s*bytes\s*=(.*)", re.IGNORECASE | re.DOTALL)
_RANGE_SPEC = re.compile(r"\s*(?:(\d+)\s*-\s*(\d*)|-\s*(\d+))\s*")
#: A first byte no file reaches: the resource answers 416 with its own length.
_UNSATISFIABLE = "bytes=9223372036854775807-"


def check_range(environ: Environ) -> None:
    """Make ``Range`` what RFC 9110 14.1.1 says before the resource reads it: a header that
    is not a valid byte-range set (``bytes=5-1``: a last byte before the first) is ignored
    (the whole file, 200); ranges that can satisfy nothing (``bytes=-0``) are dropped, and
    when none is left the resource is asked a range beyond any length (416 with its
    ``Content-Range``). wsgidav read ``5-1`` as its suffix ``-1`` and ``-0`` as an empty
    206."""
    match = _RANGE.fullmatch(str(environ["HTTP_RANGE"]))
    kept: list[str] = []
    for spec in match.group(1).split(",") if match else [""]:
        part = _RANGE_SPEC.fullmatch(spec)
        if part is None or (part.group(2) and int(part.group(2)) < int(part.group(1))):
            del environ["HTTP_RANGE"]  # not a range set: ignored
            return
        if part.group(3) is None or int(part.group(3)) > 0:
            kept.append(spec.strip())
    environ["HTTP_RANGE"] = "bytes=" + ",".join(kept) if kept else _UNSATISFIABLE


class ChunkedInputGuard:
    """Refuse a chunked request body the WSGI server did not decode (411).

    davstore's HTTP server (server.py) decodes ``Transfer-Encoding: chunked`` and says so with
    ``wsgi.input_terminated``; servers that do not (wsgiref, so Django's ``runserver``) hand
    the application an empty body, and a chunked PUT (macOS Finder uploads that way) would
    store an empty file. Refusing it keeps the old content and tells the client why.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("wsgi.input_terminated"):
            logger.warning(
                "refused a chunked %s: the WSGI server does not decode chunked bodies "
                "(serve with `davstore serve` or `manage.py davstore serve`)",
                environ.get("REQUEST_METHOD"),
            )
            return respond(
                environ,
                start_response,
                "411 Length Required",
                "this server cannot read chunked request bodies; send a Content-Length",
                close=True,
            )
        return self.app(environ, start_response)


class _TrackedInput:
    """``wsgi.input`` that knows whether the whole request body has been read."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream = stream
        self._left = length  # None: chunked, read until b""
        self.finished = length == 0

    def _seen(self, data: bytes, asked: int | None) -> bytes:
        if self._left is not None:
            self._left -= len(data)
            self.finished = self._left <= 0
        elif not data and asked != 0:
            self.finished = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.read(size), size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.readline(size), size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class CloseUnreadBodies:
    """Close the connection after a response that left part of the request body unread.

    Without this, the unread rest of a refused chunked PUT would be parsed as the next
    request on a keep-alive connection.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length: int | None = None if chunked else int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length == 0:  # no body: nothing can be left unread
            return self.app(environ, start_response)
        tracked = environ["wsgi.input"] = _TrackedInput(environ["wsgi.input"], length)

        def guarded_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            if not tracked.finished and not any(k.lower() == "connection" for k, _ in headers):
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, *exc)

        return self.app(environ, guarded_start)


class _Guard(BaseMiddleware):  # type: ignore[misc]
    """A wsgidav middleware reading its options from ``config["davstore"]``."""

    def __init__(self, wsgidav_app: Any, next_app: WSGIApp, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.options: dict[str, Any] = config.get("davstore", {})


class ReadOnlyGuard(_Guard):
    """On a read-only share, every writing method is 403 and nothing changes."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] in WRITING_METHODS:
            return respond(
                environ,
                start_response,
                "403 Forbidden",
                "This share is read-only.",
                close=_has_body(environ),
            )
        return self.next_app(environ, start_response)  # type: ignore[no-any-return]


class UploadLimit(_Guard):
    """A PUT announcing more than ``max_upload_size`` bytes is 413 before any is read."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        limit = int(self.options["max_upload_size"])
        if environ["REQUEST_METHOD"] == "PUT":
            chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            key = "HTTP_X_EXPECTED_ENTITY_LENGTH" if chunked else "CONTENT_LENGTH"
            try:
                length = int(environ.get(key) or 0)
            except ValueError:
                length = 0
            if length > limit:
                return respond(
                    environ,
                    start_response,
                    "413 Content Too Large",
                    f"Uploads are limited to {limit} bytes.",
                    close=True,
                )
        return self.next_app(environ, start_response)  # type: ignore[no-any-return]


class XmlGuard(_Guard):
    """Read XML request bodies up front and refuse hostile or malformed ones with 400."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in XML_METHODS or not _has_body(environ):
            return self.next_app(environ, start_response)  # type: ignore[no-any-return]
        limit = int(self.options.get("max_xml_size", DEFAULT_MAX_XML_SIZE))
        try:
            body = self._read(environ, limit)
        except _TooLarge:
            return respond(
                environ,
                start_response,
                "413 Content Too Large",
                f"XML request bodies are limited to {limit} bytes.",
                close=True,
            )
        except (OSError, ValueError) as exc:
            return respond(
                environ, start_response, "400 Bad Request", f"Unreadable body: {exc}", close=True
            )
        problem = xml_problem(body) if body else None
        if problem is not None:
            logger.info("refused %s body: %s", environ["REQUEST_METHOD"], problem)
            return respond(environ, start_response, "400 Bad Request", problem)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.next_app(environ, start_response)  # type: ignore[no-any-return]

    @staticmethod
    def _read(environ: Environ, limit: int) -> bytes:
        stream = environ["wsgi.input"]
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if declared:
            length = int(declared)
            if length < 0:
                raise ValueError("negative Content-Length")
            if length > limit:
                raise _TooLarge
            environ["wsgidav.all_input_read"] = 1
            return bytes(stream.read(length))
        parts, size = [], 0
        while chunk := stream.read(min(65536, limit + 1 - size)):
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _TooLarge
        environ["wsgidav.all_input_read"] = 1
        return b"".join(parts)


class _TooLarge(Exception):
    pass


_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}


def xml_problem(body: bytes) -> str | None:
    """Why ``body`` is refused, or ``None`` when it is a plain, well-formed XML document."""
    if _DECLARATION.search(body):
        return "XML bodies must not declare a DOCTYPE or entities"
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(**_PARSER_OPTIONS))
    except (etree.XMLSyntaxError, ValueError) as exc:
        return f"malformed XML: {exc}"
    if root.getroottree().docinfo.doctype:
        return "XML bodies must not declare a DOCTYPE or entities"
    return None
