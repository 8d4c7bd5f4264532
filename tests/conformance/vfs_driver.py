"""The conformance driver that calls the VFS directly."""

from __future__ import annotations

from davstore.vfs import VFS
from davstore.vfs.paths import basename


class VFSDriver:
    name = "vfs"

    def __init__(self, vfs: VFS) -> None:
        self.vfs = vfs

    def write(self, path: str, data: bytes) -> None:
        self.vfs.write_file(path, data)

    def read(self, path: str) -> bytes:
        with self.vfs.open_read(path) as handle:
            return handle.read()

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        with self.vfs.open_read(path) as handle:
            return handle.pread(length, offset)

    def mkdir(self, path: str) -> None:
        self.vfs.mkdir(path)

    def listdir(self, path: str) -> dict[str, bool]:
        return {basename(e.name): e.is_dir for e in self.vfs.listdir(path)}

    def stat(self, path: str) -> tuple[bool, int]:
        entry = self.vfs.stat(path)
        return entry.is_dir, 0 if entry.is_dir else (entry.size or 0)

    def remove(self, path: str) -> None:
        self.vfs.remove(path)

    def rmtree(self, path: str) -> None:
        self.vfs.remove_tree(path)

    def rename(self, source: str, target: str) -> None:
        self.vfs.rename(source, target)

    def copy(self, source: str, target: str) -> None:
        self.vfs.copy(source, target)
