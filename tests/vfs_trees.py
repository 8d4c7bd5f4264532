"""Laying out a small tree in a VFS for a test, in one call."""

from __future__ import annotations

from collections.abc import Mapping

from davstore.vfs import VFS


def lay_out(vfs: VFS, entries: Mapping[str, bytes | None]) -> None:
    """Make each entry of ``entries`` in order: a folder for ``None``, else a file with
    those bytes (a folder comes before what it holds)."""
    for path, data in entries.items():
        if data is None:
            vfs.mkdir(path)
        else:
            vfs.write_file(path, data)
