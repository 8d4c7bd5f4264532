"""``VFS.put_file`` (a whole file in one step, the small-PUT path's write) and
``VFS.lookup`` (stat answering None), on the local disk, in memory and on a Storage that
implements only the minimal methods."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore.errors import (
    FileTooLarge,
    IsADirectory,
    NotADirectory,
    NotFound,
    ReadOnly,
    StoreUnavailable,
)
from davstore.store import adapt
from davstore.store.filesystem import FileSystemStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS
from davstore.vfs.events import Action, Change, acting_as
from tests.minimal_storages import MinimalStorage

STORAGES: dict[str, Callable[[str], Storage]] = {
    "filesystem": lambda root: FileSystemStorage(location=root),
    "memory": lambda root: InMemoryStorage(),
    "minimal": lambda root: MinimalStorage(),
}


@pytest.fixture(params=sorted(STORAGES))
def vfs(request: pytest.FixtureRequest, tmp_path: Path) -> VFS:
    made = VFS(adapt(STORAGES[request.param](str(tmp_path))), cache_ttl=1.0)
    made.mkdir("docs")
    return made


def read(vfs: VFS, path: str) -> bytes:
    with vfs.open_read(path) as handle:
        return handle.read()


def test_creates_then_replaces(vfs: VFS) -> None:
    changes: list[Change] = []
    vfs.subscribe(changes.append)
    entry, created = vfs.put_file("docs/a.txt", b"first")
    assert created and entry.size == 5 and not entry.is_dir
    assert read(vfs, "docs/a.txt") == b"first"
    with acting_as("alice", "webdav"):
        entry, created = vfs.put_file("/docs//a.txt", b"second version")
    assert not created and entry.size == 14
    assert read(vfs, "docs/a.txt") == b"second version"
    assert vfs.stat("docs/a.txt").size == 14
    assert [(c.action, c.path) for c in changes] == [
        (Action.CREATED, "docs/a.txt"),
        (Action.MODIFIED, "docs/a.txt"),
    ]
    assert changes[1].actor is not None and changes[1].actor.user == "alice"
    entry, created = vfs.put_file("docs/empty.txt", b"")
    assert created and entry.size == 0 and read(vfs, "docs/empty.txt") == b""
    assert sorted(e.name for e in vfs.listdir("docs")) == ["docs/a.txt", "docs/empty.txt"]


def test_refusals_change_nothing(vfs: VFS) -> None:
    vfs.put_file("docs/a.txt", b"kept")
    with pytest.raises(IsADirectory):
        vfs.put_file("docs", b"x")
    with pytest.raises(IsADirectory):
        vfs.put_file("", b"x")
    with pytest.raises(NotFound):
        vfs.put_file("nowhere/a.txt", b"x")
    with pytest.raises((NotADirectory, NotFound)):
        vfs.put_file("docs/a.txt/b.txt", b"x")
    vfs.max_file_size = 3
    with pytest.raises(FileTooLarge):
        vfs.put_file("docs/a.txt", b"four")
    vfs.max_file_size = None
    vfs.read_only = True
    with pytest.raises(ReadOnly):
        vfs.put_file("docs/a.txt", b"x")
    vfs.read_only = False
    assert read(vfs, "docs/a.txt") == b"kept"
    assert [e.name for e in vfs.listdir("docs")] == ["docs/a.txt"]


def test_a_failed_commit_leaves_the_old_content(vfs: VFS, monkeypatch: pytest.MonkeyPatch) -> None:
    vfs.put_file("docs/a.txt", b"old")
    start = vfs._start_upload

    def failing_upload(path: str) -> Any:
        upload = start(path)

        def commit() -> Any:
            raise StoreUnavailable(path, "down")

        monkeypatch.setattr(upload, "commit", commit)
        return upload

    monkeypatch.setattr(vfs, "_start_upload", failing_upload)
    with pytest.raises(StoreUnavailable):
        vfs.put_file("docs/a.txt", b"new")
    with pytest.raises(StoreUnavailable):
        vfs.put_file("docs/b.txt", b"new")
    monkeypatch.undo()
    assert read(vfs, "docs/a.txt") == b"old"
    assert [e.name for e in vfs.listdir("docs")] == ["docs/a.txt"]  # no stage file shows


def test_lookup(vfs: VFS) -> None:
    assert vfs.lookup("docs/a.txt") is None
    assert not vfs.exists("docs/a.txt")
    vfs.put_file("docs/a.txt", b"12345")
    found = vfs.lookup("docs/a.txt")
    assert found is not None and found.size == 5
    folder = vfs.lookup("docs")
    assert folder is not None and folder.is_dir
    handle = vfs.open_write("docs/b.txt")
    handle.write(b"pending")
    pending = vfs.lookup("docs/b.txt")  # not committed yet: the handle's size
    assert pending is not None and pending.size == 7
    handle.close()
    assert vfs.exists("docs/b.txt")


class _Counting(StoreWrapper):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.calls: list[str] = []

    def _call(self, kind: str, func: Callable[[], Any]) -> Any:
        self.calls.append(kind)
        return func()


def test_lookup_to_make_answers_the_name_and_its_folder(vfs: VFS) -> None:
    """``VFS.lookup_to_make``: a new name and its folder (one store call on a local disk,
    where neither was known), an existing file, a missing folder, a file as the folder."""
    vfs.write_file("docs/old.txt", b"old")
    vfs.write_file("plain.txt", b"p")
    counting = _Counting(vfs.store)
    vfs.store = counting
    vfs.cache.clear()
    entry, folder = vfs.lookup_to_make("docs/new.txt")
    assert entry is None and folder is not None and folder.is_dir and folder.name == "docs"
    if vfs.capabilities.folder_mtime and isinstance(counting.inner, FileSystemStore):
        assert counting.calls == ["find"]  # both from one resolution of the folder
    counting.calls.clear()
    assert vfs.lookup("docs/new.txt") is None and vfs.lookup("docs") == folder
    assert counting.calls == []  # both known now
    vfs.cache.clear()
    entry, folder = vfs.lookup_to_make("docs/old.txt")
    assert entry is not None and entry.size == 3 and folder is None
    assert vfs.lookup_to_make("missing/new.txt") == (None, None)
    entry, folder = vfs.lookup_to_make("plain.txt/new.txt")
    assert entry is None and folder is not None and not folder.is_dir
    vfs.put_file("docs/new.txt", b"made")  # what a PUT does next: no surprise
    assert vfs.lookup("docs/new.txt") is not None
