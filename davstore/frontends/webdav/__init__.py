"""The WebDAV frontend: a VFS served by wsgidav on davstore's HTTP server (uvloop, httptools).

``create_app(vfs, users=..., state_dir=...)`` builds the WSGI application and
``make_server(app, host, port)`` the HTTP server for it.
"""

from __future__ import annotations

from davstore.frontends.webdav import dir_browser

dir_browser.defer()  # before wsgidav's application module: no Jinja2 unless it is used

from davstore.frontends.webdav.app import DavstoreApp, create_app  # noqa: E402
from davstore.http.server import make_server  # noqa: E402

__all__ = ["DavstoreApp", "create_app", "make_server"]
