"""What :class:`~davstore.frontends.webdav.fast.get.PlainGet` and
:class:`~davstore.frontends.webdav.fast.put.PlainPut` share: the conditional headers that
leave a request to wsgidav, the share path wsgidav would route to, wsgidav's dates, and
reading a stream to a given length."""

from __future__ import annotations

import functools
from typing import Any

from wsgidav import util

__all__ = ["CONDITIONALS", "http_date", "read_up_to", "share_path"]

#: The conditional request headers (all wsgidav evaluates): such a GET is wsgidav's.
CONDITIONALS = frozenset(
    {
        "HTTP_IF",
        "HTTP_IF_MATCH",
        "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_UNMODIFIED_SINCE",
        "HTTP_IF_RANGE",
    }
)


def share_path(raw: str) -> str | None:
    """The share path wsgidav would route ``PATH_INFO`` to; ``None``: leave it to wsgidav."""
    try:
        path = raw.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    if not path.startswith("/") or path.endswith("/") or "//" in path or "/." in path:
        return None
    return path


@functools.lru_cache(maxsize=4096)
def http_date(seconds: int) -> str:
    """wsgidav's RFC 1123 date for ``seconds`` since the epoch (cached)."""
    return str(util.get_rfc1123_time(seconds))


def read_up_to(stream: Any, size: int) -> bytes:
    """``size`` bytes of ``stream`` (fewer only where it ends first), read in as few calls
    as it allows."""
    parts = []
    left = size
    while left > 0:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)
