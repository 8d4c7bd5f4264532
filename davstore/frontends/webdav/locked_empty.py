"""Locked empty resources (RFC 4918 section 7.3) that leave nothing behind.

A LOCK of an unmapped URL creates an empty file, which the client then fills with a PUT
(:meth:`~davstore.frontends.webdav.provider.FolderResource.create_empty_resource`). The
lock remembers that it made the file, and the file as it was made (its ETag). When the
lock goes (UNLOCK, expiry, removal) and the file is still that empty file, with no dead
properties and no other lock, the file is removed: a LOCK that was never followed by a
write leaves no empty file behind, which was RFC 2518's "lock-null" outcome. RFC 4918
appendix D deprecates lock-null resources but requires clients to handle both models, and
a client that writes after its LOCK (every editor, litmus ``locks``) sees a locked empty
resource while it holds the lock. A write by anyone (PUT, FUSE, the site) changes the ETag
and the file stays.

Storages that keep this (``created`` on the lock, ``on_gone`` called when a lock goes):
the SQLite lock storage and the Redis one.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from wsgidav.lock_man.lock_manager import normalize_lock_root

from davstore.errors import DavstoreError

if TYPE_CHECKING:
    from davstore.frontends.webdav.provider import VfsProvider

__all__ = ["CREATED_KEY", "EmptyResourceSweeper", "mark_created", "note_created"]

logger = logging.getLogger(__name__)

#: The key of a lock that made its resource: the resource's ETag as made ("" for none).
CREATED_KEY = "davstore_created"

_created: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "davstore_lock_created", default=None
)


def note_created(ref_url: str, etag: str | None) -> None:
    """This request's LOCK made the empty resource at ``ref_url`` (called before the lock
    is stored, in the same request)."""
    _created.set((normalize_lock_root(ref_url), etag or ""))


def mark_created(root: str, lock: dict[str, Any]) -> None:
    """Called by a storage creating a lock rooted at ``root``: mark it when this request
    made the resource."""
    made = _created.get()
    if made is not None and made[0] == root:
        lock[CREATED_KEY] = made[1]
        _created.set(None)


class EmptyResourceSweeper:
    """A storage's ``on_gone``: removes the empty file a gone lock made (see above)."""

    def __init__(self, provider: VfsProvider) -> None:
        self.provider = provider

    def __call__(self, lock: dict[str, Any]) -> None:
        etag = lock.get(CREATED_KEY)
        if etag is None:
            return
        root = str(lock.get("root", ""))
        share_path = self.provider.share_path or ""
        path = unquote(root)
        if share_path and path.startswith(share_path):
            path = path[len(share_path) :]
        vfs = self.provider.vfs
        try:
            entry = vfs.lookup(path)
            if entry is None or entry.is_dir or entry.size != 0 or (entry.etag or "") != etag:
                return  # gone (a DELETE), or written since
            properties = self.provider.prop_manager
            if properties is not None and properties.get_properties(root):
                return
            locks = self.provider.lock_manager
            if locks is not None:
                if locks.get_url_lock_list(root):
                    return  # another lock holds it
                if getattr(locks, "_active_writes", {}).get(root):
                    return  # a PUT in progress: its commit would be lost
            vfs.remove(path)
        except DavstoreError as exc:
            logger.info("could not remove the empty file a LOCK made at %s: %s", path, exc)
            return
        logger.info("removed %s: made empty by a LOCK, its lock went without a write", path)
