"""What the shared lock managers have in common: putting one in place of a wsgidav app's
own, and the lock check of a write to a whole tree.

The SQLite (:mod:`~davstore.frontends.webdav.state.sqlite_locks`) and Redis
(:mod:`~davstore.frontends.webdav.state.redis_state`) lock managers both install
themselves with :func:`install_lock_manager`, and both check writes through
:class:`SubmittedTokens`, which is why these live in a module neither of them is
imported by.
"""

from __future__ import annotations

from typing import Any

from wsgidav.dav_error import DAVErrorCondition
from wsgidav.lock_man.lock_storage import LockStorageDict

__all__ = ["SubmittedTokens", "install_lock_manager"]


class SubmittedTokens:
    """A lock manager mixin (before wsgidav's ``LockManager``): a Depth infinity write
    (DELETE, COPY and MOVE of a folder; their destinations) may go below the locks whose
    tokens the request submitted, as RFC 4918 says (section 9.6.1: "the lock tokens for
    all locks on resources in the subtree"; section 7.5). wsgidav's own check counts every
    lock below the URL as a conflict, token or not: a client that locked a folder's file
    could not delete, replace or move the folder at all until it unlocked the file."""

    storage: Any

    def _get_write_conflicts(
        self, url: str, depth: str, token_list: list[str], principal: str
    ) -> DAVErrorCondition:
        # The URL and the folders above it: wsgidav's own check (Depth 0 leaves out the
        # locks below).
        conflicts: DAVErrorCondition = super()._get_write_conflicts(  # type: ignore[misc]
            url, "0", token_list, principal
        )
        if depth == "infinity":
            below = self.storage.get_lock_list(
                url, include_root=False, include_children=True, token_only=False
            )
            for lock in below:
                if lock["principal"] != principal or lock["token"] not in token_list:
                    conflicts.add_href(lock["root"])
        return conflicts


def install_lock_manager(wsgidav: Any, manager: Any) -> None:
    """Put ``manager`` in place of a wsgidav app's own lock manager (which gets an empty
    storage to close when it is collected: the new manager owns the real one)."""
    wsgidav.lock_manager.storage = LockStorageDict()
    wsgidav.lock_manager = manager
    for provider in wsgidav.provider_map.values():
        provider.set_lock_manager(manager)
