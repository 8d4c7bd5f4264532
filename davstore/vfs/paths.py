"""Path rules of the share: every name is checked here before it reaches a store.

A share path is POSIX-style and relative to the share root. The canonical form has no
leading or trailing slash, uses ``/`` as separator and is NFC-normalised; the root is the
empty string. A leading ``/`` is accepted (frontends pass ``/a/b``) and means the share
root, never the host's root. Refused, with :class:`~davstore.errors.InvalidPath`:

- ``..`` components (whatever their encoding: frontends decode before calling),
- NUL and other ASCII control characters, and backslashes,
- empty components in the middle (``a//b``) are collapsed, ``.`` components dropped.

Names longer than :data:`MAX_NAME_BYTES` per component or :data:`MAX_PATH_BYTES` in all
(UTF-8; the ``PATH_MAX`` of Linux) raise :class:`~davstore.errors.NameTooLong`. A store
may hold less (``Capabilities.max_path_bytes``: object keys take 1024 bytes): the VFS
checks that limit too.
"""

from __future__ import annotations

import unicodedata

from davstore.errors import InvalidPath, NameTooLong

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "ROOT",
    "basename",
    "is_within",
    "join",
    "normalize",
    "parent",
]

ROOT = ""
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096

_FORBIDDEN = frozenset(chr(c) for c in range(32)) | {"\x7f", "\\"}


def normalize(path: str) -> str:
    """Return the canonical form of ``path`` or raise ``InvalidPath``/``NameTooLong``."""
    if not isinstance(path, str):
        raise InvalidPath(repr(path), "path must be text")
    path = unicodedata.normalize("NFC", path)
    bad = _FORBIDDEN.intersection(path)
    if bad:
        raise InvalidPath(path.encode("unicode_escape").decode(), "forbidden character in name")
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidPath(path, "'..' is not allowed in a share path")
        if len(part.encode()) > MAX_NAME_BYTES:
            raise NameTooLong(path, f"a name is longer than {MAX_NAME_BYTES} bytes")
        parts.append(part)
    canonical = "/".join(parts)
    if len(canonical.encode()) > MAX_PATH_BYTES:
        raise NameTooLong(path, f"the path is longer than {MAX_PATH_BYTES} bytes")
    return canonical


def join(base: str, name: str) -> str:
    """Join a canonical ``base`` and one or more canonical components."""
    if not base:
        return name
    if not name:
        return base
    return f"{base}/{name}"


def parent(path: str) -> str:
    """The canonical parent of a canonical path (the root is its own parent)."""
    return path.rpartition("/")[0]


def basename(path: str) -> str:
    """The last component of a canonical path (``""`` for the root)."""
    return path.rpartition("/")[2]


def is_within(path: str, ancestor: str) -> bool:
    """True when ``path`` is ``ancestor`` or lies below it (both canonical)."""
    return not ancestor or path == ancestor or path.startswith(ancestor + "/")
