"""The shares of a Django project side by side in one WSGI application.

``SharesApp`` serves each share at ``PREFIX/<name>/`` (``/media/``, ``/static/``) through
its own WebDAV app (:func:`davstore.frontends.webdav.create_app`, one ``VfsProvider``
each, with the share's own lock and property state), after checking who is asking:

1. HTTP Basic credentials against the project's Django users
   (:class:`davstore.django_auth.DjangoAuthenticator`): missing or wrong credentials, unknown or
   inactive users get 401 with a ``WWW-Authenticate`` challenge and nothing else;
2. the share's access rules (:mod:`davstore.permissions`): an authenticated user who may
   not read the share gets 403; a writing method (PUT, DELETE, MKCOL, COPY, MOVE,
   PROPPATCH, LOCK, ...) from a user who may not write gets 403.

The request then runs as that user: ``REMOTE_USER`` is set (the WebDAV frontend attributes
the VFS changes to it) and :data:`davstore.signals.file_changed` receivers get the user
object. ``PREFIX/`` itself lists the shares the user may read (an HTML page for GET, in
the style of a share's listing, whose first breadcrumb links back to it; a 207
multistatus for PROPFIND). Django database connections are handled as Django does per
request: ``close_old_connections()`` before and after. Each request runs, response
body included, in a context of its own.
"""

from __future__ import annotations

import contextvars
import html
import logging
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from davstore.conf import ShareConfig
from davstore.django_auth import DjangoAuthenticator
from davstore.frontends.webdav import DavstoreApp, create_app
from davstore.frontends.webdav.desktop import options_headers, share_options
from davstore.frontends.webdav.guards import WRITING_METHODS
from davstore.frontends.webdav.limits import DavLimits
from davstore.frontends.webdav.pages import render_shares
from davstore.http.basic_auth import parse_basic
from davstore.http.wsgi import Environ, StartResponse, WSGIApp
from davstore.permissions import can_read, can_write
from davstore.shares import Share
from davstore.signals import set_current_user
from davstore.vfs import VFS

__all__ = ["DjangoUsers", "ShareOptions", "SharesApp", "limits_of", "rules_for_alias"]

logger = logging.getLogger(__name__)


def limits_of(config: ShareConfig) -> DavLimits:
    """The :class:`DavLimits` a share's ``DAVSTORE`` entry sets."""
    return DavLimits(
        depth_infinity=config.depth_infinity,
        max_properties=config.max_properties,
        max_properties_per_request=config.max_properties_per_request,
        max_lock_timeout=config.max_lock_timeout,
    )


class ShareOptions:
    """How one share is served: its VFS (default: the share's own) and state overrides."""

    def __init__(
        self,
        share: Share,
        *,
        vfs: VFS | None = None,
        lock_storage: str | None = None,
        property_storage: str | None = None,
        state_dir: Any = None,
        max_upload_size: int | None = None,
        limits: DavLimits | None = None,
        mac_metadata: str | None = None,
    ) -> None:
        self.share = share
        self.vfs = vfs if vfs is not None else share.vfs
        self.lock_storage = lock_storage or share.config.lock_storage
        self.property_storage = property_storage or share.config.property_storage
        self.state_dir = state_dir if state_dir is not None else share.state_dir()
        self.max_upload_size = (
            max_upload_size if max_upload_size is not None else share.config.max_upload_size
        )
        #: The share's bounds: given, else the DAVSTORE setting's.
        self.limits = limits if limits is not None else limits_of(share.config)
        self.mac_metadata = mac_metadata or share.config.mac_metadata


class SharesApp:
    """A WSGI application serving ``shares`` under ``prefix`` (see the module docstring).

    :param shares: the shares, or :class:`ShareOptions` for each.
    :param prefix: the URL path the shares live under (``""`` or ``"/dav"``); requests
        must arrive with it still in ``PATH_INFO``.
    :param auth_cache_ttl: seconds verified credentials are reused.
    :param realm: the Basic realm.

    Raises ``ValueError`` or ``OSError`` as ``create_app`` does. Call :meth:`close` when
    the server has stopped.
    """

    def __init__(
        self,
        shares: Iterable[Share | ShareOptions],
        *,
        prefix: str = "",
        auth_cache_ttl: float = 60.0,
        realm: str = "davstore",
    ) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.realm = realm
        self.authenticate = DjangoAuthenticator(auth_cache_ttl)
        self.shares: dict[str, Share] = {}
        self.apps: dict[str, DavstoreApp] = {}
        try:
            for item in shares:
                options = item if isinstance(item, ShareOptions) else ShareOptions(item)
                name = options.share.name
                state_dir = options.state_dir
                self.shares[name] = options.share
                self.apps[name] = create_app(
                    options.vfs,
                    users=None,
                    realm=realm,
                    lock_storage=options.lock_storage,
                    property_storage=options.property_storage,
                    state_dir=state_dir,
                    max_upload_size=options.max_upload_size,
                    mount_path=f"{self.prefix}/{name}",
                    limits=options.limits,
                    mac_metadata=options.mac_metadata,
                    share_name=name,
                    shares_url=self.prefix + "/",
                    missing_hint=options.share.missing_hint(),
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every share's lock and property state."""
        for app in self.apps.values():
            app.close()

    def flush_all(self) -> None:
        """Commit the open write handles of every share."""
        for app in self.apps.values():
            app.vfs.flush_all()

    def abort_all(self) -> None:
        """Drop what the open write handles of every share have not committed."""
        for app in self.apps.values():
            app.vfs.abort_all()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return _with_fresh_connections(self._dispatch, environ, start_response)

    def _dispatch(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return _plain(start_response, "404 Not Found", "Not found.")
            path = path[len(self.prefix) :]
        name, slash, rest = path.lstrip("/").partition("/")
        app = self.apps.get(name)
        if name and app is None:
            return _plain(start_response, "404 Not Found", "No such share.")
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method == "OPTIONS" and not environ.get("HTTP_AUTHORIZATION"):
            # Explorer and Office probe before they log in (see desktop.AnonymousOptions).
            headers = options_headers(read_only=False) if app is None else share_options(app.vfs)
            start_response("200 OK", headers)
            return [b""]
        user = self._user(environ)
        if user is None:
            return self._challenge(start_response)
        if app is None:
            return self._root(environ, start_response, user, method)
        share = self.shares[name]
        if not can_read(user, share):
            logger.info("%s may not read share %r", user.get_username(), name)
            return _plain(start_response, "403 Forbidden", "You may not use this share.")
        if method in WRITING_METHODS and not can_write(user, share):
            logger.info("%s may not write share %r (%s)", user.get_username(), name, method)
            return _plain(start_response, "403 Forbidden", "You may not change this share.")
        environ["REMOTE_USER"] = user.get_username()
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"{self.prefix}/{name}"
        environ["PATH_INFO"] = "/" + rest if (slash or rest) else "/"
        set_current_user(user)
        return app(environ, start_response)

    def may_see_metrics(self, environ: Environ) -> bool:
        """Whether the request's credentials are an active staff user's."""
        return _staff_may_see_metrics(self.authenticate, environ)

    def _user(self, environ: Environ) -> Any | None:
        return _basic_user(self.authenticate, environ)

    def _challenge(self, start_response: StartResponse) -> list[bytes]:
        return _challenge(start_response, self.realm)

    def _root(
        self, environ: Environ, start_response: StartResponse, user: Any, method: str
    ) -> list[bytes]:
        readable = [name for name, share in self.shares.items() if can_read(user, share)]
        base = self.prefix + "/"
        if method == "OPTIONS":
            start_response(
                "200 OK",
                [
                    ("DAV", "1, 2"),
                    ("Allow", "OPTIONS, GET, HEAD, PROPFIND"),
                    ("Content-Length", "0"),
                ],
            )
            return [b""]
        if method == "PROPFIND":
            depth = str(environ.get("HTTP_DEPTH", "infinity")).strip()
            names = readable if depth in ("1", "infinity") else []
            body = _multistatus([base, *(f"{base}{quote(n)}/" for n in names)])
            start_response(
                "207 Multi-Status",
                [
                    ("Content-Type", "application/xml; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        if method in ("GET", "HEAD"):
            page = render_shares([(n, self.shares[n].read_only) for n in readable], base)
            start_response(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))],
            )
            return [b"" if method == "HEAD" else page]
        return _plain(start_response, "405 Method Not Allowed", "The share list is read-only.")


def rules_for_alias(alias: str) -> ShareConfig:
    """Who may read and write ``STORAGES[alias]`` when ``davstore serve --storage ALIAS``
    serves it with the project's users: the rules of the first ``DAVSTORE`` share on that
    alias, else the default ones (active staff read and write)."""
    from davstore.conf import get_config

    for config in get_config().shares:
        if config.storage == alias:
            return config
    return ShareConfig(name=alias, storage=alias)


class DjangoUsers:
    """WSGI middleware: one share's app (made with ``users=None``) served to the project's
    Django users, with the share's access rules, as :class:`SharesApp` serves each share:
    401 with a challenge for missing or wrong credentials, 403 for a user the ``rules``
    (:func:`rules_for_alias`) do not let read, or write for a writing method; then
    ``REMOTE_USER`` and :func:`~davstore.signals.set_current_user` are set and the request
    runs in a context of its own, with Django's connection handling around it.
    ``OPTIONS`` without credentials is answered (clients probe before they log in): with
    the share's options when ``vfs`` (the share's) is given
    (:func:`~davstore.frontends.webdav.desktop.share_options`: ``REPORT`` too once it
    follows a change journal), else as for any share that is ``read_only`` or not.

    :meth:`may_see_metrics` is the operations endpoints' check (an active staff user).
    """

    def __init__(
        self,
        app: Callable[[Environ, StartResponse], Iterable[bytes]],
        rules: ShareConfig,
        *,
        read_only: bool,
        auth_cache_ttl: float = 60.0,
        realm: str = "davstore",
        vfs: VFS | None = None,
    ) -> None:
        self.app = app
        self.rules = rules
        self.read_only = read_only
        self.vfs = vfs
        self.realm = realm
        self.authenticate = DjangoAuthenticator(auth_cache_ttl)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return _with_fresh_connections(self._dispatch, environ, start_response)

    def _dispatch(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method == "OPTIONS" and not environ.get("HTTP_AUTHORIZATION"):
            headers = (
                options_headers(read_only=self.read_only)
                if self.vfs is None
                else share_options(self.vfs)
            )
            start_response("200 OK", headers)
            return [b""]
        user = self._user(environ)
        if user is None:
            return _challenge(start_response, self.realm)
        if not can_read(user, self.rules):
            logger.info("%s may not read the share", user.get_username())
            return _plain(start_response, "403 Forbidden", "You may not use this share.")
        if method in WRITING_METHODS and not can_write(user, self.rules):
            logger.info("%s may not write the share (%s)", user.get_username(), method)
            return _plain(start_response, "403 Forbidden", "You may not change this share.")
        environ["REMOTE_USER"] = user.get_username()
        set_current_user(user)
        return self.app(environ, start_response)

    def may_see_metrics(self, environ: Environ) -> bool:
        """Whether the request's credentials are an active staff user's."""
        return _staff_may_see_metrics(self.authenticate, environ)

    def _user(self, environ: Environ) -> Any | None:
        return _basic_user(self.authenticate, environ)


def _challenge(start_response: StartResponse, realm: str) -> list[bytes]:
    body = b"401 Unauthorized\n"
    start_response(
        "401 Unauthorized",
        [
            ("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _multistatus(hrefs: list[str]) -> bytes:
    date = formatdate(usegmt=True)
    responses = "".join(
        f"<D:response><D:href>{html.escape(href)}</D:href><D:propstat><D:prop>"
        "<D:resourcetype><D:collection/></D:resourcetype>"
        f"<D:displayname>{html.escape(href.rstrip('/').rsplit('/', 1)[-1])}</D:displayname>"
        f"<D:getlastmodified>{date}</D:getlastmodified>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        for href in hrefs
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:multistatus xmlns:D="DAV:">{responses}</D:multistatus>'
    ).encode()


def _plain(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = f"{status}\n{message}\n".encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _basic_user(authenticate: DjangoAuthenticator, environ: Environ) -> Any | None:
    """The Django user the request's Basic credentials name, if they are valid."""
    credentials = parse_basic(str(environ.get("HTTP_AUTHORIZATION", "")))
    if credentials is None or not credentials[0]:
        return None
    username, password = credentials
    return authenticate(username, password, client=str(environ.get("REMOTE_ADDR", "?")))


def _staff_may_see_metrics(authenticate: DjangoAuthenticator, environ: Environ) -> bool:
    """Whether the request's credentials are an active staff user's (fresh connections
    around the query)."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        user = _basic_user(authenticate, environ)
        return user is not None and bool(user.is_staff or user.is_superuser)
    finally:
        close_old_connections()


def _with_fresh_connections(
    dispatch: WSGIApp, environ: Environ, start_response: StartResponse
) -> Iterable[bytes]:
    """``dispatch`` run in a context of its own between two ``close_old_connections``
    (as Django's request handling does), the body iterated in the same context."""
    from django.db import close_old_connections

    close_old_connections()
    context = contextvars.copy_context()
    try:
        body = context.run(dispatch, environ, start_response)
    except BaseException:
        close_old_connections()
        raise
    return _InContext(context, body, close_old_connections)


class _InContext:
    """A response body iterated in the request's context (wsgidav does most of its work
    while the body is iterated), then ``on_close`` after the body's own ``close``."""

    def __init__(
        self, context: contextvars.Context, body: Iterable[bytes], on_close: Callable[[], None]
    ) -> None:
        self._context = context
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._on_close = on_close

    def __iter__(self) -> _InContext:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._body)
        chunk: bytes = self._context.run(next, self._iterator)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._context.run(close)
        finally:
            self._on_close()
