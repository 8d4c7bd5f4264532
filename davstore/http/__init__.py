"""A generic HTTP/1.1 server for WSGI applications (uvloop, httptools).

Nothing here knows of davstore: :mod:`~davstore.http.server` serves any WSGI application,
:mod:`~davstore.http.wsgi` holds the WSGI types and the optional quick-path contract an
application may implement (:class:`~davstore.http.wsgi.RunsInline`,
:class:`~davstore.http.wsgi.AnswersQuick`), and :mod:`~davstore.http.basic_auth` parses a
Basic ``Authorization`` header.
"""

from __future__ import annotations

__all__: list[str] = []
