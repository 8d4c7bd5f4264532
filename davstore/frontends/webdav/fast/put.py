"""PUT of a small whole file, answered without wsgidav's request machinery.

Desktop clients and sync tools upload many small files. wsgidav runs a lot of Python on
each PUT (two resource lookups, lock checks taken three times, a write transaction,
resource objects) around the VFS write. :class:`PlainPut` sits in front of wsgidav, with
:class:`~davstore.frontends.webdav.fast.get.PlainGet`, and stores the body itself only
when all of these hold; anything else goes to wsgidav unchanged:

- the share is writable, the client may use it (anonymous share, or valid HTTP Basic
  credentials of a configured user: Digest and everything else go to wsgidav);
- the body has a Content-Length of at most :data:`MAX_BODY` bytes and within the share's
  upload limit (a bigger one: wsgidav's streaming PUT, or its 413), no Transfer-Encoding,
  Content-Encoding or Content-Range;
- no conditional header (``If``, ``If-*``): lock tokens and preconditions are wsgidav's;
- the lock storage holds no lock at all (checked while lock creation is held off, so no
  LOCK is granted between the check and the commit, by this process or another sharing
  its SQLite lock file: sqlite_locks.py), and is not Redis (replicas);
- the path names a file or a new name in an existing folder, and is not a macOS metadata
  name the share hides (see macmeta.py).

The body is read whole first; one shorter than its Content-Length (the client went away)
is refused with 400 before anything is staged, as the provider refuses it. The write goes
through the VFS (``VFS.put_file``) like wsgidav's (exact name, staged and moved into place:
no partial file), attributed to the request's user. When the VFS refuses (a full disk, a
failing store) the staged bytes are dropped, nothing changed, and the error is answered as
wsgidav answers it (errors.py's status, wsgidav's error page); the write is not tried
again. The answer is wsgidav's own: ``201 Created`` (its status page) for a new file,
``204 No Content`` for a replaced one, with the ETag of the stored version
(tests/webdav/fast/test_put.py compares both servers).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from typing import Any

from wsgidav import util
from wsgidav.dav_error import HTTP_CREATED, DAVError
from wsgidav.error_printer import ErrorPrinter

from davstore.errors import DavstoreError
from davstore.frontends.webdav.actor import ORIGIN
from davstore.frontends.webdav.desktop import nfc
from davstore.frontends.webdav.error_status import to_dav_error
from davstore.frontends.webdav.fast.common import CONDITIONALS, http_date, read_up_to, share_path
from davstore.frontends.webdav.fixed_users import basic_user
from davstore.frontends.webdav.state import holds_locks, lock_guard
from davstore.frontends.webdav.state.macmeta import is_mac_metadata
from davstore.http.wsgi import Environ, StartResponse, WSGIApp
from davstore.vfs import VFS
from davstore.vfs.events import acting_as

__all__ = ["MAX_BODY", "NOT_PLAIN_PUT_HEADERS", "PlainPut"]

logger = logging.getLogger(__name__)


#: Bodies up to this size are read whole and stored here; bigger ones stream through wsgidav.
MAX_BODY = 1 << 20

_ERROR_KEY = "davstore.put_error"

#: Request headers that send a PUT to wsgidav.
_REFUSED = (
    frozenset({"HTTP_TRANSFER_ENCODING", "HTTP_CONTENT_ENCODING", "HTTP_CONTENT_RANGE"})
    | CONDITIONALS
)
#: The same, as on the wire in lower case (for callers that read raw headers).
NOT_PLAIN_PUT_HEADERS = frozenset(key[5:].lower().replace("_", "-").encode() for key in _REFUSED)


class PlainPut:
    """Store plain small PUT bodies; pass everything else to ``app``.

    :param users: ``{name: password}`` as given to ``create_app``; ``None``: anonymous.
    :param config: wsgidav's configuration.
    :param lock_storage: wsgidav's lock storage (the fast path needs it empty).
    :param max_upload_size: the share's upload limit (bigger bodies: wsgidav's 413).
    :param hide_mac_metadata: macOS metadata names go to the side store (wsgidav's stack).
    """

    def __init__(
        self,
        app: WSGIApp,
        vfs: VFS,
        *,
        users: dict[str, str] | None,
        config: dict[str, Any],
        lock_storage: object,
        max_upload_size: int | None,
        hide_mac_metadata: bool,
    ) -> None:
        self.app = app
        self.vfs = vfs
        self.users = users
        self.lock_storage = lock_storage
        self.hide_mac_metadata = hide_mac_metadata
        self.max_body = MAX_BODY if max_upload_size is None else min(MAX_BODY, max_upload_size)
        self._guard = lock_guard(lock_storage)
        self._errors = ErrorPrinter(app, _raise_error, config)
        self._created: tuple[int, bytes] = (-1, b"")
        self.enabled = (
            self._guard is not None
            and not vfs.read_only
            and "response_headers" not in config
            and not config.get("honor_mtime_header")
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "PUT" or not self.enabled:
            return self.app(environ, start_response)
        length = self._plain_length(environ)
        path = share_path(environ.get("PATH_INFO", "")) if length is not None else None
        if length is None or path is None:
            return self.app(environ, start_response)
        target = self._target(path, environ.get("HTTP_AUTHORIZATION", ""))
        if target is None:
            return self.app(environ, start_response)
        body = read_up_to(environ["wsgi.input"], length)
        if len(body) < length:
            # As the provider answers a body that broke off (provider.py's _PutStream).
            logger.warning(
                "PUT %r broke off after %d of %s bytes: not stored", target[0], len(body), length
            )
            error = DAVError(400, "the request body ended before its Content-Length")
            return self._fail(environ, start_response, error)
        stored = self._put(target, body, environ.get("REMOTE_USER") or None)
        if isinstance(stored, DAVError):
            return self._fail(environ, start_response, stored)
        if stored is None:  # a lock exists: wsgidav decides, from the bytes read here
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        status, headers, page = stored
        start_response(status, headers)
        return [page]

    def put_quick(
        self, path: str, body: bytes, authorization: str
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The answer to a plain PUT of ``body`` to ``path`` (from :func:`share_path`) made
        without an environ (``DavstoreApp.answer_quick``): stored and answered as
        :meth:`__call__` stores and answers it; None where :meth:`__call__` passes the
        request to wsgidav (nothing was written then)."""
        if not self.enabled or len(body) > self.max_body:
            return None
        target = self._target(path, authorization)
        if target is None:
            return None
        stored = self._put(target, body, None)
        if isinstance(stored, DAVError):
            collected: list[Any] = []
            page = b"".join(
                self._fail(
                    {"REQUEST_METHOD": "PUT", "PATH_INFO": path, "SCRIPT_NAME": ""},
                    lambda status, headers, *exc: collected.extend((status, headers)),
                    stored,
                )
            )
            return collected[0], collected[1], page
        return stored

    def _target(self, path: str, authorization: str) -> tuple[str, str | None, bool] | None:
        """Where a plain PUT goes: the path (NFC), the user it is made as, and whether it
        replaces a file; None when the PUT is wsgidav's (a hidden macOS name, credentials
        other than a user's Basic ones, a folder, a missing parent, an invalid name)."""
        path = nfc(path)
        if self.hide_mac_metadata and is_mac_metadata(path):
            return None
        user: str | None = None
        if self.users is not None:
            user = basic_user(self.users, authorization)
            if user is None:
                return None
        try:
            entry, folder = self.vfs.lookup_to_make(path)
            if entry is None and (folder is None or not folder.is_dir):
                return None  # wsgidav's 409
        except DavstoreError:
            return None  # wsgidav's 400 (or its error)
        if entry is not None and entry.is_dir:
            return None  # wsgidav's 405
        return path, user, entry is not None

    def _put(
        self, target: tuple[str, str | None, bool], body: bytes, remote_user: str | None
    ) -> tuple[str, list[tuple[str, str]], bytes] | DAVError | None:
        """Store ``body`` at ``target`` (:meth:`_target`'s): the answer's status, headers
        and body; the error to answer when the VFS refused (nothing changed); None when a
        lock exists (nothing done)."""
        path, user, replaces = target
        stored = self._store(path, body, user or remote_user)
        if isinstance(stored, DavstoreError):
            return to_dav_error(stored, method="PUT")
        if stored is None:
            return None
        headers = []
        if stored.etag is not None:
            headers.append(("ETag", f'"{util.checked_etag(stored.etag)}"'))
        now = int(time.time())
        if replaces:  # as util.send_status_response answers 204
            return (
                "204 No Content",
                [("Content-Length", "0"), ("Date", http_date(now)), *headers],
                b"",
            )
        page = self._created_page(now)
        return (
            "201 Created",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Date", http_date(now)),
                ("Content-Length", str(len(page))),
                *headers,
            ],
            page,
        )

    def _created_page(self, now: int) -> bytes:
        """wsgidav's ``201 Created`` page (util.send_status_response), made once a second:
        it only differs by the time stamp at its end. (Threads that meet at a new second
        each make the same page; the tuple is replaced whole.)"""
        made = self._created
        if made[0] != now:
            _, page = DAVError(HTTP_CREATED).get_response_page()
            made = self._created = (now, page)
        return made[1]

    def _fail(
        self, environ: Environ, start_response: StartResponse, error: DAVError
    ) -> Iterable[bytes]:
        """wsgidav's error answer (its ErrorPrinter) for ``error``."""
        environ[_ERROR_KEY] = error
        return self._errors(environ, start_response)  # type: ignore[no-any-return]

    def _plain_length(self, environ: Environ) -> int | None:
        declared = environ.get("CONTENT_LENGTH") or ""
        if not declared.isdigit() or not environ.keys().isdisjoint(_REFUSED):
            return None
        length = int(declared)
        return length if length <= self.max_body else None

    def _store(self, path: str, body: bytes, user: str | None) -> Any:
        """The entry of the stored file; None when a lock exists (nothing done); the
        error when the VFS refused the write (nothing changed)."""
        try:
            assert self._guard is not None  # enabled only with a guard
            with self._guard():
                if holds_locks(self.lock_storage):
                    return None
                with acting_as(user, ORIGIN):
                    stored, _ = self.vfs.put_file(path, body)
                return stored
        except DavstoreError as exc:
            return exc


def _raise_error(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise environ.pop(_ERROR_KEY)
