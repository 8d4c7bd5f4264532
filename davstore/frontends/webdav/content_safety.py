"""The headers every answer carrying a file's content gets, so that content can never act
as a page of the share's own origin.

A share serves whatever people uploaded, in the origin where the browser holds the
user's credentials (Basic credentials are sent with every request to it). An uploaded
``page.html`` or ``image.svg`` opened in a browser would otherwise run its scripts as the
user: read every file, upload, delete. So file content (GET and HEAD, whole or ranged, on
every path that serves it: wsgidav's, PlainGet's and the HTTP server's quick answers) is
sent with:

``X-Content-Type-Options: nosniff``
    the browser uses the ``Content-Type`` given (from the name's suffix) and never guesses
    a scriptable type from the bytes;
``Content-Security-Policy: sandbox``
    the content is shown (an HTML page renders, an SVG draws) but as a document of a
    unique origin with scripts, forms, pop-ups and plugins off: it reaches nothing of the
    share, and no credentials.

davstore's own pages (the folder listing, the share list of ``manage.py davstore serve``,
the admin) do not get them: they are davstore's code, not uploaded content.
"""

from __future__ import annotations

__all__ = ["CONTENT_HEADERS"]

#: Sent with every answer that carries a file's content (see the module docstring).
CONTENT_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox"),
)
