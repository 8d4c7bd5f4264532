"""The bounds one WebDAV share puts on what a single client may make it do.

Each bound is a share option (``davstore serve`` flag, ``DAVSTORE`` key, management
command flag); docs/SECURITY.md gives the reasons for the defaults and what a client sees
when it passes one:

``depth_infinity``
    ``PROPFIND`` with ``Depth: infinity`` (or no Depth header) on a folder is refused with
    ``403`` and ``<D:propfind-finite-depth/>`` (RFC 4918 section 9.1), as Apache mod_dav
    (``DavDepthInfinity Off``) and IIS do by default. When allowed, the answer is streamed
    one ``<D:response>`` at a time, so its memory does not grow with the tree.
``max_properties``
    Dead properties one resource may hold; a ``PROPPATCH`` that would pass it gets ``507``
    for the new properties (RFC 4918 section 9.2.1) and ``424`` for the rest.
``max_properties_per_request``
    Properties one ``PROPPATCH`` may set or remove; more is ``413`` with a ``DAV:error``
    body naming the bound, before anything is changed.
``max_lock_timeout``
    Seconds a lock lives at most; ``Timeout: Infinite``, a longer timeout or none at all
    is granted as this many seconds (RFC 4918 section 10.7 lets the server choose).
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "DAVSTORE_NS",
    "DEFAULT_MAX_LOCK_TIMEOUT",
    "DEFAULT_MAX_PROPERTIES",
    "DEFAULT_MAX_PROPERTIES_PER_REQUEST",
    "DavLimits",
]

#: One day: clients that hold a lock longer refresh it (Office asks for an hour).
DEFAULT_MAX_LOCK_TIMEOUT = 24 * 3600
#: Windows sets 4 dead properties per file, macOS Finder a handful, litmus 10.
DEFAULT_MAX_PROPERTIES = 1000
DEFAULT_MAX_PROPERTIES_PER_REQUEST = 100

#: The XML namespace of davstore's own error conditions.
DAVSTORE_NS = "urn:x-davstore:"


@dataclasses.dataclass(frozen=True, slots=True)
class DavLimits:
    """The bounds of one share (see the module docstring)."""

    depth_infinity: bool = False
    max_properties: int = DEFAULT_MAX_PROPERTIES
    max_properties_per_request: int = DEFAULT_MAX_PROPERTIES_PER_REQUEST
    max_lock_timeout: int = DEFAULT_MAX_LOCK_TIMEOUT

    def __post_init__(self) -> None:
        for field in ("max_properties", "max_properties_per_request", "max_lock_timeout"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a whole number >= 1, not {value!r}")

    def lock_timeout(self, requested: float | None) -> int:
        """The seconds granted for a lock asked for ``requested`` seconds (``None`` or a
        negative value: no timeout given, or ``Infinite``)."""
        if requested is None or requested < 0 or requested > self.max_lock_timeout:
            return self.max_lock_timeout
        return max(1, int(requested))
