"""Store adapters (store/): how each one turns a Django Storage into the flat primitives:
its errors translated, its accelerators chosen, local-disk writes staged and committed."""

from __future__ import annotations

import errno
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore import errors
from davstore.errors import (
    InvalidPath,
    NotFound,
    NotSupported,
    StoreError,
)
from davstore.store import FileSystemStore, GenericStore, MemoryStore, adapt
from davstore.store import filesystem as filesystem_store
from davstore.store.base import ObjectStore
from davstore.store.filesystem import _umask
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS
from tests.minimal_storages import LimitedStorage, MinimalStorage


@pytest.fixture(params=[True, False], ids=["unnamed", "named"])
def stage_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Local-disk uploads staged in an unnamed file (O_TMPFILE) or a hidden named one."""
    if request.param and not filesystem_store._UNNAMED_FILES:
        pytest.fail("O_TMPFILE and /proc are there on the machines davstore is tested on")
    monkeypatch.setattr(filesystem_store.ReplaceUpload, "unnamed", request.param)
    return bool(request.param)


def test_backend_errors_are_translated() -> None:
    from django.core.exceptions import SuspiciousFileOperation

    assert isinstance(errors.from_exception(FileNotFoundError("x")), NotFound)
    assert isinstance(errors.from_exception(NotImplementedError()), NotSupported)
    assert isinstance(errors.from_exception(SuspiciousFileOperation("x")), InvalidPath)
    assert isinstance(
        errors.from_exception(OSError(errno.ENOSPC, "full")), errors.InsufficientStorage
    )
    odd = errors.from_exception(RuntimeError("boom"), "p")
    assert isinstance(odd, StoreError)
    assert "RuntimeError: boom" in str(odd)
    assert odd.errno == errno.EIO


def test_accelerators_are_picked_by_isinstance(tmp_path: Path) -> None:
    class ProjectStorage(FileSystemStorage):
        pass

    class EncryptingStorage(FileSystemStorage):
        def _save(self, name: str, content: Any) -> str:
            return super()._save(name, content)

    assert type(adapt(ProjectStorage(location=str(tmp_path)))) is FileSystemStore
    assert type(adapt(InMemoryStorage())) is MemoryStore
    assert type(adapt(MinimalStorage())) is GenericStore
    # A subclass that changes how bytes are stored is only right through its own methods.
    assert type(adapt(EncryptingStorage(location=str(tmp_path)))) is GenericStore


def test_capabilities_follow_the_methods_a_storage_has() -> None:
    full = adapt(MinimalStorage()).capabilities
    assert full.listdir and full.delete and full.size and full.mtime
    assert not full.url and not full.native_dirs
    limited = adapt(LimitedStorage()).capabilities
    assert not limited.listdir and not limited.delete and limited.size


def test_a_store_without_listdir_and_delete_degrades() -> None:
    vfs = VFS(adapt(LimitedStorage()))
    vfs.write_file("a.txt", b"hello")
    assert vfs.stat("a.txt").size == 5
    with vfs.open_read("a.txt") as handle:
        assert handle.read() == b"hello"
    with pytest.raises(NotSupported) as listing:
        vfs.listdir("")
    assert listing.value.errno == errno.ENOSYS
    with pytest.raises(NotSupported):
        vfs.remove("a.txt")
    with pytest.raises(NotSupported):
        vfs.rename("a.txt", "b.txt")
    with pytest.raises(NotSupported):
        vfs.url("a.txt")
    assert vfs.exists("a.txt")


def test_a_store_without_size_or_mtime_reports_them_unknown() -> None:
    class NoMetadata(MinimalStorage):
        size = Storage.size  # type: ignore[assignment]
        get_modified_time = Storage.get_modified_time  # type: ignore[assignment]

    vfs = VFS(adapt(NoMetadata()))
    vfs.write_file("a.txt", b"abc")
    entry = vfs.stat("a.txt")
    assert (entry.size, entry.mtime, entry.etag) == (None, None, None)
    with vfs.open_read("a.txt") as handle:
        assert handle.read() == b"abc"


def test_url_comes_from_the_storage(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path), base_url="/media/")))
    vfs.write_file("a b.txt", b"x")
    assert vfs.url("a b.txt") == "/media/a%20b.txt"


def test_save_that_renames_is_undone_and_fails() -> None:
    """The exact-name guarantee: a store that saves under another name is an error."""

    class Renaming(MinimalStorage):
        def _save(self, name: str, content: Any) -> str:
            return super()._save(name + "_x7Gq2", content)

    storage = Renaming()
    vfs = VFS(adapt(storage))
    with pytest.raises(StoreError, match="another name"):
        vfs.write_file("a.txt", b"x")
    assert storage.objects == {}


def test_overwrite_on_a_renaming_store_keeps_the_name(tmp_path: Path) -> None:
    """FileSystemStorage and InMemoryStorage pick new names on collision; davstore does not."""
    storage = FileSystemStorage(location=str(tmp_path))
    vfs = VFS(GenericStore(storage))
    vfs.write_file("a.txt", b"1")
    vfs.write_file("a.txt", b"22")
    assert os.listdir(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"22"


def test_failed_or_aborted_write_on_disk_leaves_no_partial_file(
    tmp_path: Path, stage_kind: bool
) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))))
    vfs.write_file("a.txt", b"old")
    handle = vfs.open_write("a.txt")
    handle.write(b"half of the new")
    # The stage has no name at all, or is a hidden file beside the target.
    assert len(os.listdir(tmp_path)) == (1 if stage_kind else 2)
    assert [e.name for e in vfs.listdir("")] == ["a.txt"], "and it is never listed"
    handle.abort()
    assert os.listdir(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"old"


def test_disk_uploads_create_replace_and_leave_nothing_behind(
    tmp_path: Path, stage_kind: bool
) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))))
    handle = vfs.open_write("new.txt")
    handle.write(b"first")
    assert not (tmp_path / "new.txt").exists(), "no name before the commit"
    handle.close()
    assert (tmp_path / "new.txt").read_bytes() == b"first"
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    vfs.write_file("new.txt", b"second")
    assert (tmp_path / "new.txt").read_bytes() == b"second"
    vfs.mkdir("folder")
    with pytest.raises(errors.DavstoreError):
        vfs.store.start_upload("folder", spool_dir=None, spool_memory=0).commit()
    assert sorted(os.listdir(tmp_path)) == ["folder", "new.txt"]


def test_unnamed_files_off_where_the_file_system_refuses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesystem_store.ReplaceUpload, "unnamed", True)
    real_open = os.open

    def no_tmpfile(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise OSError(errno.EOPNOTSUPP, "not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))))
    vfs.write_file("a.txt", b"content")
    assert (tmp_path / "a.txt").read_bytes() == b"content"
    assert filesystem_store.ReplaceUpload.unnamed is False
    assert os.listdir(tmp_path) == ["a.txt"]


def _spy_kernel_copies(monkeypatch: pytest.MonkeyPatch, fail: int | None = None) -> list[int]:
    """Count the bytes ``os.copy_file_range`` copies; with ``fail``, it raises that errno."""
    real = os.copy_file_range
    copied: list[int] = []

    def spy(source: int, target: int, count: int, *args: Any) -> int:
        if fail is not None:
            raise OSError(fail, os.strerror(fail))
        got = real(source, target, count, *args)
        copied.append(got)
        return got

    monkeypatch.setattr(os, "copy_file_range", spy)
    return copied


def test_a_disk_copy_is_made_by_the_kernel_and_replaces_whole(
    tmp_path: Path, stage_kind: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = _spy_kernel_copies(monkeypatch)
    storage = FileSystemStorage(location=str(tmp_path), file_permissions_mode=0o640)
    store = adapt(storage)
    content = os.urandom(3 << 20)
    (tmp_path / "a.bin").write_bytes(content)
    (tmp_path / "b.bin").write_bytes(b"old content, longer than nothing")
    info = store.copy("a.bin", "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == content
    assert info.size == len(content)
    assert sum(copied) == len(content), "no byte went through Python"
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"], "no stage left"
    store.copy("a.bin", "c.bin")
    assert (tmp_path / "c.bin").read_bytes() == content


@pytest.mark.parametrize("refusal", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL])
def test_a_disk_copy_the_kernel_refuses_goes_through_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    _spy_kernel_copies(monkeypatch, fail=refusal)
    store = adapt(FileSystemStorage(location=str(tmp_path)))
    (tmp_path / "a.bin").write_bytes(b"a" * 100_000)
    store.copy("a.bin", "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == b"a" * 100_000


def test_a_disk_copy_that_fails_on_the_way_leaves_the_old_file(
    tmp_path: Path, stage_kind: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spy_kernel_copies(monkeypatch, fail=errno.EIO)
    store = adapt(FileSystemStorage(location=str(tmp_path)))
    (tmp_path / "a.bin").write_bytes(b"new" * 1000)
    (tmp_path / "b.bin").write_bytes(b"old")
    with pytest.raises(errors.DavstoreError):
        store.copy("a.bin", "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"], "no stage left"


def test_disk_writes_respect_file_permissions(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path), file_permissions_mode=0o640)
    vfs = VFS(adapt(storage))
    vfs.write_file("a.txt", b"x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_disk_paths_stay_inside_the_location(tmp_path: Path) -> None:
    inside = tmp_path / "share"
    inside.mkdir()
    (tmp_path / "secret").write_text("s")
    store = adapt(FileSystemStorage(location=str(inside)))
    with pytest.raises(InvalidPath):
        store.head("../secret")


def test_flat_store_folders_are_prefixes_and_markers() -> None:
    storage = MinimalStorage()
    vfs = VFS(adapt(storage))
    vfs.mkdir("empty")
    assert list(storage.objects) == ["empty/.davstore-folder"]
    storage.objects["implicit/deep/file.txt"] = (b"x", datetime.now(timezone.utc))
    vfs.invalidate()
    assert {e.name: e.is_dir for e in vfs.listdir("")} == {"empty": True, "implicit": True}
    assert vfs.stat("implicit/deep").is_dir


def test_memory_reads_are_snapshots() -> None:
    storage = InMemoryStorage()
    vfs = VFS(adapt(storage))
    vfs.write_file("f", b"0123456789")
    first, second = vfs.open_read("f"), vfs.open_read("f")
    assert first.pread(3, 5) == b"567"
    assert second.pread(3, 0) == b"012"
    assert first.pread(2, 8) == b"89"
    first.close()
    second.close()


def test_a_location_that_is_a_file_is_a_davstore_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.NotADirectory):
        adapt(FileSystemStorage(location=str(tmp_path / "file")))


def test_store_wrappers_pass_every_primitive_through() -> None:
    abstract_and_defaults = {
        name
        for name, value in vars(ObjectStore).items()
        if callable(value) and not name.startswith("_")
    }
    assert abstract_and_defaults <= set(vars(StoreWrapper)), "a primitive is not wrapped"
