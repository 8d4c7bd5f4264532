"""A share root with symbolic links leading out of it, for the tests of every frontend.

:func:`plant` makes ``outside/`` (a secret file and a folder) and ``root/`` whose links point
there (absolute and relative, to a file and to a folder), a link inside the root to a file
inside it, a loop, and a folder ``real/`` holding links. :func:`snapshot` records everything
under ``outside/`` (names, kinds, bytes, modes, times) so a test can assert that nothing
there was read into an answer, written, moved or removed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = ["OUTSIDE_BYTES", "Planted", "plant", "snapshot"]

#: The content of every file outside the root: no answer may ever contain it.
OUTSIDE_BYTES = b"OUTSIDE-SECRET"

#: The links made at the top of the root (each leads out, or is not served).
FILE_LINKS = ("link", "rellink")
DIR_LINKS = ("dirlink", "reldirlink")


@dataclasses.dataclass(frozen=True)
class Planted:
    root: Path
    outside: Path

    def unchanged(self, before: dict[str, tuple[object, ...]]) -> None:
        assert snapshot(self.outside) == before


def plant(base: Path, root: Path | None = None) -> Planted:
    """Make ``base/outside`` and the links in ``root`` (default ``base/root``)."""
    outside = base / "outside"
    (outside / "dir" / "deeper").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(OUTSIDE_BYTES)
    (outside / "dir" / "inner.txt").write_bytes(OUTSIDE_BYTES)
    (outside / "dir" / "deeper" / "more.txt").write_bytes(OUTSIDE_BYTES)
    root = root or base / "root"
    root.mkdir(exist_ok=True)
    (root / "a.txt").write_bytes(b"inside")
    (root / "link").symlink_to(outside / "secret.txt")
    (root / "dirlink").symlink_to(outside / "dir")
    (root / "rellink").symlink_to(os.path.relpath(outside / "secret.txt", root))
    (root / "reldirlink").symlink_to(os.path.relpath(outside / "dir", root))
    (root / "inlink").symlink_to("a.txt")  # inside, to inside: not served either
    (root / "real").mkdir()
    (root / "real" / "b.txt").write_bytes(b"b")
    (root / "real" / "loop").symlink_to("..")
    (root / "real" / "out").symlink_to(outside / "dir")
    return Planted(root, outside)


def snapshot(folder: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``folder`` (links not followed): kind, mode, bytes, mtime."""
    seen: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            seen[str(path.relative_to(folder))] = (st.st_mode, st.st_mtime_ns, data)
    return seen
