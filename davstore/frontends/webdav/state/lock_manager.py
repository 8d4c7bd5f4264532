"""Putting a shared lock manager in place of a wsgidav app's own one.

The SQLite (:mod:`~davstore.frontends.webdav.state.sqlite_locks`) and Redis
(:mod:`~davstore.frontends.webdav.state.redis_state`) lock managers both install
themselves with :func:`install_lock_manager`, which is why it lives in a module neither
of them is imported by.
"""

from __future__ import annotations

from typing import Any

from wsgidav.lock_man.lock_storage import LockStorageDict

__all__ = ["install_lock_manager"]


def install_lock_manager(wsgidav: Any, manager: Any) -> None:
    """Put ``manager`` in place of a wsgidav app's own lock manager (which gets an empty
    storage to close when it is collected: the new manager owns the real one)."""
    wsgidav.lock_manager.storage = LockStorageDict()
    wsgidav.lock_manager = manager
    for provider in wsgidav.provider_map.values():
        provider.set_lock_manager(manager)
