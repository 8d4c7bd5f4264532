"""Open files in the VFS, for every frontend: shared write handles share one file, private
ones (a PUT) do not; readers keep their version across a remove or a replace; a writer
whose name was replaced never commits; growing truncates are sparse and bounded.
Runs on every store kind (local disk, memory, a flat custom Storage)."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time

import pytest
from django.core.files.storage import Storage

from davstore.errors import FileTooLarge, InsufficientStorage
from davstore.store import adapt
from davstore.store.threaded import ThreadedStore
from davstore.vfs import VFS


def content(vfs: VFS, path: str) -> bytes:
    with vfs.open_read(path) as reader:
        return reader.read()


@pytest.fixture
def vfs(storage: Storage) -> VFS:
    return VFS(adapt(storage), cache_ttl=60)


def test_shared_handles_see_and_commit_each_others_writes(vfs: VFS) -> None:
    vfs.write_file("f", b"0123456789")
    a = vfs.open_write("f", truncate=False, shared=True)
    b = vfs.open_write("f", truncate=False, shared=True)
    a.truncate(3)
    b.pwrite(b"X", 0)
    assert a.pread(10, 0) == b"X12"
    assert vfs.stat("f").size == 3
    a.close()
    assert content(vfs, "f") == b"X12"
    b.pwrite(b"Y", 3)
    b.close()
    assert content(vfs, "f") == b"X12Y"
    assert not vfs._handles_within("")


def test_private_handles_keep_their_own_stage(vfs: VFS) -> None:
    """Two PUTs of one file: each replaces the whole file, the last commit wins."""
    first = vfs.open_write("f")
    second = vfs.open_write("f")
    first.write(b"first")
    second.write(b"2nd")
    second.close()
    first.close()
    assert content(vfs, "f") == b"first"


def test_a_truncating_open_empties_the_shared_file(vfs: VFS) -> None:
    vfs.write_file("f", b"old content")
    a = vfs.open_write("f", truncate=False, shared=True)
    a.pwrite(b"NEW", 0)
    b = vfs.open_write("f", truncate=True, shared=True)
    assert a.size == b.size == 0
    b.write(b"b")
    a.close()
    b.close()
    assert content(vfs, "f") == b"b"


def test_a_reader_keeps_its_content_across_a_remove(vfs: VFS) -> None:
    vfs.write_file("f", b"x" * 5000)
    whole, partly = vfs.open_read("f"), vfs.open_read("f")
    assert partly.pread(10, 0) == b"x" * 10
    vfs.remove("f")
    assert not vfs.exists("f")
    assert whole.read() == b"x" * 5000
    assert partly.pread(10_000, 10) == b"x" * 4990
    assert vfs.fstat(partly).size == 5000
    whole.close()
    partly.close()


def test_a_reader_keeps_the_content_a_rename_replaced(vfs: VFS) -> None:
    vfs.write_file("f", b"old " * 75)
    vfs.write_file("g", b"new")
    reader = vfs.open_read("f")
    vfs.rename("g", "f")
    assert reader.read() == b"old " * 75
    assert vfs.fstat(reader).size == 300
    reader.close()
    assert content(vfs, "f") == b"new"


def test_a_writer_whose_name_was_replaced_never_commits(vfs: VFS) -> None:
    vfs.write_file("f", b"original")
    vfs.write_file("g", b"renamed")
    writer = vfs.open_write("f", truncate=False, shared=True)
    writer.write(b"writer")
    vfs.rename("g", "f")
    writer.write(b"more")
    assert writer.pread(100, 0) == b"writermore"  # its own copy, as an unlinked inode
    writer.close()
    assert content(vfs, "f") == b"renamed"
    # A new open is a new file, not the detached one.
    with vfs.open_write("f", truncate=False, shared=True) as again:
        assert again.pread(100, 0) == b"renamed"


def test_the_pending_mtime_is_the_last_change(vfs: VFS) -> None:
    handle = vfs.open_write("f")
    handle.write(b"a")
    first = vfs.stat("f").mtime
    time.sleep(0.05)
    assert vfs.stat("f").mtime == first
    handle.write(b"b")
    assert (vfs.stat("f").mtime or 0) > (first or 0)
    handle.close()


def test_growing_truncates_are_bounded(vfs: VFS) -> None:
    limited = VFS(vfs.store, cache_ttl=60, max_file_size=1 << 20)
    with limited.open_write("f", shared=True) as handle:
        with pytest.raises(FileTooLarge) as too_big:
            handle.truncate((1 << 20) + 1)
        assert too_big.value.errno == errno.EFBIG
        assert InsufficientStorage.code == errno.ENOSPC
        with pytest.raises(FileTooLarge):
            handle.pwrite(b"x", 1 << 20)
        assert handle.size == 0
    room = os.statvfs(vfs.spool_dir or "/tmp")
    past_the_room = room.f_bavail * room.f_frsize + (1 << 30)
    with vfs.open_write("g", shared=True) as handle:
        handle.write(b"abc")
        limit = vfs.file_size_limit  # memory: the host's memory may come first
        refused = FileTooLarge if limit and past_the_room > limit else InsufficientStorage
        with pytest.raises(refused):
            handle.truncate(past_the_room)
        assert handle.size == 3
        handle.truncate(20 << 20)  # past the spool's memory part: a sparse file
        assert handle.pread(4, (20 << 20) - 2) == b"\0\0"
    assert vfs.stat("g").size == 20 << 20


def test_removing_a_folder_keeps_its_readers_and_detaches_its_writers(vfs: VFS) -> None:
    vfs.mkdir("d")
    vfs.write_file("d/r", b"read me")
    reader = vfs.open_read("d/r")
    writer = vfs.open_write("d/w", shared=True)
    writer.write(b"never stored")
    vfs.remove_tree("d")
    assert reader.read() == b"read me"
    reader.close()
    writer.close()
    assert not vfs.exists("d")
    assert not vfs.exists("d/w")


def test_shared_handles_on_threads_lose_no_write(vfs: VFS) -> None:
    vfs.write_file("f", b"")
    block = 4096
    count = 8
    ready = threading.Barrier(count)

    def writer(number: int) -> None:
        handle = vfs.open_write("f", truncate=False, shared=True)
        ready.wait()
        for round_ in range(4):
            handle.pwrite(bytes([number]) * block, (round_ * count + number) * block)
        handle.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    data = content(vfs, "f")
    assert len(data) == 4 * count * block
    for index in range(4 * count):
        assert data[index * block : (index + 1) * block] == bytes([index % count]) * block
    assert not vfs._handles_within("")


class _Trickle:
    """A raw stream that answers each read with at most 4 KiB (a local file read from the
    page cache answers with the pages the cache holds)."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(min(size, 4096) if size >= 0 else 4096)  # type: ignore[attr-defined]

    def __enter__(self) -> _Trickle:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._stream.close()  # type: ignore[attr-defined]


def test_a_committed_file_read_through_a_write_handle_is_read_whole(
    vfs: VFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsx -c 10 on a local-disk mount: a read after a commit (the descriptor still open)
    came back short where the store's stream answered with part of what was asked."""
    vfs.write_file("f", bytes(range(256)) * 100)
    handle = vfs.open_write("f", truncate=False, shared=True)
    handle.pwrite(b"x", 0)
    handle.commit()
    open_read = vfs.store.open_read
    monkeypatch.setattr(vfs.store, "open_read", lambda *a, **k: _Trickle(open_read(*a, **k)))
    assert handle.pread(20000, 1000) == (b"x" + (bytes(range(256)) * 100)[1:])[1000:21000]
    handle.close()


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_reader_on_disk_offers_its_file_descriptor(
    storage: Storage, store_kind: str, wrapped: bool
) -> None:
    """``ReadHandle.os_file``: the local disk's open file, also through store wrappers
    (threads), holding the version opened; None on other stores and once closed."""
    store = adapt(storage)
    if wrapped:
        store = ThreadedStore(store, workers=2)
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("f", b"first version")
    reader = vfs.open_read("f", exact=True)
    fd = reader.os_file()
    if store_kind != "filesystem":
        assert fd is None
        reader.close()
        return
    assert fd is not None
    vfs.write_file("f", b"second")  # replaced: the descriptor still reads the first
    assert os.pread(fd, 100, 6) == b"version"
    assert reader.read() == b"first version"  # the handle's own position did not move
    reader.close()
    assert reader.os_file() is None
    if wrapped:
        store.close()


def test_open_cached_opens_only_what_the_kernel_has_cached(
    storage: Storage, store_kind: str
) -> None:
    """``VFS.open_cached``: the local disk's file opened without waiting (its version, an
    OS file); None on other stores; NotFound and IsADirectory as ``open_read``."""
    vfs = VFS(adapt(storage), cache_ttl=60)
    vfs.write_file("f", b"content")
    vfs.mkdir("d")
    handle = vfs.open_cached("f")
    if store_kind != "filesystem":
        assert handle is None
        return
    assert handle is not None
    assert handle.entry.size == 7 and handle.read() == b"content"
    fd = handle.os_file()
    assert fd is not None and os.pread(fd, 3, 4) == b"ent"
    handle.close()
    assert not vfs._readers
    with pytest.raises(IsADirectoryError):
        vfs.open_cached("d")  # a folder the VFS knows
    for path, error in (("missing", FileNotFoundError), ("d", IsADirectoryError)):
        vfs.cache.clear()
        with contextlib.suppress(error):  # or None: the kernel could not tell without waiting
            assert vfs.open_cached(path) is None
