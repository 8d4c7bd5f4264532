"""The VFS core: one set of semantics for every store and every frontend."""

from __future__ import annotations

from davstore.vfs.core import VFS, Entry
from davstore.vfs.handles import ReadHandle, WriteHandle

__all__ = ["VFS", "Entry", "ReadHandle", "WriteHandle"]
