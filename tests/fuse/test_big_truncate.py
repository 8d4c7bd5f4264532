"""Growing truncates on a mount are sparse and bounded (issue 27, item 1).

Every test here runs with the share's store (local disk) and the spool (``TMPDIR`` of the
mount process) on a 64 MiB tmpfs mounted for the test, so a regression that writes zeros
again stops at 64 MiB instead of filling the machine's disk; each truncate runs in a
subprocess with a deadline, so none can hang the run.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import MountFactory
from tests.fuse.mounting import MountProcess, start_mount
from tests.s3.conftest import bucket, moto  # noqa: F401 - fixtures for the S3 mount
from tests.s3.moto import MotoServer
from tests.s3.test_fuse import mount_args

ROOM = 64 << 20
PETABYTE = 10**15

_TRUNCATE = """
import os, sys
path, size, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    if how == "path":
        os.truncate(path, size)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
except OSError as exc:
    print(exc.errno)
else:
    print(0)
"""


def truncate(path: Path, size: int, how: str = "path") -> int:
    """``truncate``/``ftruncate`` (a new file) in a subprocess: 0 or the errno."""
    done = subprocess.run(
        [sys.executable, "-c", _TRUNCATE, str(path), str(size), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, unmounted at the end."""
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ROOM}", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def used(disk: Path) -> int:
    usage = os.statvfs(disk)
    return (usage.f_blocks - usage.f_bfree) * usage.f_frsize


@pytest.fixture(params=["filesystem", "memory", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def mount_on(
    kind: str,
    small_disk: Path,
    mount_share: MountFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    *extra: str,
) -> tuple[Path, list[MountProcess]]:
    """A share of ``kind`` whose store (local disk) and spool are on ``small_disk``."""
    env = {"TMPDIR": str(small_disk / "spool")}
    (small_disk / "spool").mkdir(exist_ok=True)
    if kind == "filesystem":
        root = small_disk / "root"
        root.mkdir(exist_ok=True)
        return mount_share("filesystem", *extra, env=env, root=root).path, []
    if kind == "memory":
        return mount_share("memory", *extra, env=env).path, []
    server: MotoServer = request.getfixturevalue("moto")
    name: str = request.getfixturevalue("bucket")
    args = [*mount_args(server, name), *extra]
    mount = start_mount(tmp_path / f"s3mnt{len(extra)}", args, base=tmp_path, env=env)
    return mount.mountpoint, [mount]


@pytest.fixture
def mounted(
    kind: str,
    small_disk: Path,
    mount_share: MountFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[Path]:
    path, extra = mount_on(kind, small_disk, mount_share, request, tmp_path)
    yield path
    for mount in extra:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")


def test_a_growing_truncate_writes_no_zeros(
    small_disk: Path, mount_share: MountFactory, tmp_path: Path
) -> None:
    (small_disk / "root").mkdir()
    share = mount_share("filesystem", env={"TMPDIR": str(small_disk)}, root=small_disk / "root")
    f = share.path / "big"
    f.write_bytes(b"head")
    before = used(small_disk)
    assert truncate(f, 32 << 20) == 0
    assert f.stat().st_size == 32 << 20
    with open(f, "rb") as read:
        assert read.read(4) == b"head"
        read.seek((32 << 20) - 3)
        assert read.read() == b"\0\0\0"
    # Sparse in the store too: the 32 MiB take (next to) no room on the tmpfs.
    assert (small_disk / "root" / "big").stat().st_blocks * 512 < 1 << 20
    assert used(small_disk) - before < 1 << 20


def test_a_truncate_past_the_spool_room_is_enospc_and_changes_nothing(
    mounted: Path, small_disk: Path
) -> None:
    old = mounted / "old"
    old.write_bytes(b"abc")
    assert truncate(old, 10 << 30) == errno.ENOSPC
    assert old.read_bytes() == b"abc"
    # A new file: the failed ftruncate commits no zeros; the file is there, empty (as
    # natively), and nothing was written to the small disk meanwhile.
    assert truncate(mounted / "new", 10 << 30, how="ftruncate") == errno.ENOSPC
    assert (mounted / "new").stat().st_size == 0
    assert (mounted / "new").read_bytes() == b""
    assert used(small_disk) < 8 << 20


def test_a_petabyte_is_past_the_store_limit(
    kind: str,
    small_disk: Path,
    mount_share: MountFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """EFBIG on S3 (5 TiB) and memory (the host's memory) by default; on local disk with
    the share's maximum file size set (a tmpfs itself takes files of 8 EiB: there the
    spool's room answers, ENOSPC)."""
    extra = ("--max-upload-size", "1G") if kind == "filesystem" else ()
    path, mounts = mount_on(kind, small_disk, mount_share, request, tmp_path, *extra)
    try:
        f = path / "f"
        f.write_bytes(b"abc")
        assert truncate(f, PETABYTE) == errno.EFBIG
        assert truncate(path / "new", PETABYTE, how="ftruncate") == errno.EFBIG
        assert f.read_bytes() == b"abc"
        assert truncate(f, (1 << 30) + 1) == (errno.EFBIG if kind == "filesystem" else errno.ENOSPC)
        if kind == "filesystem":
            plain, _ = mount_on(kind, small_disk, mount_share, request, tmp_path)
            assert truncate(plain / "f", PETABYTE) == errno.ENOSPC
        assert used(small_disk) < 8 << 20
    finally:
        for mount in mounts:
            mount.stop()
