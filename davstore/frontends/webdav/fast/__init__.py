"""The quick paths of the WebDAV frontend: plain GETs and PUTs answered without wsgidav.

:mod:`~davstore.frontends.webdav.fast.get` answers a plain GET (or HEAD) of a file,
:mod:`~davstore.frontends.webdav.fast.put` stores a plain PUT, both through the VFS, with
the helpers of :mod:`~davstore.frontends.webdav.fast.common`. Anything they do not answer
goes to wsgidav as before.
"""

from __future__ import annotations

__all__: list[str] = []
