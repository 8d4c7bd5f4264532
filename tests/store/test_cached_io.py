"""The GIL-keeping system calls of the local disk (davstore/store/cached_io.py).

Each call is compared with what ``os`` answers for the same file; the file system store
is checked to answer through them exactly as through ``open``/``os.stat`` (folders,
missing names, offsets, big reads), on the disk and on a memory file system.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from davstore.errors import IsADirectory, NotADirectory, NotFound
from davstore.store import cached_io
from davstore.store.cached_io import CachedReader, HeldWriter
from davstore.store.filesystem import FileSystemStore, ReplaceUpload

LINUX = sys.platform.startswith("linux")
SHM = Path("/dev/shm")

pytestmark = pytest.mark.skipif(not LINUX, reason="openat2, preadv2 and statx are Linux calls")


@pytest.fixture(params=["disk", "memory"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder on the disk (pytest's tmp_path) and one on tmpfs."""
    if request.param == "disk":
        yield tmp_path
        return
    if not SHM.is_dir():  # pragma: no cover - every Linux this runs on has /dev/shm
        pytest.fail("/dev/shm is missing")
    made = SHM / f"davstore-test-{os.getpid()}-{threading.get_ident()}"
    made.mkdir()
    try:
        yield made
    finally:
        for item in sorted(made.rglob("*"), reverse=True):
            item.rmdir() if item.is_dir() else item.unlink()
        made.rmdir()


def test_this_kernel_has_the_calls() -> None:
    # CI's kernels are recent (openat2: 5.6, RESOLVE_CACHED: 5.12); if this fails, every
    # read on the local disk takes the GIL-releasing path and the rest still passes.
    assert cached_io.AVAILABLE


def test_file_system_kinds(tmp_path: Path) -> None:
    assert cached_io.local_file_system(str(SHM)) == "memory"
    assert cached_io.local_file_system("/proc") is None
    assert cached_io.local_file_system(str(tmp_path / "missing")) is None
    assert cached_io.local_file_system(str(tmp_path)) in ("disk", "memory", None)


def test_open_stat_read_close_match_os(folder: Path) -> None:
    path = folder / "a.bin"
    data = os.urandom(10_000)
    path.write_bytes(data)
    os.stat(path)  # the name is in the kernel's cache now
    fd = cached_io.open_cached(str(path))
    assert fd is not None
    try:
        st, ref = cached_io.stat_fd(fd), os.fstat(fd)
        assert (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns) == (
            ref.st_mode,
            ref.st_ino,
            ref.st_size,
            ref.st_mtime_ns,
        )
        assert st.st_mtime == ref.st_mtime
        in_memory = cached_io.local_file_system(str(folder)) == "memory"
        got = cached_io.read_cached(fd, 4096, 100, in_memory)
        assert got is None or data[100:].startswith(got)  # None: not in the page cache
        assert cached_io.read_cached(fd, 4096, 20_000, in_memory) in (b"", None)  # past the end
        assert cached_io.read_cached(fd, cached_io.MAX_HELD_BYTES + 1, 0, in_memory) is None
    finally:
        cached_io.close_fd(fd)
    with pytest.raises(OSError) as caught:
        cached_io.close_fd(fd)
    assert caught.value.errno == errno.EBADF


def test_read_whole_matches_os_and_leaves_no_file_open(folder: Path) -> None:
    """``read_whole``: the four calls in one; every way out closes the file."""
    data = os.urandom(5000)
    (folder / "f.bin").write_bytes(data)
    (folder / "empty").write_bytes(b"")
    os.mkfifo(folder / "pipe")
    in_memory = cached_io.local_file_system(str(folder)) == "memory"
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        got = cached_io.read_whole(str(folder / "f.bin"), 5000, in_memory)
        if got is not None:  # None: not all in the caches (the disk, right after writing)
            st, content = got
            ref = os.stat(folder / "f.bin")
            assert content == data
            assert (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns) == (
                ref.st_mode,
                ref.st_ino,
                ref.st_size,
                ref.st_mtime_ns,
            )
        assert cached_io.read_whole(str(folder / "f.bin"), 4999, in_memory) is None
        empty = cached_io.read_whole(str(folder / "empty"), 10, in_memory)
        assert empty is None or empty[1] == b""
        assert cached_io.read_whole(str(folder / "pipe"), 10, in_memory) is None
        with pytest.raises(IsADirectoryError):
            cached_io.read_whole(str(folder), 10, in_memory)
        with contextlib.suppress(FileNotFoundError):  # or None: left to the usual open
            assert cached_io.read_whole(str(folder / "missing"), 10, in_memory) is None
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_a_missing_name_raises_or_defers(folder: Path) -> None:
    missing = folder / "nothing-here"
    assert not missing.exists()  # a negative entry in the cache now
    with pytest.raises(FileNotFoundError):
        if cached_io.open_cached(str(missing)) is None:
            raise FileNotFoundError  # deferred: os.open would say so
    with pytest.raises(FileNotFoundError):
        if cached_io.stat_cached(str(missing)) is None:
            raise FileNotFoundError


def test_stat_cached_matches_os_stat(folder: Path) -> None:
    path = folder / "s.txt"
    path.write_bytes(b"12345")
    st = cached_io.stat_cached(str(path))
    assert st is not None
    ref = os.stat(path)
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (ref.st_ino, ref.st_size, ref.st_mtime_ns)
    folder_st = cached_io.stat_cached(str(folder))
    assert folder_st is not None and folder_st.st_mode == os.stat(folder).st_mode


def test_reader_behaves_as_an_unbuffered_file(folder: Path) -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes: past MAX_HELD_BYTES
    path = folder / "r.bin"
    path.write_bytes(data)
    fd = cached_io.open_cached(str(path)) or os.open(path, os.O_RDONLY)
    with CachedReader(fd, cached_io.stat_fd(fd), "r.bin", False) as reader:
        assert reader.readable() and reader.seekable() and not reader.writable()
        assert reader.fileno() == fd
        assert reader.read(10) == data[:10]
        assert reader.tell() == 10
        assert reader.read(200_000) == data[10:200_010]  # a big read, GIL released
        assert reader.seek(-6, os.SEEK_END) == len(data) - 6
        assert reader.read() == data[-6:]
        assert reader.read(5) == b""
        reader.seek(3)
        reader.seek(2, os.SEEK_CUR)
        assert reader.read(3) == data[5:8]
        with pytest.raises(OSError):
            reader.seek(-1)
        with pytest.raises(ValueError):
            reader.seek(0, 7)
        reader.seek(0)
        assert reader.read(-1) == data
    assert reader.closed
    reader.close()  # twice: nothing
    with pytest.raises(ValueError):
        reader.read(1)


def test_held_writer_writes_seeks_and_reads(folder: Path) -> None:
    fd = os.open(folder / "w.bin", os.O_RDWR | os.O_CREAT, 0o600)
    writer = HeldWriter(fd)
    assert writer.writable() and writer.seekable()
    assert writer.write(b"hello world") == 11
    assert writer.tell() == 11
    writer.seek(6)
    writer.write(b"WORLD")
    writer.seek(0)
    assert writer.read() == b"hello WORLD"
    writer.seek(0)
    assert writer.read(5) == b"hello"
    assert writer.truncate(5) == 5
    writer.seek(0, os.SEEK_END)
    assert writer.truncate() == 5
    writer.flush()
    writer.close()
    writer.close()
    assert (folder / "w.bin").read_bytes() == b"hello"
    big = HeldWriter(os.open(folder / "big.bin", os.O_RDWR | os.O_CREAT, 0o600))
    assert big.write(b"y" * (cached_io.MAX_HELD_BYTES + 1)) == cached_io.MAX_HELD_BYTES + 1
    big.close()  # (a write that long released the GIL)
    assert (folder / "big.bin").read_bytes() == b"y" * (cached_io.MAX_HELD_BYTES + 1)


def test_a_truncated_disk_file_is_closed_releasing_the_gil(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "t.bin", os.O_RDWR | os.O_CREAT, 0o600)
    writer = HeldWriter(fd, hold_writes=False)
    assert writer.write(b"abc") == 3
    assert writer._hold_close
    writer.truncate(0)
    assert not writer._hold_close  # ext4 may start writing it back at close
    writer.close()
    assert writer.closed
    with pytest.raises(OSError):
        os.fstat(fd)


def test_unnamed_file_linked_in(folder: Path) -> None:
    fd = cached_io.open_held(str(folder), os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
    try:
        cached_io.write_held(fd, b"x" * 70_000)
        assert cached_io.link_held(fd, str(folder / "new.txt"))
        assert not cached_io.link_held(fd, str(folder / "new.txt"))  # taken
        with pytest.raises(FileNotFoundError):
            cached_io.link_held(fd, str(folder / "no-such-folder" / "x"))
    finally:
        cached_io.close_fd(fd)
    assert (folder / "new.txt").read_bytes() == b"x" * 70_000
    with pytest.raises(FileNotFoundError):
        cached_io.open_held(str(folder / "missing"), os.O_RDONLY, 0)
    with pytest.raises(OSError):
        cached_io.write_held(fd, b"closed")


def test_flock_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "mutex"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    try:
        assert cached_io.flock_held(first, fcntl.LOCK_EX)
        assert not cached_io.flock_held(second, fcntl.LOCK_SH)  # would wait: refused
        assert cached_io.flock_held(first, fcntl.LOCK_UN)
        assert cached_io.flock_held(second, fcntl.LOCK_SH)
        assert cached_io.flock_held(first, fcntl.LOCK_SH)  # shared with shared
        with pytest.raises(OSError):
            cached_io.flock_held(-1, fcntl.LOCK_SH)
    finally:
        os.close(first)
        os.close(second)


# -------------------------------------------------------------- the file system store


@pytest.fixture
def store(folder: Path) -> FileSystemStore:
    return FileSystemStore(FileSystemStorage(location=str(folder)))


def test_store_uses_the_calls_where_it_may(store: FileSystemStore, folder: Path) -> None:
    expected = cached_io.local_file_system(str(folder))
    assert store._cached_io == expected
    upload = store.start_upload("u.txt", spool_dir=None, spool_memory=0)
    try:
        assert isinstance(upload, ReplaceUpload)
        assert isinstance(upload.file, HeldWriter) == (expected is not None)
        if isinstance(upload.file, HeldWriter):
            assert upload.file._hold_writes == (expected == "memory")
    finally:
        upload.abort()


def test_store_reads_through_the_cached_path(store: FileSystemStore, folder: Path) -> None:
    data = os.urandom(3000)
    (folder / "sub").mkdir()
    (folder / "sub" / "f.bin").write_bytes(data)
    head = store.head("sub/f.bin")
    ref = os.stat(folder / "sub" / "f.bin")
    assert head.size == 3000 and head.mtime_ns == ref.st_mtime_ns
    with store.open_read("sub/f.bin") as stream:
        if store._cached_io:
            assert isinstance(stream, CachedReader)
        assert stream.read(100) == data[:100]
        info = store.stream_info("sub/f.bin", stream)
        assert info is not None and info.etag == head.etag and info.size == 3000
    with store.open_read("sub/f.bin", 2990) as stream:
        assert stream.read(100) == data[2990:]
    assert store.head("sub").is_dir
    with pytest.raises(IsADirectory):
        store.open_read("sub")
    with pytest.raises(NotFound):
        store.open_read("sub/missing.bin")
    with pytest.raises(NotFound):
        store.head("sub/missing.bin")


def test_store_reads_a_small_file_in_one_call(store: FileSystemStore, folder: Path) -> None:
    """``read_small``: the bytes and the stat of the version read, from one open; None
    where the open path would do better (bigger than the limit, not a regular file)."""
    data = os.urandom(3000)
    (folder / "sub").mkdir()
    (folder / "sub" / "f.bin").write_bytes(data)
    (folder / "empty").write_bytes(b"")
    os.mkfifo(folder / "pipe")
    got = store.read_small("sub/f.bin", 3000)
    if not store._cached_io:
        assert got is None, "only where the calls keep the GIL"
        return
    assert got is not None
    info, content = got
    assert content == data
    assert info == store.head("sub/f.bin")
    assert store.read_small("empty", 10) == (store.head("empty"), b"")
    assert store.read_small("sub/f.bin", 2999) is None, "bigger than the limit"
    assert store.read_small("pipe", 10) is None, "a FIFO: opened the usual way"
    with pytest.raises(IsADirectory):
        store.read_small("sub", 10)
    # A name the kernel's cache cannot resolve (tmpfs keeps no absent names) is left to
    # open_read, which raises; one it can is refused at once, with open_read's error.
    assert not (folder / "sub" / "missing.bin").exists()
    for name, error in (("sub/missing.bin", NotFound), ("sub/f.bin/below", NotADirectory)):
        with contextlib.suppress(error):
            assert store.read_small(name, 10) is None
        with pytest.raises(error):
            store.open_read(name)


def test_store_upload_round_trip(store: FileSystemStore, folder: Path) -> None:
    for content in (b"first version", b"second, longer version"):
        upload = store.start_upload("doc.txt", spool_dir=None, spool_memory=0)
        upload.file.write(content)
        info = upload.commit()
        assert info.size == len(content)
        assert (folder / "doc.txt").read_bytes() == content
        assert store.head("doc.txt").etag == info.etag
    assert [p.name for p in folder.iterdir()] == ["doc.txt"]  # no stage file left


def test_readers_on_many_threads(store: FileSystemStore, folder: Path) -> None:
    """Threads reading at once each get their own bytes (the held calls share no state)."""
    for i in range(20):
        (folder / f"t{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    errors: list[BaseException] = []

    def read_all() -> None:
        try:
            for _ in range(50):
                for i in range(20):
                    with store.open_read(f"t{i}.bin") as stream:
                        assert stream.read(5000) == bytes([i]) * (1000 + i)
                        info = store.stream_info(f"t{i}.bin", stream)
                        assert info is not None and info.size == 1000 + i
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_a_fifo_is_not_opened_holding_the_gil(store: FileSystemStore, folder: Path) -> None:
    """A FIFO opened for reading waits for a writer: with the GIL held that would stop
    every thread. The cached open does not wait (O_NONBLOCK) and leaves it to ``open``."""
    os.mkfifo(folder / "pipe")
    fd = cached_io.open_cached(str(folder / "pipe"))  # returns at once
    if fd is not None:
        cached_io.close_fd(fd)
    assert store._open_cached("pipe") is None
