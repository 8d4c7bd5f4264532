"""Open files on a mount behave as on a native folder (issue 27: items 2, 5 and 7).

Each sequence runs on a native temporary folder and on a mount in the same test, and the two
results must be equal: descriptors on one file share one view of it, a reader keeps the
content it opened across an unlink or a rename over it, a writer whose file was replaced
never commits over the new one, and reading or opening without writing keeps the mtime.
Every test runs on a local-disk, a memory and an S3 (moto) mount.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import MountFactory
from tests.fuse.mounting import MountProcess, start_mount
from tests.s3.conftest import bucket, moto  # noqa: F401 - fixtures for the S3 mount
from tests.s3.moto import MotoServer
from tests.s3.test_fuse import mount_args

MOUNTS = ["filesystem", "memory", "s3"]

#: A sequence: given a folder, makes its files and returns what it observed.
Sequence = Callable[[Path], object]


@pytest.fixture(params=MOUNTS)
def mounted(
    request: pytest.FixtureRequest, mount_share: MountFactory, tmp_path: Path
) -> Iterator[Path]:
    """The mount point of a fresh share of each kind."""
    if request.param != "s3":
        yield mount_share(str(request.param)).path
        return
    server: MotoServer = request.getfixturevalue("moto")
    name: str = request.getfixturevalue("bucket")
    mount: MountProcess = start_mount(tmp_path / "s3mnt", mount_args(server, name), base=tmp_path)
    try:
        yield mount.mountpoint
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure


def same_on_both(sequence: Sequence, mounted: Path, tmp_path: Path) -> object:
    """Run ``sequence`` in a native folder and in the mount; both answers must agree."""
    native = tmp_path / "native"
    native.mkdir()
    expected = sequence(native)
    got = sequence(mounted)
    assert got == expected
    return got


def _open(path: Path, flags: int) -> int:
    return os.open(path, flags, 0o644)


def two_writers(first_closed: str) -> Sequence:
    def run(folder: Path) -> bytes:
        f = folder / "f"
        f.write_bytes(b"")
        fds = {"a": _open(f, os.O_WRONLY), "b": _open(f, os.O_WRONLY)}
        os.pwrite(fds["a"], b"AAAA", 0)
        os.pwrite(fds["b"], b"BBBB", 4)
        os.close(fds[first_closed])
        os.close(fds["b" if first_closed == "a" else "a"])
        return f.read_bytes()

    return run


@pytest.mark.parametrize("first_closed", ["a", "b"])
def test_two_descriptors_keep_each_others_writes(
    first_closed: str, mounted: Path, tmp_path: Path
) -> None:
    assert same_on_both(two_writers(first_closed), mounted, tmp_path) == b"AAAABBBB"


def appends_in_turn(folder: Path) -> bytes:
    f = folder / "f"
    f.write_bytes(b"")
    a = _open(f, os.O_WRONLY | os.O_APPEND)
    b = _open(f, os.O_WRONLY | os.O_APPEND)
    os.write(a, b"1")
    os.write(b, b"2")
    os.write(a, b"3")
    os.close(a)
    os.close(b)
    return f.read_bytes()


def test_two_append_descriptors_write_in_turn(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(appends_in_turn, mounted, tmp_path) == b"123"


def appended_lines(folder: Path) -> bytes:
    f = folder / "log"
    f.write_bytes(b"start\n")
    a = _open(f, os.O_WRONLY | os.O_APPEND)
    b = _open(f, os.O_WRONLY | os.O_APPEND)
    for number in range(3):
        os.write(a, f"a{number}\n".encode())
        os.write(b, f"b{number}\n".encode())
    os.close(a)
    os.close(b)
    return f.read_bytes()


def test_six_lines_appended_from_two_descriptors(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(appended_lines, mounted, tmp_path) == b"start\na0\nb0\na1\nb1\na2\nb2\n"


def truncate_then_write(folder: Path) -> bytes:
    f = folder / "f"
    f.write_bytes(b"0123456789")
    a = _open(f, os.O_WRONLY)
    b = _open(f, os.O_WRONLY)
    os.ftruncate(a, 3)
    os.pwrite(b, b"X", 0)
    os.close(a)
    os.close(b)
    return f.read_bytes()


def test_a_truncate_is_seen_by_the_other_descriptor(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(truncate_then_write, mounted, tmp_path) == b"X12"


def read_write_pair(folder: Path) -> tuple[bytes, bytes, int]:
    """One O_RDWR descriptor reads what another wrote before either closed."""
    f = folder / "f"
    f.write_bytes(b"old content")
    a = _open(f, os.O_RDWR)
    b = _open(f, os.O_RDWR)
    os.pwrite(a, b"NEW", 0)
    seen = os.pread(b, 100, 0)
    os.pwrite(b, b"!", 11)
    size = os.fstat(a).st_size
    os.close(b)
    os.close(a)
    return seen, f.read_bytes(), size


def test_read_write_descriptors_share_one_view(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(read_write_pair, mounted, tmp_path) == (
        b"NEW content",
        b"NEW content!",
        12,
    )


_APPENDER = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for number in range(int(sys.argv[3])):
    os.write(fd, f"{sys.argv[2]} {number}\\n".encode())
os.close(fd)
"""


def two_processes_append(folder: Path) -> list[str]:
    log = folder / "log"
    log.write_bytes(b"")
    lines = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(log), name, str(lines)])
        for name in ("p", "q")
    ]
    for writer in writers:
        assert writer.wait(120) == 0
    return sorted(log.read_text().splitlines())


def test_two_processes_appending_to_one_log_lose_no_line(mounted: Path, tmp_path: Path) -> None:
    lines = same_on_both(two_processes_append, mounted, tmp_path)
    assert isinstance(lines, list) and len(lines) == 300


def reader_across_rename_over(folder: Path) -> tuple[bytes, bytes, int]:
    f, g = folder / "f", folder / "g"
    f.write_bytes(b"old " * 75)
    g.write_bytes(b"new")
    fd = os.open(f, os.O_RDONLY)
    os.rename(g, f)
    try:
        return os.pread(fd, 1000, 0), f.read_bytes(), os.fstat(fd).st_size
    finally:
        os.close(fd)


def test_a_reader_keeps_the_content_a_rename_replaced(mounted: Path, tmp_path: Path) -> None:
    old, new, size = same_on_both(reader_across_rename_over, mounted, tmp_path)  # type: ignore[misc]
    assert (len(old), new, size) == (300, b"new", 300)


def writer_renamed_over(folder: Path) -> tuple[bytes, list[str]]:
    f, g = folder / "f", folder / "g"
    f.write_bytes(b"original")
    g.write_bytes(b"renamed")
    fd = os.open(f, os.O_WRONLY)
    os.write(fd, b"writer")
    os.rename(g, f)
    os.write(fd, b"more")
    os.close(fd)
    return f.read_bytes(), sorted(os.listdir(folder))


def test_a_writer_whose_file_was_renamed_over_does_not_commit(
    mounted: Path, tmp_path: Path
) -> None:
    assert same_on_both(writer_renamed_over, mounted, tmp_path) == (b"renamed", ["f"])


def read_after_unlink(folder: Path) -> tuple[bytes, bytes, int, list[str]]:
    f = folder / "f"
    content = bytes(range(256)) * 40
    f.write_bytes(content)
    whole = os.open(f, os.O_RDONLY)
    partly = os.open(f, os.O_RDONLY)
    first = os.read(partly, 1000)
    os.unlink(f)
    try:
        return (
            os.read(whole, 1 << 20),
            first + os.read(partly, 1 << 20),
            os.fstat(partly).st_size,
            os.listdir(folder),
        )
    finally:
        os.close(whole)
        os.close(partly)


def test_an_unlinked_file_stays_readable_until_closed(mounted: Path, tmp_path: Path) -> None:
    whole, partly, size, names = same_on_both(read_after_unlink, mounted, tmp_path)  # type: ignore[misc]
    assert whole == partly == bytes(range(256)) * 40
    assert (size, names) == (10240, [])


def mtimes_after_reading(folder: Path) -> list[bool]:
    f = folder / "f"
    f.write_bytes(b"content")
    time.sleep(1.1)  # past the cache TTL and a second: a moved time would show
    before = os.stat(f).st_mtime_ns
    kept = []
    for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND):
        fd = os.open(f, flags)
        if flags == os.O_RDONLY:
            os.read(fd, 100)
        os.close(fd)
        time.sleep(1.1)
        kept.append(os.stat(f).st_mtime_ns == before)
    return kept


def test_reading_or_opening_without_writing_keeps_the_mtime(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(mtimes_after_reading, mounted, tmp_path) == [True] * 4


def mtime_while_written(folder: Path) -> bool:
    """The mtime of a file open with a write not yet committed stays that of the write."""
    f = folder / "f"
    fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"a")
        first = os.stat(f).st_mtime_ns
        time.sleep(1.1)  # past the kernel's and the VFS's caches
        return os.stat(f).st_mtime_ns == first
    finally:
        os.close(fd)


def test_the_mtime_of_a_file_being_written_is_its_last_write(mounted: Path, tmp_path: Path) -> None:
    assert same_on_both(mtime_while_written, mounted, tmp_path) is True
