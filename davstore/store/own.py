"""Which Storage calls are davstore's own.

The store adapters mark every call they make on a Storage (a context variable, set on the
thread that makes the call), so that code wrapping the site's Storage
(:mod:`davstore.site.announce`) tells the site's own saves and deletes from davstore's,
which the VFS records itself.
"""

from __future__ import annotations

import contextvars

__all__ = ["OWN_CALL", "is_own_call"]

#: True inside a store adapter's call on its Storage.
OWN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("davstore_own_call", default=False)


def is_own_call() -> bool:
    """Whether the Storage call being made comes from a davstore store adapter."""
    return OWN_CALL.get()
