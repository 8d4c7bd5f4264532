"""The conformance driver on a real FUSE mount: plain ``os``/``shutil`` calls.

``FuseDriver(mountpoint)`` drives a share mounted with ``davstore mount``; start one with
:func:`tests.fuse.mounting.start_mount` (FileSystemStorage: ``[ROOT]``; InMemoryStorage,
which lives only in the mount process:
``["--backend", "django.core.files.storage.InMemoryStorage"]``). The errors are the ones a
program on the mount sees.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class FuseDriver:
    name = "fuse"

    def __init__(self, mountpoint: Path) -> None:
        self.root = Path(mountpoint)

    def _p(self, path: str) -> Path:
        return self.root / path if path else self.root

    def write(self, path: str, data: bytes) -> None:
        with open(self._p(path), "wb") as out:
            out.write(data)

    def read(self, path: str) -> bytes:
        with open(self._p(path), "rb") as src:
            return src.read()

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        with open(self._p(path), "rb") as src:
            return os.pread(src.fileno(), length, offset)

    def mkdir(self, path: str) -> None:
        os.mkdir(self._p(path))

    def listdir(self, path: str) -> dict[str, bool]:
        with os.scandir(self._p(path)) as entries:
            return {e.name: e.is_dir() for e in entries}

    def stat(self, path: str) -> tuple[bool, int]:
        st = os.stat(self._p(path))
        is_dir = os.path.isdir(self._p(path))
        return is_dir, 0 if is_dir else st.st_size

    def remove(self, path: str) -> None:
        if os.path.isdir(self._p(path)):
            raise IsADirectoryError(21, "Is a directory", path)
        os.unlink(self._p(path))

    def rmtree(self, path: str) -> None:
        if not os.path.lexists(self._p(path)):
            raise FileNotFoundError(2, "No such file or directory", path)
        shutil.rmtree(self._p(path))

    def rename(self, source: str, target: str) -> None:
        os.rename(self._p(source), self._p(target))

    def copy(self, source: str, target: str) -> None:
        if os.path.isdir(self._p(source)):
            if os.path.isfile(self._p(target)):
                raise NotADirectoryError(20, "Not a directory", target)
            shutil.copytree(self._p(source), self._p(target), dirs_exist_ok=True)
        else:
            if os.path.isdir(self._p(target)):
                raise IsADirectoryError(21, "Is a directory", target)
            shutil.copyfile(self._p(source), self._p(target))
