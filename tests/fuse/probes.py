"""POSIX probes: short runs of system calls whose answers POSIX fixes, made in a native
folder and in a mount in the same test run (tests/fuse/test_probes.py), whose answers
must be the same.

A probe is a function of an empty folder that returns what it saw: values, and for a
call that failed the errno's name (:func:`attempt`). Where a store cannot give the POSIX
answer and docs/FUSE.md says so, the probe names that row (``reason``, an id in the
table "Documented refusals") and the answer the mount gives instead (``documented``, per
store kind: ``"filesystem"``, ``"memory"``, ``"s3"``); the mount must then give exactly
that. Adding a probe is writing one function here::

    @probe()
    def rmdir_of_a_file_is_enotdir(root: Path) -> object:
        (root / "f").write_bytes(b"")
        return attempt(os.rmdir, root / "f")

Every mount the probes run on is made with ``--allow-other`` (other users can reach it).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["PROBES", "STORE_KINDS", "Probe", "attempt", "probe"]

#: The store kinds every probe runs on.
STORE_KINDS = ("filesystem", "memory", "s3")

#: Longer than a file system's timestamp granularity (ext4 and tmpfs: one kernel tick).
_TICK = 0.02


@dataclasses.dataclass(frozen=True)
class Probe:
    """One probe: ``run(folder)`` and, per store kind, the documented other answer."""

    name: str
    run: Callable[[Path], object]
    documented: Mapping[str, object]
    reason: str | None


PROBES: dict[str, Probe] = {}


def probe(
    *, documented: Mapping[str, object] | None = None, reason: str | None = None
) -> Callable[[Callable[[Path], object]], Callable[[Path], object]]:
    """Register a probe; ``documented`` (with its ``reason``, a docs/FUSE.md row id) maps
    store kinds to the answer the mount gives there instead of the native one."""
    if bool(documented) != bool(reason):
        raise ValueError("a documented answer needs its reason, and a reason an answer")

    def register(run: Callable[[Path], object]) -> Callable[[Path], object]:
        PROBES[run.__name__] = Probe(run.__name__, run, dict(documented or {}), reason)
        return run

    return register


def attempt(call: Callable[..., object], *args: object) -> object:
    """``call(*args)``'s result, or the name of the errno it failed with."""
    try:
        return call(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _times(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ctime_ns


def _folder_times_after(root: Path, change: Callable[[], object]) -> dict[str, bool]:
    """Whether ``change`` (made in folder ``root/d``) moved that folder's mtime and ctime."""
    before = _times(root / "d")
    time.sleep(_TICK)
    change()
    after = _times(root / "d")
    return {"mtime moved": after[0] > before[0], "ctime moved": after[1] > before[1]}


# -- a folder's times move when its entries change (issue 27, item 3) --------------------


@probe()
def create_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    return _folder_times_after(root, lambda: (root / "d" / "f").write_bytes(b"x"))


@probe()
def mkdir_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    return _folder_times_after(root, (root / "d" / "sub").mkdir)


@probe()
def unlink_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    return _folder_times_after(root, (root / "d" / "f").unlink)


@probe()
def rmdir_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "d" / "sub").mkdir()
    return _folder_times_after(root, (root / "d" / "sub").rmdir)


@probe()
def rename_inside_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    return _folder_times_after(root, lambda: os.rename(root / "d" / "f", root / "d" / "g"))


@probe()
def rename_out_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    return _folder_times_after(root, lambda: os.rename(root / "d" / "f", root / "g"))


@probe()
def rename_in_moves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "f").write_bytes(b"x")
    return _folder_times_after(root, lambda: os.rename(root / "f", root / "d" / "f"))


@probe()
def a_write_leaves_the_folders_times(root: Path) -> object:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    moved = _folder_times_after(root, lambda: (root / "d" / "f").write_bytes(b"yy"))
    return moved["mtime moved"]


# -- link counts (issue 27, item 6) --------------------------------------------------------


@probe(documented={"memory": 1, "s3": 1}, reason="folder-links-not-counted")
def a_folders_link_count_is_2_plus_its_subfolders(root: Path) -> object:
    (root / "d").mkdir()
    for name in ("a", "b", "c"):
        (root / "d" / name).mkdir()
    (root / "d" / "f").write_bytes(b"")
    return os.stat(root / "d").st_nlink


@probe()
def a_files_link_count_is_1(root: Path) -> object:
    (root / "f").write_bytes(b"")
    return os.stat(root / "f").st_nlink


# -- path lengths (issue 27, item 4) -------------------------------------------------------


def _deep(root: Path, total: int) -> Path:
    """A path below ``root`` whose part inside it is ``total`` bytes long."""
    parts, left = [], total
    while left > 255:
        parts.append("p" * 200)
        left -= 201
    parts.append("f" * left)
    return root.joinpath(*parts)


@probe(documented={"s3": "ENAMETOOLONG"}, reason="path-longer-than-the-store-holds")
def a_2000_byte_path_is_held(root: Path) -> object:
    path = _deep(root, 2000)
    try:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"deep")
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    return path.read_bytes()


@probe()
def a_name_of_256_bytes_is_enametoolong(root: Path) -> object:
    return attempt(os.mkdir, root / ("n" * 256)), attempt(os.mkdir, root / ("n" * 255))


# -- modes (issue 27, item 6) --------------------------------------------------------------


@probe(
    documented={"filesystem": "EPERM", "memory": "EPERM", "s3": "EPERM"},
    reason="chmod-that-takes-access-away",
)
def chmod_600_on_a_mount_others_reach(root: Path) -> object:
    (root / "f").write_bytes(b"secret")
    done = attempt(os.chmod, root / "f", 0o600)
    return done if done is not None else oct(stat.S_IMODE(os.stat(root / "f").st_mode))


@probe()
def chmod_that_keeps_access_is_accepted(root: Path) -> object:
    (root / "f").write_bytes(b"")
    return attempt(os.chmod, root / "f", 0o644)


# -- special files (issue 27, item 8) ------------------------------------------------------


@probe()
def mknod_of_a_regular_file_makes_an_empty_file(root: Path) -> object:
    os.mknod(root / "f", stat.S_IFREG | 0o644)
    st = os.stat(root / "f")
    return stat.S_ISREG(st.st_mode), st.st_size


@probe(
    documented={"filesystem": "EPERM", "memory": "EPERM", "s3": "EPERM"},
    reason="special-files-and-links",
)
def mkfifo_is_refused(root: Path) -> object:
    return attempt(os.mkfifo, root / "fifo")


@probe(
    documented={"filesystem": "EPERM", "memory": "EPERM", "s3": "EPERM"},
    reason="special-files-and-links",
)
def symlink_is_refused(root: Path) -> object:
    (root / "f").write_bytes(b"")
    return attempt(os.symlink, "f", root / "l")


@probe(
    documented={"filesystem": "EPERM", "memory": "EPERM", "s3": "EPERM"},
    reason="special-files-and-links",
)
def link_is_refused(root: Path) -> object:
    (root / "f").write_bytes(b"")
    return attempt(os.link, root / "f", root / "l")


# -- errors POSIX fixes --------------------------------------------------------------------


@probe()
def errors_of_names(root: Path) -> object:
    (root / "f").write_bytes(b"x")
    (root / "d").mkdir()
    (root / "full").mkdir()
    (root / "full" / "x").write_bytes(b"")
    return {
        "open missing": attempt(os.open, root / "missing", os.O_RDONLY),
        "create in missing folder": attempt(os.open, root / "no" / "f", os.O_CREAT | os.O_WRONLY),
        "below a file": attempt(os.stat, root / "f" / "x"),
        "O_EXCL existing": attempt(os.open, root / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY),
        "mkdir existing": attempt(os.mkdir, root / "d"),
        "rmdir not empty": attempt(os.rmdir, root / "full"),
        "rmdir a file": attempt(os.rmdir, root / "f"),
        "unlink a folder": attempt(os.unlink, root / "d"),
        "open a folder for writing": attempt(os.open, root / "d", os.O_WRONLY),
        "rename a folder into itself": attempt(os.rename, root / "d", root / "d" / "e"),
        "rename a folder onto a file": attempt(os.rename, root / "d", root / "f"),
        "rename a file onto a folder": attempt(os.rename, root / "f", root / "d"),
        "rename onto a full folder": attempt(os.rename, root / "d", root / "full"),
        "mkdir below a file": attempt(os.mkdir, root / "f" / "x"),
    }


@probe()
def rename_replaces_a_file_and_an_empty_folder(root: Path) -> object:
    (root / "a").write_bytes(b"new")
    (root / "b").write_bytes(b"old")
    os.rename(root / "a", root / "b")
    (root / "d").mkdir()
    (root / "d" / "x").write_bytes(b"1")
    (root / "e").mkdir()
    os.rename(root / "d", root / "e")
    return sorted(os.listdir(root)), (root / "b").read_bytes(), os.listdir(root / "e")


@probe()
def readdir_shows_what_was_made_and_not_what_was_removed(root: Path) -> object:
    for name in ("a", "b", "c"):
        (root / name).write_bytes(b"")
    (root / "sub").mkdir()
    (root / "b").unlink()
    return sorted(os.listdir(root))


@probe()
def one_descriptor_reads_what_it_wrote(root: Path) -> object:
    fd = os.open(root / "f", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b"hello world", 0)
        os.pwrite(fd, b"W", 6)
        os.ftruncate(fd, 8)
        size = os.fstat(fd).st_size
        data = os.pread(fd, 100, 0)
    finally:
        os.close(fd)
    return size, data, (root / "f").read_bytes()


@probe()
def append_writes_at_the_end(root: Path) -> object:
    (root / "f").write_bytes(b"start ")
    fd = os.open(root / "f", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"one ")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"two")
    finally:
        os.close(fd)
    return (root / "f").read_bytes()


@probe()
def truncate_by_path_shrinks_and_grows(root: Path) -> object:
    (root / "f").write_bytes(b"0123456789")
    os.truncate(root / "f", 4)
    shrunk = (root / "f").read_bytes()
    os.truncate(root / "f", 6)
    return shrunk, (root / "f").read_bytes()
