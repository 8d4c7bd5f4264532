"""Bad input and faults: errnos, never a dead mount, never a half-written file."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from tests.fuse.conftest import MountFactory
from tests.fuse.mounting import force_unmount, is_mounted


def errno_of(call: object, *args: object) -> int:
    assert callable(call)
    with pytest.raises(OSError) as info:
        call(*args)
    assert info.value.errno is not None
    return info.value.errno


def test_read_only_mount_answers_erofs_to_every_change(
    mount_share: MountFactory, tmp_path: Path
) -> None:
    root = tmp_path / "existing"
    (root / "d").mkdir(parents=True)
    (root / "f").write_bytes(b"keep")
    p = mount_share("filesystem", "--read-only", root=root).path
    assert (p / "f").read_bytes() == b"keep"
    changes = [
        (os.open, p / "new", os.O_CREAT | os.O_WRONLY),
        (os.open, p / "f", os.O_WRONLY),
        (os.open, p / "f", os.O_RDWR | os.O_APPEND),
        (os.unlink, p / "f"),
        (os.mkdir, p / "e"),
        (os.rmdir, p / "d"),
        (os.rename, p / "f", p / "g"),
        (os.truncate, p / "f", 0),
        (os.chmod, p / "f", 0o600),
        (os.chown, p / "f", 0, 0),
        (os.utime, p / "f", (1, 1)),
        (os.setxattr, p / "f", "user.x", b"1"),
    ]
    for call, *args in changes:
        assert errno_of(call, *args) == errno.EROFS, (call, args)
    assert (p / "f").read_bytes() == b"keep"
    assert sorted(os.listdir(p)) == ["d", "f"]
    assert os.stat(p / "f").st_mode & 0o222 == 0
    assert sorted(os.listdir(root)) == ["d", "f"]


def test_read_only_mount_of_an_in_memory_store(mount_share: MountFactory) -> None:
    p = mount_share("memory", "--read-only").path
    assert errno_of(os.open, p / "new", os.O_CREAT | os.O_WRONLY) == errno.EROFS
    assert errno_of(os.mkdir, p / "d") == errno.EROFS
    assert os.listdir(p) == []


def test_store_error_is_an_errno_and_the_mount_stays_up(
    mount_share: MountFactory, tmp_path: Path
) -> None:
    root = tmp_path / "faulty"
    root.mkdir()
    (root / "fail.txt").write_bytes(b"old version")
    share = mount_share(
        "tests.fuse.storages.FaultyStorage", "--option", f"location={root}", "--cache-ttl", "0"
    )
    p = share.path

    def write(name: str, data: bytes) -> None:
        with open(p / name, "wb") as out:
            out.write(data)

    assert errno_of(write, "fail.txt", b"FAIL new version") == errno.EIO
    assert errno_of(write, "denied.txt", b"DENY") == errno.EACCES
    assert (p / "fail.txt").read_bytes() == b"old version"
    assert (root / "fail.txt").read_bytes() == b"old version"
    write("fine.txt", b"still works")
    assert (p / "fine.txt").read_bytes() == b"still works"
    assert sorted(os.listdir(p)) == ["fail.txt", "fine.txt"]
    assert share.process.alive() and is_mounted(p)
    log = share.process.output()
    assert "injected backend failure" in log
    assert "Traceback" not in log.split("injected backend failure")[0].split("\n")[-1]


def test_a_folder_rename_that_cannot_copy_a_member_changes_nothing(
    mount_share: MountFactory,
) -> None:
    """On a store without rename a folder's rename is a copy then a delete: when a member
    cannot be copied, rename(2) fails EIO (some members failed, each its own way: the
    share's log names them) and leaves both names as they were."""
    p = mount_share("tests.fuse.storages.StuckCopyStorage", "--cache-ttl", "0").path
    (p / "d" / "e").mkdir(parents=True)
    (p / "d" / "e" / "f").write_bytes(b"F")
    (p / "d" / "stuck").write_bytes(b"S")
    (p / "d" / "g").write_bytes(b"G")
    assert errno_of(os.rename, p / "d", p / "moved") == errno.EIO
    assert os.listdir(p) == ["d"]
    assert not (p / "moved").exists()
    assert sorted(os.listdir(p / "d")) == ["e", "g", "stuck"]
    assert [(p / "d" / n).read_bytes() for n in ("e/f", "stuck", "g")] == [b"F", b"S", b"G"]
    os.rename(p / "d", p / "elsewhere")  # any other name copies
    assert os.listdir(p) == ["elsewhere"]


def test_names_the_store_cannot_hold(mount_share: MountFactory) -> None:
    share = mount_share("filesystem")
    p = share.path
    assert errno_of(os.open, p / ("n" * 256), os.O_CREAT | os.O_WRONLY) == errno.ENAMETOOLONG
    assert errno_of(os.mkdir, p / ("d" * 300)) == errno.ENAMETOOLONG
    assert share.root is not None
    # Local disk holds share paths up to PATH_MAX less its root's path (the calls name
    # files by absolute path); folder descriptors let the test go past the kernel's own
    # PATH_MAX of the mount's path.
    limit = 4096 - 1 - len(os.fsencode(share.root)) - 1
    used, fd = 0, os.open(p, os.O_RDONLY)
    try:
        while limit - used > 255:
            os.mkdir("x" * 200, dir_fd=fd)
            fd, parent = os.open("x" * 200, os.O_RDONLY, dir_fd=fd), fd
            os.close(parent)
            used += 201
        os.close(os.open("y" * (limit - used), os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        too_long = "z" * (limit - used + 1)
        assert errno_of(lambda: os.mkdir(too_long, dir_fd=fd)) == errno.ENAMETOOLONG
    finally:
        os.close(fd)
    assert errno_of(os.open, p / "back\\slash", os.O_CREAT | os.O_WRONLY) == errno.EINVAL
    assert errno_of(os.open, p / "tab\there", os.O_CREAT | os.O_WRONLY) == errno.EINVAL
    assert errno_of(os.mkdir, p / ".davstore-folder") == errno.EINVAL
    assert os.path.isdir(p / ("x" * 200) / ("x" * 200) / ("x" * 200))  # long but allowed
    assert [name for name in os.listdir(p) if name != "x" * 200] == []


def test_kill_9_while_writing_keeps_the_old_version(mount_share: MountFactory) -> None:
    share = mount_share("filesystem")
    assert share.root is not None
    (share.path / "doc.bin").write_bytes(b"old version")
    out = open(share.path / "doc.bin", "r+b")  # noqa: SIM115 - the mount dies under it
    out.write(b"NEW PARTIAL CONTENT " * 10_000)
    out.flush()
    os.kill(share.process.pid, signal.SIGKILL)
    share.process.process.wait(10)
    try:
        with pytest.raises(OSError):
            out.close()
    finally:
        force_unmount(share.path)
    time.sleep(0.1)
    assert not is_mounted(share.path)
    assert (share.root / "doc.bin").read_bytes() == b"old version"
    assert [n for n in os.listdir(share.root) if not n.startswith(".davstore-")] == ["doc.bin"]
