"""The frontend's one outbound table, kernel options, and the store worker pool
(in-process, no kernel involved)."""

from __future__ import annotations

import errno
import logging
import os
import threading
from typing import Any

import pytest
from django.core.files.storage import InMemoryStorage

from davstore.errors import NotSupported
from davstore.frontends.fuse.binding import FuseOSError
from davstore.frontends.fuse.mount import MountOptions, fuse_options
from davstore.frontends.fuse.operations import Operations
from davstore.store import adapt
from davstore.store.threaded import ThreadedStore, needs_workers
from davstore.vfs import VFS
from davstore.vfs.events import Action, Actor, Change
from tests.minimal_storages import MinimalStorage


class BrokenVFS(VFS):
    def __init__(self, error: BaseException) -> None:
        super().__init__(adapt(InMemoryStorage()))
        self.error = error

    def stat(self, path: str) -> Any:
        raise self.error


def errno_of(ops: Operations, call: str, *args: Any) -> int:
    with pytest.raises(FuseOSError) as info:
        getattr(ops, call)(*args)
    assert info.value.errno is not None
    return info.value.errno


def test_a_bug_becomes_eio_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    ops = Operations(BrokenVFS(KeyError("boom")))
    with caplog.at_level(logging.ERROR):
        assert errno_of(ops, "getattr", "/x") == errno.EIO
    records = [r for r in caplog.records if "answering EIO" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None


def test_oserror_without_errno_becomes_eio() -> None:
    assert errno_of(Operations(BrokenVFS(FileNotFoundError("x"))), "getattr", "/x") == errno.EIO


def test_enosys_is_sent_as_enotsup() -> None:
    """The kernel would switch an operation off for good after one ENOSYS."""
    assert errno_of(Operations(BrokenVFS(NotSupported("x"))), "getattr", "/x") == errno.ENOTSUP


def test_no_helper_is_named_like_a_fuse_operation() -> None:
    public = {name for name in vars(Operations) if not name.startswith("_")}
    assert public == {
        "use_ns", "flag_utime_omit_ok", "init", "destroy", "getattr", "opendir", "readdir",
        "releasedir", "getxattr", "statfs",
        "access", "utimens", "chmod", "chown", "open", "create", "read", "write", "truncate",
        "flush", "fsync", "release", "unlink", "mkdir", "rmdir", "rename", "symlink", "link",
        "mknod", "readlink",
    }  # fmt: skip


def test_readdir_reads_one_listing_per_open_folder() -> None:
    vfs = VFS(adapt(InMemoryStorage()))
    vfs.write_file("a.txt", b"abc")
    ops = Operations(vfs)
    fh = ops.opendir("/")
    first = ops.readdir("/", fh, 0)
    assert sorted(name for name, _, _ in first) == [".", "..", "a.txt"]
    assert next(attrs for name, attrs, _ in first if name == "a.txt")["st_size"] == 3
    vfs.write_file("b.txt", b"")
    assert ops.readdir("/", fh, 2) is first  # the offsets the kernel holds stay valid
    again = ops.readdir("/", fh, 0)  # a rewind lists afresh
    assert sorted(name for name, _, _ in again) == [".", "..", "a.txt", "b.txt"]
    assert ops.releasedir("/", fh) == 0
    other = ops.opendir("/")
    assert ops.readdir("/", other, 0) is again  # unchanged listing, same answer
    assert [name for name, _, _ in again][:2] == [".", ".."]
    assert list(again) == [again[i] for i in range(-len(again), 0)]


class _FileInfo:
    """What the binding passes as ``fi`` (``raw_fi``): flags in, handle number out."""

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.fh = 0
        self.direct_io = 0


def test_changes_made_through_the_mount_carry_its_user() -> None:
    vfs = VFS(adapt(InMemoryStorage()))
    changes: list[Change] = []
    vfs.subscribe(changes.append)
    ops = Operations(vfs, actor="alice")
    fi = _FileInfo(os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    ops.create("/a.txt", 0o644, fi)
    ops.write("/a.txt", b"abc", 0, fi)
    ops.getattr("/a.txt", fi)
    ops.flush("/a.txt", fi)
    ops.release("/a.txt", fi)
    ops.mkdir("/d", 0o755)
    ops.rename("/a.txt", "/d/b.txt", 0)
    ops.unlink("/d/b.txt")
    ops.rmdir("/d")
    assert [c.action for c in changes] == [
        Action.CREATED, Action.FOLDER_CREATED, Action.MOVED, Action.DELETED,
        Action.FOLDER_DELETED,
    ]  # fmt: skip
    assert {c.actor for c in changes} == {Actor("alice", "fuse")}


def test_kernel_options() -> None:
    three = fuse_options(MountOptions(cache_ttl=2.5), (3, 14))
    assert three["fsname"] == three["subtype"] == "davstore"
    assert three["attr_timeout"] == three["entry_timeout"] == three["negative_timeout"] == "2.5"
    assert three["auto_cache"] and "hard_remove" not in three
    assert "big_writes" not in three and "ro" not in three and "allow_other" not in three
    # Modes are only checked by the kernel when other users get in.
    assert "default_permissions" not in three
    # A bound libfuse 3.14 accepts (its default, UINT_MAX, it refuses aloud).
    assert three["max_idle_threads"] == three["max_threads"] <= 100_000
    two = fuse_options(MountOptions(read_only=True, allow_other=True), (2, 9))
    assert two["big_writes"] and two["max_write"] >= 128 << 10
    assert two["ro"] and two["allow_other"] and two["default_permissions"]
    assert "max_idle_threads" not in two and "max_threads" not in two  # libfuse 2 has none
    # The kernel can be told what changed on libfuse 3 only: the long cache stays short on 2.
    assert fuse_options(MountOptions(), (3, 14))["entry_timeout"] == "3600"
    assert fuse_options(MountOptions(), (2, 9))["entry_timeout"] == "1"


def test_threaded_store_runs_calls_on_a_few_long_lived_threads() -> None:
    inner = adapt(MinimalStorage())
    assert needs_workers(inner) and not needs_workers(adapt(InMemoryStorage()))
    seen: set[int] = set()
    original = inner.head

    def head(name: str) -> Any:
        seen.add(threading.get_ident())
        return original(name)

    inner.head = head  # type: ignore[method-assign]
    store = ThreadedStore(inner, workers=2)
    try:
        vfs = VFS(store, cache_ttl=0)
        vfs.write_file("a.txt", b"hello")
        for _ in range(20):
            assert vfs.stat("a.txt").size == 5
        with vfs.open_read("a.txt") as handle:
            assert handle.read() == b"hello"
        assert threading.get_ident() not in seen and 1 <= len(seen) <= 2
    finally:
        store.close()
