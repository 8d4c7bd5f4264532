"""The WSGI application: wsgidav configured for one VFS, behind davstore's guards.

Request flow, outermost first::

    CloseUnreadBodies   close the connection when a request body was left unread
    ChunkedInputGuard   a chunked body the WSGI server did not decode -> 411
    PathGuard           refuse unsafe paths and Destination headers (400)
    AnonymousOptions    OPTIONS without credentials -> 200 (Explorer, Office; desktop.py)
    PlainGet            whole-file GET/HEAD answered directly (see fast/get.py)
    PlainPut            small whole-file PUT stored directly when no lock exists (fast/put.py)
    WsgiDAVApp          wsgidav: path normalisation, logging
      ErrorPrinter      any exception -> an HTTP error page (davstore's: pages.py)
      DavstoreAuthenticator  Basic/Digest against ``users`` (or anonymous) -> 401,
                        Digest nonces verified (auth.py, digest.py)
      ActingAs          VFS changes attributed to the authenticated user
      NfcPaths          request path and Destination NFC-normalised (desktop.py)
      ReadOnlyGuard     writing methods on a read-only share -> 403
      UploadLimit       PUT over ``max_upload_size`` -> 413
      XmlGuard          hostile or malformed XML bodies -> 400
      MacMetadataSideStore  ._* and .DS_Store kept out of the store (macmeta.py, "hide")
      DirectoryListing  davstore's HTML page for GET on a folder (listing.py)
      SyncCollectionReport  REPORT sync-collection from the change journal (sync.py)
      RequestResolver   WebDAV methods -> VfsProvider -> VFS

Before all of these, the HTTP server offers a request alone on its connection, with no
body or a small one, to :meth:`DavstoreApp.answer_quick` (server.py) before it builds an
environ: a plain GET of a file of at most 64 KiB, or a plain PUT of at most 64 KiB, is
answered there with PlainGet's or PlainPut's answer (``whole_file``, ``put_quick``), after
the checks PathGuard and they make, and told to the observers the middleware around the
app registered (Observability: metrics and the access log). On a local disk that is most
GETs and PUTs a share sees; it spares them the environ, the middleware and the WSGI calls.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from davstore.errors import InvalidPath
from davstore.frontends.webdav.actor import ActingAs
from davstore.frontends.webdav.desktop import (
    AnonymousOptions,
    NfcPaths,
    fix_destination_parsing,
    share_options,
)
from davstore.frontends.webdav.digest import (
    COUNTS_FILE,
    DigestNonces,
    NonceCounts,
    RedisNonceCounts,
    SqliteNonceCounts,
    load_secret,
)
from davstore.frontends.webdav.fast.common import share_path
from davstore.frontends.webdav.fast.get import NOT_PLAIN_HEADERS, PlainGet
from davstore.frontends.webdav.fast.put import NOT_PLAIN_PUT_HEADERS, PlainPut
from davstore.frontends.webdav.fixed_users import (
    DavstoreAuthenticator,
    UserDomainController,
    basic_credentials_ok,
)
from davstore.frontends.webdav.guards import (
    ChunkedInputGuard,
    CloseUnreadBodies,
    PathGuard,
    ReadOnlyGuard,
    UploadLimit,
    XmlGuard,
    check_path,
    check_range,
)
from davstore.frontends.webdav.limits import DavLimits
from davstore.frontends.webdav.listing import DirectoryListing
from davstore.frontends.webdav.locked_empty import EmptyResourceSweeper
from davstore.frontends.webdav.pages import SharePages, use_davstore_status_pages
from davstore.frontends.webdav.provider import VfsProvider
from davstore.frontends.webdav.state import (
    SqliteLockStorage,
    close_quietly,
    install_lock_manager,
    is_shared,
    open_lock_storage,
    open_property_manager,
)
from davstore.frontends.webdav.state.hidden_files import HiddenFiles, open_hidden_files
from davstore.frontends.webdav.state.macmeta import (
    DEFAULT_BUDGET,
    MacMetadata,
    MacMetadataSideStore,
)
from davstore.frontends.webdav.state.sqlite_locks import SqliteLockManager
from davstore.frontends.webdav.sync import SyncCollectionReport
from davstore.http.wsgi import Environ, FileBody, QuickResponse, StartResponse, WSGIApp
from davstore.vfs import VFS

__all__ = ["DavstoreApp", "QuickAnswer", "create_app"]

logger = logging.getLogger(__name__)

#: The largest PUT body answered on the HTTP server's event loop (see runs_inline).
INLINE_PUT_BYTES = 64 * 1024


class QuickAnswer(NamedTuple):
    """An answer :meth:`DavstoreApp.answer_quick` made, as its observers are told of it."""

    method: str
    path: str  #: ``PATH_INFO`` as the server gave it
    code: str  #: the status code
    sizes: tuple[int, int]  #: the request body's length and the answer body's
    started: float  #: ``time.perf_counter()`` when the request was taken up
    client: str
    authorization: str  #: the Authorization header, or ""


QuickObserver = Callable[[QuickAnswer], None]

#: Request headers (lower case) that send a GET or a PUT through the stack: what makes it
#: not plain for PlainGet or PlainPut, and a Destination for PathGuard to check.
_NOT_QUICK_GET = (NOT_PLAIN_HEADERS - {b"range", b"if-range"}) | {
    b"destination",
    b"expect",
    b"upgrade",
}
#: The headers of a ranged GET answered at once, and their environ keys.
_RANGE_KEYS = {b"range": "HTTP_RANGE", b"if-range": "HTTP_IF_RANGE"}
_NOT_QUICK_PUT = NOT_PLAIN_PUT_HEADERS | {b"destination", b"expect", b"upgrade"}


class DavstoreApp:
    """The WSGI application returned by :func:`create_app`.

    Call :meth:`close` when the server has stopped: it closes the lock and property
    stores (so another app may open the same state directory).
    """

    _app: WSGIApp

    def __init__(
        self,
        vfs: VFS,
        wsgidav: WsgiDAVApp,
        *,
        users: dict[str, str] | None,
        block_size: int,
        max_upload_size: int | None = None,
        hide_mac_metadata: bool = True,
    ) -> None:
        self.vfs = vfs
        self.wsgidav = wsgidav
        self._closers: list[Callable[[], None]] = []
        lock_manager = wsgidav.lock_manager
        self.plain_put = PlainPut(
            wsgidav,
            vfs,
            users=users,
            config=wsgidav.config,
            lock_storage=None if lock_manager is None else lock_manager.storage,
            max_upload_size=max_upload_size,
            hide_mac_metadata=hide_mac_metadata,
        )
        self.plain_get = PlainGet(
            self.plain_put, vfs, users=users, block_size=block_size, config=wsgidav.config
        )
        #: Small PUTs run on the HTTP server's event loop (runs_inline), and plain GETs of
        #: cached files are answered there (answer_quick): the store answers from this host,
        #: and nothing on their path waits on a network.
        self.inline = (
            vfs.capabilities.quick
            and self.plain_get.enabled
            and (self.plain_put.enabled or vfs.read_only)
        )
        self.users = users
        #: Told of every answer made by answer_quick (the middleware it bypasses).
        self._quick_observers: list[QuickObserver] = []
        self._quick_blind = False  # a middleware wraps the app that answer_quick would bypass
        inner: WSGIApp = self.plain_get
        if users is not None:
            inner = AnonymousOptions(inner, vfs)
        self._app = CloseUnreadBodies(
            ChunkedInputGuard(PathGuard(inner, options=lambda: share_options(vfs)))
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self._app(environ, start_response)

    def runs_inline(self, environ: Environ) -> bool:
        """Whether the HTTP server may answer this request on its event loop's thread
        (davstore/http/server.py): a PUT of at most INLINE_PUT_BYTES on a store
        that answers from this host. Called with the request's head, before its body
        arrives.

        GETs and HEADs never: the plain GETs whose bytes are in the kernel's caches were
        offered to :meth:`answer_quick` already, and any other may wait for a disk, which
        would hold up every other connection of the loop."""
        if not self.inline or environ["REQUEST_METHOD"] != "PUT":
            return False
        length = environ.get("CONTENT_LENGTH") or ""
        return (
            length.isdigit()
            and int(length) <= INLINE_PUT_BYTES
            and "HTTP_TRANSFER_ENCODING" not in environ
        )

    def answer_quick(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        client: str,
        body: bytes,
    ) -> QuickResponse | None:
        """The answer to a plain GET or PUT of a small file, made without the WSGI stack:
        the HTTP server asks before it builds an environ (``answer_quick`` in server.py).
        It is the answer :class:`PlainGet` (``whole_file``) or :class:`PlainPut`
        (``put_quick``) gives, to a request that PathGuard lets through and that they call
        plain (no condition, range or Depth; no body for a GET; anonymous, or valid Basic
        credentials); the observers (metrics, access log) are told. A bigger file the VFS
        opens from the kernel's caches (``PlainGet.file_answer``) is answered with a
        FileBody, which the server sends with sendfile. None for anything else, which then
        goes through the stack as usual (nothing was written)."""
        if not self.inline or self._quick_blind:
            return None
        if method == "GET":
            refused, enabled = _NOT_QUICK_GET, self.plain_get.enabled
        elif method == "PUT":
            refused, enabled = _NOT_QUICK_PUT, self.plain_put.enabled
        else:
            return None
        if not enabled:
            return None
        authorization: str | None = None
        ranges: dict[str, str] | None = None
        for name, value in headers:
            lowered = name.lower()
            if lowered in refused:
                return None
            if lowered == b"authorization":
                if authorization is not None:
                    return None  # twice: the stack decides
                authorization = value.decode("latin-1")
            elif method == "GET" and lowered in _RANGE_KEYS:
                if ranges is None:
                    ranges = {}
                key = _RANGE_KEYS[lowered]
                if key in ranges:
                    return None  # twice: the server refuses it
                ranges[key] = value.decode("latin-1")
        started = time.perf_counter()
        shared = share_path(path)
        if shared is None:
            return None
        try:
            check_path(shared)  # as PathGuard
        except InvalidPath:
            return None
        answer: QuickResponse | None
        if method == "GET":
            if self.users is not None and not basic_credentials_ok(self.users, authorization or ""):
                return None
            if ranges is not None:
                if "HTTP_RANGE" in ranges:
                    check_range(ranges)  # as PathGuard
                if "HTTP_IF_RANGE" in ranges and "HTTP_RANGE" not in ranges:
                    return None  # not plain: wsgidav's
            whole = None if ranges is not None else self.plain_get.whole_file(shared)
            if whole is None:
                answer = self.plain_get.file_answer(shared, ranges)
            else:
                answer = ("200 OK", *whole)
        else:
            answer = self.plain_put.put_quick(shared, body, authorization or "")
        if answer is None:
            return None
        sent = answer[2]
        noted = QuickAnswer(
            method,
            path,
            answer[0][:3],
            (len(body), sent.length if isinstance(sent, FileBody) else len(sent)),
            started,
            client,
            authorization or "",
        )
        for observe in self._quick_observers:
            observe(noted)
        return answer

    def wrap(
        self,
        middleware: Callable[[WSGIApp], WSGIApp],
        *,
        quick_observer: QuickObserver | None = None,
    ) -> None:
        """Put ``middleware`` around the whole application (outermost), before serving.

        :meth:`answer_quick`'s answers do not pass through it: a middleware that must see
        every request gives ``quick_observer``, told of each such answer (as
        :class:`~davstore.serving.observability.Observability` does); without
        one, :meth:`answer_quick` answers nothing any more.
        """
        self._app = middleware(self._app)
        if quick_observer is None:
            self._quick_blind = True
        else:
            self._quick_observers.append(quick_observer)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` first thing in :meth:`close` (replicas, observability)."""
        self._closers.append(closer)

    @property
    def provider(self) -> VfsProvider:
        """The wsgidav provider serving the share."""
        provider: VfsProvider = self.wsgidav.provider_map["/"]
        return provider

    def close(self) -> None:
        """Release the state stores; the app must not serve requests afterwards."""
        for closer in self._closers:
            try:
                closer()
            except Exception:
                logger.exception("could not close %r", closer)
        lock_manager = self.wsgidav.lock_manager
        if lock_manager is not None:
            close_quietly(lock_manager.storage)
        if self.wsgidav.prop_manager is not None:
            close_quietly(self.wsgidav.prop_manager)


def create_app(
    vfs: VFS,
    *,
    users: dict[str, str] | None,
    realm: str = "davstore",
    lock_storage: str | None = None,
    property_storage: str | None = None,
    state_dir: pathlib.Path,
    max_upload_size: int | None = None,
    block_size: int = 1 << 20,
    mount_path: str = "",
    mac_metadata: MacMetadata | str = MacMetadata.HIDE,
    digest_secret: bytes | None = None,
    limits: DavLimits | None = None,
    share_name: str | None = None,
    shares_url: str | None = None,
    missing_hint: str | None = None,
) -> DavstoreApp:
    """A WSGI application serving ``vfs`` over WebDAV (class 1 and 2).

    :param users: ``{name: password}`` for HTTP Basic and Digest authentication (an
        unauthenticated request is 401); ``None`` lets everyone in (anonymous access).
    :param realm: the authentication realm shown by clients.
    :param lock_storage: where locks live (``memory:``, ``sqlite:///PATH``,
        ``shelve:///PATH``); default: a SQLite file in ``state_dir``.
    :param property_storage: where dead properties live, same URLs; default: a SQLite
        file in ``state_dir``, so properties survive a restart.
    :param state_dir: the directory for the default state files (created if missing).
    :param max_upload_size: a PUT of more bytes is 413.
    :param block_size: bytes per read when streaming a GET.
    :param mount_path: the URL prefix the server strips before calling the app (moved to
        ``SCRIPT_NAME``), such as ``/media`` when several shares are served side by side;
        hrefs in answers carry it.
    :param mac_metadata: ``hide`` (default) keeps macOS ``._*`` and ``.DS_Store`` files out
        of the store, ``store`` stores them as ordinary files (see macmeta.py).
    :param digest_secret: the secret Digest nonces are signed with (digest.py); default:
        ``DAVSTORE_DIGEST_SECRET``, else one kept in the share's state (``state_dir``, or
        Redis with the locks there). Processes given one must share the nonce counts too.
    :param limits: the share's bounds on PROPFIND depth, dead properties and lock
        lifetimes (limits.py); default: :class:`DavLimits` ``()``.
    :param share_name: the share's name in its HTML pages (title, root breadcrumb);
        default ``davstore``.
    :param shares_url: the URL of the list of shares, linked before the share's name
        (``SharesApp``); None: there is none.
    :param missing_hint: what to do when the share's folder does not exist yet, told in
        its pages ("run collectstatic" for the static share).

    Raises ``ValueError`` for an unknown storage URL and ``OSError`` when a state file
    cannot be opened.
    """
    if users is not None and not users:
        raise ValueError("users must name at least one user (or be None for anonymous)")
    limits = limits or DavLimits()
    locks = open_lock_storage(lock_storage, state_dir, max_lock_timeout=limits.max_lock_timeout)
    try:
        properties = open_property_manager(property_storage, state_dir)
    except BaseException:
        close_quietly(locks)
        raise
    hide_mac_metadata = MacMetadata(mac_metadata) is MacMetadata.HIDE
    hidden: HiddenFiles | None = None
    if hide_mac_metadata:
        try:
            hidden = open_hidden_files(property_storage, state_dir, DEFAULT_BUDGET)
        except BaseException:
            close_quietly(locks)
            close_quietly(properties)
            raise
    try:
        nonces = None if users is None else _digest_nonces(locks, state_dir, digest_secret)
    except BaseException:
        close_quietly(locks)
        close_quietly(properties)
        close_quietly(hidden)
        raise
    fix_destination_parsing()
    use_davstore_status_pages()
    provider = VfsProvider(vfs, max_upload_size=max_upload_size, limits=limits)
    config: dict[str, Any] = {
        "provider_mapping": {"/": provider},
        "lock_storage": locks,
        "property_manager": properties,
        "block_size": block_size,
        "mount_path": mount_path or None,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "middleware_stack": [
            ErrorPrinter,
            DavstoreAuthenticator,
            ActingAs,
            NfcPaths,
            *([ReadOnlyGuard] if vfs.read_only else []),
            *([UploadLimit] if max_upload_size is not None else []),
            XmlGuard,
            *([MacMetadataSideStore] if hide_mac_metadata else []),
            DirectoryListing,
            SyncCollectionReport,
            RequestResolver,
        ],
        "http_authenticator": {
            "domain_controller": UserDomainController,
            "accept_basic": True,
            "accept_digest": True,
            "default_to_digest": True,
            "trusted_auth_header": None,
        },
        "davstore": {
            "users": users,
            "realm": realm,
            "read_only": vfs.read_only,
            "max_upload_size": max_upload_size,
            "mac_metadata_files": hidden,
            "digest_nonces": nonces,
            "pages": SharePages(share_name or "davstore", shares_url, missing_hint),
        },
    }
    if hasattr(locks, "on_gone"):
        locks.on_gone = EmptyResourceSweeper(provider)
    try:
        wsgidav = WsgiDAVApp(config)
    except BaseException:
        close_quietly(locks)
        close_quietly(properties)
        close_quietly(hidden)
        if nonces is not None:
            nonces.counts.close()
        raise
    shared_locks = (
        _share_sqlite_locks(wsgidav, locks) if isinstance(locks, SqliteLockStorage) else None
    )
    app = DavstoreApp(
        vfs,
        wsgidav,
        users=users,
        block_size=block_size,
        max_upload_size=max_upload_size,
        hide_mac_metadata=hide_mac_metadata,
    )
    if shared_locks is not None:
        app.on_close(shared_locks.close)
    if nonces is not None:
        app.on_close(nonces.counts.close)
    if hidden is not None:
        app.on_close(hidden.close)
    if is_shared(locks) or is_shared(properties):
        app.plain_put.enabled = False  # replicas: every write goes through wsgidav
        app.inline = False  # and every request asks the shared state (a network call)
        from davstore.frontends.webdav.state.redis_state import share_replicas

        replica = share_replicas(wsgidav, vfs)
        app.on_close(replica.close)
        app.wrap(replica.guard)
    return app


def _digest_nonces(locks: Any, state_dir: pathlib.Path, secret: bytes | None) -> DigestNonces:
    """The share's Digest nonces: their secret and counts in the replicas' Redis when the
    locks are there, else in ``state_dir`` (shared by the workers of this host)."""
    if is_shared(locks):
        counts: NonceCounts = RedisNonceCounts(locks.redis, locks.prefix)
        redis = (locks.redis, locks.prefix)
        return DigestNonces(lambda: load_secret(state_dir, explicit=secret, redis=redis), counts)
    key = load_secret(state_dir, explicit=secret)
    return DigestNonces(key, SqliteNonceCounts(str(state_dir / COUNTS_FILE)))


def _share_sqlite_locks(wsgidav: Any, locks: SqliteLockStorage) -> SqliteLockManager:
    """Put a :class:`SqliteLockManager` (atomic across the processes sharing the file) in
    place of wsgidav's own lock manager."""
    shared = SqliteLockManager(locks)
    install_lock_manager(wsgidav, shared)
    return shared
