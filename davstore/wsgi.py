"""Serve the shares inside the project's own WSGI process.

In the project's ``wsgi.py``::

    from django.core.wsgi import get_wsgi_application
    from davstore.wsgi import with_davstore

    application = with_davstore(get_wsgi_application(), prefix="/dav/")

Requests under the prefix go to the shares (:class:`davstore.shares_app.SharesApp`:
``/dav/media/``, ``/dav/static/``, with Django users and the ``DAVSTORE`` access rules);
everything else goes to the project's application. Both use the very same Storage
instances (``storages[alias]``) and the same share VFS as the admin page, so an
``InMemoryStorage`` is shared too and every change made through a share is seen at once by
the site. The shares' locks live in this process: with several worker processes, set
``LOCK_STORAGE`` to a store they all reach.
"""

from __future__ import annotations

from collections.abc import Iterable

from davstore.http.wsgi import Environ, StartResponse, WSGIApp
from davstore.shares_app import SharesApp

__all__ = ["DavstoreDispatcher", "with_davstore"]


class DavstoreDispatcher:
    """``prefix`` and below to :attr:`shares`, everything else to :attr:`application`."""

    def __init__(self, application: WSGIApp, shares: SharesApp) -> None:
        self.application = application
        self.shares = shares
        self.prefix = shares.prefix

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return self.shares(environ, start_response)
        return self.application(environ, start_response)

    def close(self) -> None:
        """Close the shares' lock and property state."""
        self.shares.close()


def with_davstore(
    application: WSGIApp, prefix: str = "/dav/", *, shares: Iterable[str] | None = None
) -> DavstoreDispatcher:
    """``application`` with the configured shares (or the named ones) under ``prefix``.

    Call it after Django is set up (``get_wsgi_application()`` does that). Raises
    ImproperlyConfigured for a bad ``DAVSTORE`` setting, ``LookupError`` for an unknown
    share name, ``ValueError`` for an empty prefix.
    """
    from davstore.conf import get_config
    from davstore.shares import get_shares

    if not prefix.strip("/"):
        raise ValueError("with_davstore needs a prefix such as '/dav/'")
    config = get_config()
    registry = get_shares()
    names = list(registry) if shares is None else list(shares)
    for name in names:
        if name not in registry:
            raise LookupError(f"no davstore share named {name!r}")
    app = SharesApp(
        [registry[name] for name in names],
        prefix=prefix,
        auth_cache_ttl=config.auth_cache_ttl,
        realm=config.realm,
    )
    return DavstoreDispatcher(application, app)
