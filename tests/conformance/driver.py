"""The interface the conformance suite drives: one share, seen through one frontend.

The same tests (tests/conformance/suite.py) run through every driver: the VFS called
directly, WebDAV over HTTP (in-process and a real ``davstore serve``), and a real FUSE
mount. A driver raises the built-in errors a person would see: ``FileNotFoundError``,
``FileExistsError``, ``IsADirectoryError``, ``NotADirectoryError``, ``PermissionError``
(read-only, or refused), and ``OSError`` with a fitting errno for the rest.
"""

from __future__ import annotations

from typing import Protocol


class Driver(Protocol):
    """Paths are share paths without a leading slash (``"a/b.txt"``); ``""`` is the root."""

    #: Whether this frontend can tell "no such parent folder" apart from other failures
    #: when writing a file (all current drivers can).
    name: str

    def write(self, path: str, data: bytes) -> None:
        """Create or replace a whole file. Missing parent folder: FileNotFoundError."""

    def read(self, path: str) -> bytes:
        """The whole content. Missing: FileNotFoundError; a folder: IsADirectoryError."""

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the file)."""

    def mkdir(self, path: str) -> None:
        """Create one folder. Exists: FileExistsError; no parent: FileNotFoundError."""

    def listdir(self, path: str) -> dict[str, bool]:
        """Children of a folder: name -> is_dir. Missing: FileNotFoundError."""

    def stat(self, path: str) -> tuple[bool, int]:
        """(is_dir, size) of an entry (size 0 for folders). Missing: FileNotFoundError."""

    def remove(self, path: str) -> None:
        """Remove a file. Missing: FileNotFoundError."""

    def rmtree(self, path: str) -> None:
        """Remove a folder and all it holds. Missing: FileNotFoundError."""

    def rename(self, source: str, target: str) -> None:
        """Move a file or folder, replacing a file at ``target``."""

    def copy(self, source: str, target: str) -> None:
        """Copy a file or a folder tree, replacing a file at ``target``."""
