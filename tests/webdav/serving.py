"""Serve a share or a WSGI app with davstore's HTTP server on 127.0.0.1 in a thread, for
tests: the conformance kit's helpers (davstore.testing.webdav), under the names the tests
here import."""

from __future__ import annotations

from davstore.testing.webdav import PASSWORD, USER, Share, serve_in_thread, serve_share

__all__ = ["PASSWORD", "USER", "Share", "serve_in_thread", "serve_share"]
