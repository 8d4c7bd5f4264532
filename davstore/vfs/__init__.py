"""The VFS core: one set of semantics for every store and every frontend."""

from __future__ import annotations

from davstore.vfs.core import VFS, Entry
from davstore.vfs.events import Action, Actor, Change, acting_as
from davstore.vfs.handles import ReadHandle, WriteHandle

__all__ = ["VFS", "Action", "Actor", "Change", "Entry", "ReadHandle", "WriteHandle", "acting_as"]
