"""One test per rule of docs/SEMANTICS.md that the conformance suite does not already state."""

from __future__ import annotations

import errno
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore import errors
from davstore.errors import (
    DirectoryNotEmpty,
    FileTooLarge,
    InvalidPath,
    NameTooLong,
    NotFound,
    PartlyCopied,
    ReadOnly,
)
from davstore.store import adapt
from davstore.store.base import ObjectInfo, ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS
from davstore.vfs.events import Action, Change
from davstore.vfs.paths import normalize
from davstore.vfs.policy import Kind, Operation, Proceed, Refused
from davstore.vfs.trash import Trash
from tests.minimal_storages import MinimalStorage
from tests.vfs_trees import lay_out

# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("/", ""),
        ("/a/b/", "a/b"),
        ("a//b/./c", "a/b/c"),
        ("cafe\u0301", "caf\u00e9"),
    ],
)
def test_paths_are_canonical(raw: str, canonical: str) -> None:
    assert normalize(raw) == canonical


@pytest.mark.parametrize(
    "bad", ["..", "a/../b", "/../etc/passwd", "a\\b", "a\0b", "a\nb", "..\\..\\x"]
)
def test_paths_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(InvalidPath):
        normalize(bad)


def test_overlong_names_are_refused() -> None:
    with pytest.raises(NameTooLong) as caught:
        normalize("x" * 256)
    assert caught.value.errno == errno.ENAMETOOLONG
    with pytest.raises(NameTooLong):
        normalize("/".join(["y" * 200] * 21))  # 4220 bytes: past PATH_MAX


def test_each_store_holds_paths_up_to_its_own_limit(tmp_path: Path) -> None:
    """Local disk: PATH_MAX less its root's path; memory 4096; a Storage davstore knows
    nothing of keeps the 1024 bytes of object keys (S3, GCS and Azure: tests/*/)."""
    deep = "/".join(["d" * 200] * 10)  # 2009 bytes
    assert VFS(adapt(InMemoryStorage())).normalize(deep) == deep
    disk = VFS(adapt(FileSystemStorage(location=str(tmp_path))))
    limit = 4096 - 1 - len(os.fsencode(tmp_path)) - 1
    assert disk.capabilities.max_path_bytes == limit
    assert disk.normalize(deep) == deep
    longest = "/".join([*["e" * 200] * ((limit - 100) // 201), "f" * 100])
    longest += "g" * (limit - len(longest))
    assert len(longest) == limit and disk.normalize(longest) == longest
    with pytest.raises(NameTooLong):
        disk.normalize(longest + "h")
    generic = VFS(adapt(MinimalStorage()))
    with pytest.raises(NameTooLong):
        generic.normalize(deep)
    assert generic.normalize(deep[:1024]) == deep[:1024]


def test_reserved_names_are_refused(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))))
    with pytest.raises(InvalidPath):
        vfs.write_file(".davstore-folder", b"x")
    with pytest.raises(InvalidPath):
        vfs.stat("a/.davstore-upload-1")


def test_bad_paths_never_reach_the_storage() -> None:
    class Recording(MinimalStorage):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def exists(self, name: str) -> bool:
            self.names.append(name)
            return super().exists(name)

        def listdir(self, path: str) -> tuple[list[str], list[str]]:
            self.names.append(path)
            return super().listdir(path)

    storage = Recording()
    vfs = VFS(adapt(storage))
    for bad in ["../x", "a/../../x", "x\0", "\\etc"]:
        with pytest.raises(InvalidPath):
            vfs.stat(bad)
        with pytest.raises(InvalidPath):
            vfs.write_file(bad, b"x")
    assert storage.names == []
    assert storage.objects == {}


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_an_oserror_with_errno(name: str) -> None:
    cls = getattr(errors, name)
    if not isinstance(cls, type):
        return
    error = cls("some/path", "why")
    assert isinstance(error, OSError)
    assert error.errno == cls.code
    assert error.filename == "some/path"
    assert "why" in str(error)


def test_errors_have_the_matching_builtin_bases() -> None:
    assert isinstance(errors.NotFound("x"), FileNotFoundError)
    assert isinstance(errors.AlreadyExists("x"), FileExistsError)
    assert isinstance(errors.IsADirectory("x"), IsADirectoryError)
    assert isinstance(errors.NotADirectory("x"), NotADirectoryError)
    assert isinstance(errors.ReadOnly("x"), PermissionError)
    assert isinstance(errors.StoreTimeout("x"), TimeoutError)
    assert isinstance(errors.StoreUnavailable("x"), ConnectionError)


# -- store adapters ------------------------------------------------------------------------


class FailingSave(MinimalStorage):
    """Refuses to save content that starts with ``refuse`` (a quota, a validation...)."""

    refuse: bytes | None = None

    def _save(self, name: str, content: Any) -> str:
        content.seek(0)
        if self.refuse is not None and content.read().startswith(self.refuse):
            raise OSError(errno.EDQUOT, "quota exceeded")
        return super()._save(name, content)


@pytest.mark.parametrize("in_place", [False, True])
def test_failed_commit_leaves_the_old_content(in_place: bool) -> None:
    storage = FailingSave()
    if in_place:  # a store that overwrites in place, like S3 with file_overwrite
        storage.get_available_name = lambda name, max_length=None: name  # type: ignore[method-assign]
    vfs = VFS(adapt(storage))
    vfs.write_file("a.txt", b"old")
    storage.refuse = b"new"
    with pytest.raises(errors.InsufficientStorage):
        vfs.write_file("a.txt", b"new content")
    with vfs.open_read("a.txt") as handle:
        assert handle.read() == b"old"
    assert list(storage.objects) == ["a.txt"]


# -- writes --------------------------------------------------------------------------------


def test_size_limit(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))), max_file_size=10)
    with pytest.raises(FileTooLarge) as caught:
        vfs.write_file("big", b"x" * 11)
    assert caught.value.errno == errno.EFBIG
    assert not vfs.exists("big")


def test_stat_of_a_file_open_for_writing_includes_uncommitted_bytes(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    handle = vfs.open_write("new.txt")
    handle.write(b"12345")
    assert vfs.stat("new.txt").size == 5
    assert [e.name for e in vfs.listdir("")] == ["new.txt"]
    handle.close()
    assert vfs.stat("new.txt").size == 5


def test_commit_then_reopen_sees_the_data(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    handle = vfs.open_write("f")
    handle.write(b"abc")
    handle.commit()
    with vfs.open_read("f") as reader:
        assert reader.read() == b"abc"
    handle.write(b"def")
    handle.close()
    with vfs.open_read("f") as reader:
        assert reader.read() == b"abcdef"


def test_append_and_read_back_through_the_write_handle(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    vfs.write_file("log", b"one\n")
    with vfs.open_write("log", truncate=False) as handle:
        handle.seek(0, os.SEEK_END)
        handle.write(b"two\n")
        assert handle.pread(100, 0) == b"one\ntwo\n"
    with vfs.open_read("log") as reader:
        assert reader.read() == b"one\ntwo\n"


def test_remove_of_an_open_file_detaches_the_handle(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    handle = vfs.open_write("tmp")
    handle.write(b"x")
    vfs.remove("tmp")
    handle.close()
    assert not vfs.exists("tmp")
    assert vfs.listdir("") == []


def test_rename_of_an_open_file_commits_and_follows(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    handle = vfs.open_write("draft")
    handle.write(b"v1")
    vfs.rename("draft", "final")
    handle.write(b"+v2")
    handle.close()
    with vfs.open_read("final") as reader:
        assert reader.read() == b"v1+v2"
    assert not vfs.exists("draft")


def test_exclusive_create(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    vfs.write_file("a", b"")
    with pytest.raises(FileExistsError):
        vfs.open_write("a", exclusive=True)
    with pytest.raises(FileNotFoundError):
        vfs.open_write("b", create=False)


# -- folders -------------------------------------------------------------------------------


def test_rmdir_refuses_a_non_empty_folder(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    vfs.mkdir("d")
    vfs.write_file("d/f", b"")
    with pytest.raises(DirectoryNotEmpty) as caught:
        vfs.rmdir("d")
    assert caught.value.errno == errno.ENOTEMPTY
    vfs.remove("d/f")
    vfs.rmdir("d")
    assert not vfs.exists("d")


def test_the_root_cannot_be_removed_or_moved(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    for call in (lambda: vfs.rmdir(""), lambda: vfs.remove_tree("/"), lambda: vfs.rename("", "x")):
        with pytest.raises(PermissionError):
            call()


def test_a_folder_cannot_move_into_itself(storage: Storage) -> None:
    vfs = VFS(adapt(storage))
    vfs.mkdir("d")
    with pytest.raises(InvalidPath):
        vfs.rename("d", "d/e")
    with pytest.raises(InvalidPath):
        vfs.copy("d", "d/e")


def test_a_folder_hides_a_same_named_file_on_flat_stores() -> None:
    storage = MinimalStorage()
    now = datetime.now(timezone.utc)
    storage.objects["x"] = (b"file", now)
    storage.objects["x/y"] = (b"child", now)
    vfs = VFS(adapt(storage))
    assert [(e.name, e.is_dir) for e in vfs.listdir("")] == [("x", True)]
    assert vfs.stat("x").is_dir


def test_tree_operations_stream_past_the_bound_their_events_name_files_up_to_it(
    storage: Storage,
) -> None:
    vfs = VFS(adapt(storage), max_tree_entries=6)
    changes: list[Change] = []
    vfs.subscribe(changes.append)
    vfs.mkdir("d")
    vfs.mkdir("small")
    vfs.mkdir("small/in")
    vfs.write_file("small/in/x", b"x")
    for i in range(8):
        vfs.write_file(f"d/{i}", str(i).encode())
    vfs.copy("d", "e")  # 8 entries, past the bound: streamed, not refused
    assert [read(vfs, f"e/{i}") for i in range(8)] == [str(i).encode() for i in range(8)]
    vfs.rename("e", "f")
    assert not vfs.exists("e") and len(vfs.listdir("f")) == 8
    vfs.copy("small", "small2")
    vfs.rename("small2", "small3")
    told = [(c.action, c.path, c.files) for c in changes if c.is_dir and c.target]
    assert told == [
        (Action.COPIED, "d", None),  # past the bound: not named
        (Action.MOVED, "e", None),
        (Action.COPIED, "small", ("small/in/x",)),
        (Action.MOVED, "small2", ("small2/in/x",)),
    ]
    assert read(vfs, "small3/in/x") == b"x"


class _RowsOfAMove:
    """A MOVE policy as the site guard is: refuses first and whole, or rewrites its rows
    around ``proceed`` (rolled back when the store move fails; when its own commit fails
    it undoes the move)."""

    kinds = frozenset({Kind.MOVE})

    def __init__(self) -> None:
        self.refuse = self.fail_commit = False
        self.seen: list[str] = []

    def around(self, op: Operation, proceed: Proceed) -> None:
        if self.refuse:
            raise Refused(op.path, "used by 1 row")
        try:
            proceed()
        except PartlyCopied:
            self.seen.append("rolled back")
            raise
        if self.fail_commit:
            assert op.undo is not None
            op.undo()
            self.seen.append("undone")
            raise errors.StoreError(op.path, "the commit failed")
        self.seen.append("committed")


class _CopyFault(StoreWrapper):
    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.copies = 0
        self.refuse: str | None = None

    def copy(self, source: str, target: str) -> ObjectInfo:
        self.copies += 1
        if source == self.refuse:
            raise errors.StoreError(source, "injected fault")
        return super().copy(source, target)


def test_a_streamed_folder_move_keeps_the_move_policies_contract() -> None:
    store = _CopyFault(adapt(InMemoryStorage()))  # no rename: a copy then a delete
    vfs = VFS(store, max_tree_entries=6)
    rows = _RowsOfAMove()
    vfs.add_policy(rows)
    files = {f"{d}/{n}": f"{d}{n}".encode() for d in "abc" for n in range(4)}
    vfs.mkdir("src")
    for name, data in files.items():
        if not vfs.exists(f"src/{name.split('/')[0]}"):
            vfs.mkdir(f"src/{name.split('/')[0]}")
        vfs.write_file(f"src/{name}", data)

    def tree(folder: str) -> dict[str, bytes]:
        return {
            e.name[len(folder) + 1 :]: read(vfs, e.name) for e in vfs.walk(folder) if not e.is_dir
        }

    rows.refuse = True
    with pytest.raises(Refused):
        vfs.rename("src", "dst")
    assert store.copies == 0 and not vfs.exists("dst")  # refused first, and whole
    rows.refuse = False
    store.refuse = "src/b/2"
    with pytest.raises(PartlyCopied) as failed:
        vfs.rename("src", "dst")
    assert [name for name, _ in failed.value.failures] == ["src/b/2"]
    assert rows.seen == ["rolled back"] and tree("src") == files  # the source whole
    assert not vfs.exists("dst")  # and nothing of it at the target
    store.refuse = None
    rows.fail_commit = True
    with pytest.raises(errors.StoreError, match="the commit failed"):
        vfs.rename("src", "dst")
    assert rows.seen[-1] == "undone" and tree("src") == files and not vfs.exists("dst")
    rows.fail_commit = False
    vfs.rename("src", "dst")
    assert rows.seen[-1] == "committed" and tree("dst") == files and not vfs.exists("src")


class _RemoveFault(_CopyFault):
    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.refuse_delete: str | None = None

    def delete_many(self, names: list[str]) -> None:  # type: ignore[override]
        if self.refuse_delete in names:
            raise errors.StoreError(names[0], "injected fault")
        super().delete_many(names)

    def delete(self, name: str) -> None:
        if name == self.refuse_delete:
            raise errors.StoreError(name, "injected fault")
        super().delete(name)


def _moving_vfs() -> tuple[VFS, _RemoveFault, list[Change], dict[str, bytes]]:
    """A store without rename (a folder's move is a copy then a delete) holding ``src``."""
    store = _RemoveFault(adapt(InMemoryStorage()))
    vfs = VFS(store, cache_ttl=60)
    files = {"a/0": b"a0", "a/1": b"a1", "b/0": b"b0", "c": b"c"}
    for folder in ("src", "src/a", "src/b", "src/empty"):
        vfs.mkdir(folder)
    for name, data in files.items():
        vfs.write_file(f"src/{name}", data)
    changes: list[Change] = []
    vfs.subscribe(changes.append)
    return vfs, store, changes, files


def _tree(vfs: VFS, folder: str) -> dict[str, bytes]:
    return {e.name[len(folder) + 1 :]: read(vfs, e.name) for e in vfs.walk(folder) if not e.is_dir}


def test_a_streamed_folder_move_that_fails_leaves_nothing_at_its_target() -> None:
    """What the failed move's copy made is removed, and its two events cancel out (the
    journal's readers and sync clients that saw the copy are told it went)."""
    vfs, store, changes, files = _moving_vfs()
    assert not vfs.capabilities.rename
    vfs.lookup("dst")  # cached as absent: the removal must not leave a stale answer
    store.refuse = "src/b/0"
    with pytest.raises(PartlyCopied) as failed:
        vfs.rename("src", "dst")
    assert failed.value.left is None and "nothing was moved" in str(failed.value)
    assert [name for name, _ in failed.value.failures] == ["src/b/0"]
    assert not vfs.exists("dst") and list(vfs.store.list("")) == [vfs.stat("src")]
    assert _tree(vfs, "src") == files and vfs.exists("src/empty")
    copied = ("src/a/0", "src/a/1", "src/c")
    told = [(c.action, c.path, c.target, tuple(sorted(c.files or ()))) for c in changes]
    assert told == [
        (Action.COPIED, "src", "dst", copied),
        (Action.FOLDER_DELETED, "dst", None, tuple(f.replace("src", "dst") for f in copied)),
    ]


def test_a_failed_move_s_copy_is_removed_without_the_trash() -> None:
    """The partial copy is no person's delete: all of it is still at the source, so the
    trash keeps nothing of it (and a delete of a file outside it is trashed as ever)."""
    vfs, store, _, files = _moving_vfs()
    trash = Trash(vfs).install()
    store.refuse = "src/b/0"
    with pytest.raises(PartlyCopied):
        vfs.rename("src", "dst")
    assert trash.entries() == [] and not vfs.exists("dst")
    assert _tree(vfs, "src") == files
    vfs.remove("src/c")
    assert [e.path for e in trash.entries()] == ["src/c"]
    trash.close()


def test_a_failed_move_onto_an_empty_folder_makes_that_folder_again() -> None:
    vfs, store, changes, files = _moving_vfs()
    vfs.mkdir("dst")
    store.refuse = "src/c"
    with pytest.raises(PartlyCopied):
        vfs.rename("src", "dst")
    assert vfs.stat("dst").is_dir and vfs.listdir("dst") == []
    assert _tree(vfs, "src") == files
    assert [(c.action, c.path) for c in changes] == [
        (Action.FOLDER_CREATED, "dst"),
        (Action.FOLDER_DELETED, "dst"),  # replaced by the move...
        (Action.COPIED, "src"),
        (Action.FOLDER_DELETED, "dst"),  # ...which was undone
        (Action.FOLDER_CREATED, "dst"),
    ]


def test_a_failed_move_whose_copy_cannot_all_be_removed_says_both() -> None:
    vfs, store, changes, files = _moving_vfs()
    store.refuse = "src/b/0"
    store.refuse_delete = "dst/a/1"
    with pytest.raises(PartlyCopied) as failed:
        vfs.rename("src", "dst")
    error = failed.value
    assert [name for name, _ in error.failures] == ["src/b/0"]
    assert isinstance(error.left, errors.PartlyRemoved)
    assert [name for name, _ in error.left.failures] == ["dst/a/1"]
    assert "could not be copied" in str(error) and "'dst'" in str(error)
    assert "could not be removed" in str(error)
    assert error.errno == errno.EIO
    assert _tree(vfs, "src") == files  # the source whole
    assert _tree(vfs, "dst") == {"a/1": b"a1"}  # what could not go
    assert [(c.action, c.path) for c in changes] == [(Action.COPIED, "src")]


def read(vfs: VFS, path: str) -> bytes:
    with vfs.open_read(path) as handle:
        return handle.read()


# -- read-only -----------------------------------------------------------------------------


def test_read_only_refuses_every_change(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path))
    VFS(adapt(storage)).write_file("a", b"a")
    (tmp_path / "d").mkdir()
    vfs = VFS(adapt(storage), read_only=True)
    changes = [
        lambda: vfs.write_file("b", b""),
        lambda: vfs.open_write("a", truncate=False),
        lambda: vfs.mkdir("e"),
        lambda: vfs.rmdir("d"),
        lambda: vfs.remove("a"),
        lambda: vfs.remove_tree("d"),
        lambda: vfs.rename("a", "c"),
        lambda: vfs.copy("a", "c"),
    ]
    for change in changes:
        with pytest.raises(ReadOnly) as caught:
            change()
        assert caught.value.errno == errno.EROFS
    assert sorted(os.listdir(tmp_path)) == ["a", "d"]
    with vfs.open_read("a") as handle:
        assert handle.read() == b"a"


# -- reads ---------------------------------------------------------------------------------


def test_sequential_reads_use_one_stream_and_jumps_seek(tmp_path: Path) -> None:
    store = adapt(FileSystemStorage(location=str(tmp_path)))
    vfs = VFS(store)
    vfs.write_file("f", bytes(range(256)) * 100)
    opened: list[int] = []
    original = store.open_read

    def counting(name: str, offset: int = 0) -> Any:
        opened.append(offset)
        return original(name, offset)

    store.open_read = counting  # type: ignore[method-assign]
    with vfs.open_read("f") as handle:
        assert handle.pread(10, 0) == bytes(range(10))
        assert handle.pread(10, 10) == bytes(range(10, 20))
        assert handle.pread(3, 1000) == bytes([1000 % 256, 1001 % 256, 1002 % 256])
        assert handle.pread(10, 25_600) == b""
    assert opened == [0]


# -- metadata cache ------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_changes_behind_the_vfs_show_within_the_ttl(storage: Storage) -> None:
    """A file Django saves through the same Storage appears once the TTL has passed."""
    clock = FakeClock()
    vfs = VFS(adapt(storage), cache_ttl=1.0, clock=clock)
    assert vfs.listdir("") == []
    assert not vfs.exists("django.txt")  # a negative entry is cached too
    storage.save("django.txt", ContentFile(b"from the site"))
    assert vfs.listdir("") == [] and not vfs.exists("django.txt"), "still cached"
    clock.now += 1.01
    assert [e.name for e in vfs.listdir("")] == ["django.txt"]
    assert vfs.stat("django.txt").size == 13
    storage.delete("django.txt")
    clock.now += 1.01
    assert not vfs.exists("django.txt")


def test_own_changes_invalidate_at_once(storage: Storage) -> None:
    clock = FakeClock()
    vfs = VFS(adapt(storage), cache_ttl=3600, clock=clock)
    assert not vfs.exists("d")
    vfs.mkdir("d")
    vfs.write_file("d/f", b"1")
    assert [e.name for e in vfs.listdir("d")] == ["d/f"]
    vfs.write_file("d/f", b"22")
    assert vfs.stat("d/f").size == 2
    vfs.rename("d", "e")
    assert not vfs.exists("d/f") and vfs.stat("e/f").size == 2
    vfs.remove_tree("e")
    assert vfs.listdir("") == []


def test_a_listing_answers_stats_without_more_store_calls(tmp_path: Path) -> None:
    store = adapt(FileSystemStorage(location=str(tmp_path)))
    vfs = VFS(store)
    for i in range(20):
        vfs.write_file(f"f{i}", b"x")
    vfs.invalidate()
    vfs.listdir("")
    calls: list[str] = []
    original = store.head
    store.head = lambda name: calls.append(name) or original(name)  # type: ignore[method-assign]
    for i in range(20):
        vfs.stat(f"f{i}")
    assert not vfs.exists("missing")
    assert calls == []


def test_cache_ttl_zero_turns_the_cache_off(storage: Storage) -> None:
    vfs = VFS(adapt(storage), cache_ttl=0)
    assert not vfs.exists("x")
    storage.save("x", ContentFile(b"1"))
    assert vfs.exists("x")


# -- change events -------------------------------------------------------------------------


def test_every_change_sends_one_event_with_its_actor(storage: Storage) -> None:
    from davstore.vfs import Action, Actor, Change, acting_as

    vfs = VFS(adapt(storage))
    seen: list[Change] = []
    unsubscribe = vfs.subscribe(seen.append)
    with acting_as("alice", "webdav"):
        vfs.mkdir("d")
        vfs.write_file("d/a.txt", b"1")
        vfs.write_file("d/a.txt", b"2")
        vfs.copy("d/a.txt", "d/b.txt")
        vfs.rename("d/b.txt", "d/c.txt")
        vfs.remove("d/c.txt")
        vfs.copy("d", "e")
        vfs.remove_tree("e")
        vfs.remove("d/a.txt")
        vfs.rmdir("d")
    with pytest.raises(NotFound):
        vfs.remove("missing")  # failures send nothing
    unsubscribe()
    vfs.mkdir("quiet")
    alice = Actor("alice", "webdav")
    assert seen == [
        Change(Action.FOLDER_CREATED, "d", True, None, alice),
        Change(Action.CREATED, "d/a.txt", False, None, alice),
        Change(Action.MODIFIED, "d/a.txt", False, None, alice),
        Change(Action.COPIED, "d/a.txt", False, "d/b.txt", alice),
        Change(Action.MOVED, "d/b.txt", False, "d/c.txt", alice),
        Change(Action.DELETED, "d/c.txt", False, None, alice),
        Change(Action.COPIED, "d", True, "e", alice, ("d/a.txt",)),
        Change(Action.FOLDER_DELETED, "e", True, None, alice, ("e/a.txt",)),
        Change(Action.DELETED, "d/a.txt", False, None, alice),
        Change(Action.FOLDER_DELETED, "d", True, None, alice, ()),
    ]


def test_folder_deletes_and_moves_name_the_files_they_took(storage: Storage) -> None:
    """A folder's delete and move carry its files at every depth, as they were before the
    change (native moves too: local disk renames the folder whole)."""
    from davstore.vfs import Action

    vfs = VFS(adapt(storage))
    vfs.mkdir("d")
    vfs.mkdir("d/sub")
    vfs.mkdir("d/empty")
    for name in ("d/a.txt", "d/sub/b.txt", "d/sub/c.txt"):
        vfs.write_file(name, b"x")
    seen: list[Change] = []
    vfs.subscribe(seen.append)
    vfs.rename("d", "moved")
    vfs.remove_tree("moved")
    assert [(c.action, c.path, c.target, sorted(c.files or ["not told"])) for c in seen] == [
        (Action.MOVED, "d", "moved", ["d/a.txt", "d/sub/b.txt", "d/sub/c.txt"]),
        (
            Action.FOLDER_DELETED,
            "moved",
            None,
            ["moved/a.txt", "moved/sub/b.txt", "moved/sub/c.txt"],
        ),
    ]


def test_a_folder_delete_that_leaves_members_tells_what_went() -> None:
    """A folder's delete that cannot remove a member tells each file that went from a
    folder that stays, and each folder that went whole, with its files; the folder and
    what is left of it are not told gone."""
    store = _RemoveFault(adapt(InMemoryStorage()))
    vfs = VFS(store, cache_ttl=60)
    lay_out(
        vfs,
        {
            "d": None,
            "d/a.txt": b"a",
            "d/keep": None,
            "d/keep/b.txt": b"b",
            "d/keep/c.txt": b"c",
            "d/gone": None,
            "d/gone/e.txt": b"e",
            "d/gone/deep": None,
            "d/gone/deep/f.txt": b"f",
        },
    )
    changes: list[Change] = []
    vfs.subscribe(changes.append)
    store.refuse_delete = "d/keep/c.txt"
    with pytest.raises(errors.PartlyRemoved) as left:
        vfs.remove_tree("d")
    assert [name for name, _ in left.value.failures] == ["d/keep/c.txt"]
    assert sorted(e.name for e in vfs.walk("d")) == ["d/keep", "d/keep/c.txt"]
    told = sorted((c.path, c.action, c.is_dir, sorted(c.files or ())) for c in changes)
    assert told == [
        ("d/a.txt", Action.DELETED, False, []),
        ("d/gone", Action.FOLDER_DELETED, True, ["d/gone/deep/f.txt", "d/gone/e.txt"]),
        ("d/keep/b.txt", Action.DELETED, False, []),
    ]
    store.refuse_delete = None
    changes.clear()
    vfs.remove_tree("d")
    assert [(c.action, c.path, c.files) for c in changes] == [
        (Action.FOLDER_DELETED, "d", ("d/keep/c.txt",))
    ]


def test_a_failing_listener_never_fails_the_change(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))))

    def broken(change: object) -> None:
        raise RuntimeError("listener bug")

    vfs.subscribe(broken)
    vfs.write_file("a", b"x")
    assert (tmp_path / "a").read_bytes() == b"x"


@pytest.mark.parametrize("threaded", [False, True])
def test_exact_open_describes_the_version_being_read(
    storage: Storage, store_kind: str, threaded: bool
) -> None:
    """A GET promises a length before it sends the bytes: the cached size may be a TTL old."""
    from davstore.store.threaded import ThreadedStore

    store = adapt(storage)
    vfs = VFS(ThreadedStore(store, workers=2) if threaded else store, cache_ttl=60)
    vfs.write_file("f.txt", b"short")
    assert vfs.stat("f.txt").size == 5
    storage.delete("f.txt")
    storage.save("f.txt", ContentFile(b"a much longer version"))  # behind the VFS's back
    assert vfs.stat("f.txt").size == 5, "still cached"
    with vfs.open_read("f.txt", exact=True) as handle:
        assert handle.size == 21
        assert handle.read() == b"a much longer version"
    assert vfs.stat("f.txt").size == 21, "the cache learnt the new size"
    if threaded:
        vfs.store.close()  # type: ignore[attr-defined]


def test_a_file_open_for_reading_is_statted_from_its_handle(storage: Storage) -> None:
    """A mount stats a file it reads again and again: past the TTL the open handle answers
    (the version it reads), until a change through the VFS or an invalidation; files
    nobody has open still show a change made behind the VFS within the TTL."""

    class CountingHeads(StoreWrapper):
        heads = 0

        def _call(self, kind: str, func: Any) -> Any:
            if kind in ("head", "find"):
                self.heads += 1
            return func()

    now = [0.0]
    store = CountingHeads(adapt(storage))
    vfs = VFS(store, cache_ttl=1.0, clock=lambda: now[0])
    vfs.write_file("f.txt", b"hello")
    vfs.write_file("g.txt", b"other")
    with vfs.open_read("f.txt") as handle:
        assert handle.read(2) == b"he"
        heads = store.heads
        for _ in range(5):
            now[0] += 2  # past the TTL each time
            assert vfs.stat("f.txt").size == 5
        assert store.heads == heads, "answered by the open handle"
        vfs.write_file("f.txt", b"changed!")  # through the VFS: the handle is stale
        now[0] += 2
        assert vfs.stat("f.txt").size == 8
        assert store.heads == heads + 1
    storage.delete("g.txt")
    storage.save("g.txt", ContentFile(b"changed behind the VFS"))
    now[0] += 2
    assert vfs.stat("g.txt").size == 22, "not open: seen within the TTL"
    with vfs.open_read("g.txt") as handle:
        vfs.invalidate("g.txt")
        storage.delete("g.txt")
        storage.save("g.txt", ContentFile(b"again"))
        assert vfs.stat("g.txt").size == 5, "invalidated: the store answers"
    assert not vfs._readers, "closed handles are forgotten"


class CountingCalls(StoreWrapper):
    """A store that notes the kind of every call made to it."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.calls: list[str] = []

    def _call(self, kind: str, func: Any) -> Any:
        self.calls.append(kind)
        return func()


def test_an_exact_open_of_an_unknown_path_is_one_store_call(storage: Storage) -> None:
    """A GET of a file the cache knows nothing of opens it at once: the open stream says
    what it is (on stores with real folders), where a stat and an open took two calls.
    What it learns is cached like a stat: the size, an absence, a folder."""
    store = CountingCalls(adapt(storage))
    native = store.capabilities.native_dirs
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("f.txt", b"hello")
    vfs.mkdir("folder")
    vfs.cache.clear()
    store.calls.clear()
    with vfs.open_read("f.txt", exact=True) as handle:
        assert handle.size == 5 and handle.read() == b"hello"
    if native:
        assert store.calls[0] == "open_read"
    if isinstance(storage, FileSystemStorage):  # fstat describes the open file
        assert store.calls == ["open_read", "stream_info"]
    store.calls.clear()
    assert vfs.stat("f.txt").size == 5
    assert store.calls == [], "the open's answer was cached"
    with pytest.raises(errors.NotFound):
        vfs.open_read("missing.txt", exact=True)
    with pytest.raises(errors.NotFound):
        vfs.open_read("f.txt/below", exact=True)
    store.calls.clear()
    assert not vfs.exists("missing.txt")
    assert store.calls == [], "the absence was cached"
    with pytest.raises(errors.IsADirectory):
        vfs.open_read("folder", exact=True)
    assert vfs.stat("folder").is_dir
    with vfs.open_write("f.txt") as writer:  # pending changes: the committed content
        writer.write(b"new and longer")
        with vfs.open_read("f.txt", exact=True) as handle:
            assert handle.read() == b"hello"
    assert not vfs._readers


def test_a_small_read_is_one_store_call(storage: Storage) -> None:
    """``read_small`` is ``open_read(exact=True)`` read to its end, in one store call where
    the store offers it (a local disk); elsewhere it answers None and the caller opens the
    file. Its answer is cached like a stat; absences and folders raise as open_read does."""
    store = CountingCalls(adapt(storage))
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("f.txt", b"hello")
    vfs.mkdir("folder")
    one_call = isinstance(storage, FileSystemStorage)
    for cached in (False, True):
        if not cached:
            vfs.cache.clear()
        store.calls.clear()
        got = vfs.read_small("f.txt", 5)
        if not one_call:
            assert got is None
            continue
        assert got is not None
        entry, data = got
        assert data == b"hello" and entry == vfs.stat("f.txt")
        assert store.calls == ["read_small"], "the stat came with the bytes, then from the cache"
    vfs.stat("f.txt")
    store.calls.clear()
    assert vfs.read_small("f.txt", 4) is None, "bigger than the limit: the cache knows"
    assert store.calls == []

    def small_or_open(name: str) -> tuple[Any, bytes]:
        got = vfs.read_small(name, 100)
        if got is not None:
            return got
        with vfs.open_read(name, exact=True) as handle:  # where read_small leaves it
            return handle.entry, handle.read()

    vfs.cache.clear()
    for name, error in (
        ("missing.txt", errors.NotFound),
        ("f.txt/below", errors.NotFound),
        ("folder", errors.IsADirectory),
    ):
        with pytest.raises(error):
            small_or_open(name)
        store.calls.clear()
        assert vfs.exists(name) == (name == "folder")
        if error is errors.NotFound:
            assert store.calls == [], "the absence was cached"
    if store.capabilities.native_dirs:
        with pytest.raises(errors.IsADirectory):
            vfs.read_small("folder", 10)  # known a folder: refused at once
    with vfs.open_write("f.txt") as writer:  # pending changes: read through a handle
        writer.write(b"new and longer")
        assert vfs.read_small("f.txt", 100) is None
        assert small_or_open("f.txt")[1] == b"hello", "the committed content"
    assert small_or_open("f.txt") == (vfs.stat("f.txt"), b"new and longer")
    assert not vfs._readers


def test_find_is_head_that_answers_none_for_an_absent_name(storage: Storage) -> None:
    """``ObjectStore.find``: the entry ``head`` gives, or None where ``head`` raises NotFound
    or NotADirectory (the VFS's lookups ask it; a new file's name is absent)."""
    store = adapt(storage)
    vfs = VFS(store)
    vfs.write_file("f.txt", b"hello")
    vfs.mkdir("folder")
    assert store.find("f.txt") == store.head("f.txt")
    assert store.find("folder") == store.head("folder")
    for name in ("missing.txt", "folder/missing.txt", "f.txt/below"):
        with pytest.raises((errors.NotFound, errors.NotADirectory)):
            store.head(name)
        assert store.find(name) is None
    counting = CountingCalls(store)
    vfs = VFS(counting)
    assert vfs.lookup("missing.txt") is None
    assert counting.calls == ["find"]


def test_a_change_in_a_folder_moves_its_time(storage: Storage) -> None:
    """Create, mkdir, unlink, rmdir, rename and copy in a folder move the folder's time at
    once, whatever the cache holds (local disk and memory: the store's own time; flat
    stores: the time of the last change made through the VFS)."""
    vfs = VFS(adapt(storage), cache_ttl=60)
    vfs.mkdir("d")
    vfs.mkdir("other")

    def when(path: str) -> int:
        entry = vfs.stat(path)
        if path:
            listed = next(e for e in vfs.listdir(parent_of(path)) if e.name == path)
            assert (listed.mtime_ns, listed.mtime) == (entry.mtime_ns, entry.mtime)
        assert entry.mtime_ns is not None or entry.mtime is not None
        return entry.mtime_ns or int((entry.mtime or 0) * 1e9)

    changes = [
        lambda: vfs.write_file("d/f", b"x"),
        lambda: vfs.mkdir("d/sub"),
        lambda: vfs.rename("d/f", "d/g"),
        lambda: vfs.copy("d/g", "d/h"),
        lambda: vfs.remove("d/g"),
        lambda: vfs.rmdir("d/sub"),
        lambda: vfs.rename("d/h", "other/h"),
    ]
    for change in changes:
        before = when("d")
        time.sleep(0.02)  # past the file system's timestamp granularity
        change()
        assert when("d") > before
    before = when("other")
    time.sleep(0.02)
    vfs.rename("other/h", "d/h")
    assert when("other") > before
    moved = when("d")
    vfs.rename("d", "moved")
    assert when("moved") >= moved  # a moved folder's time never goes back
    root_before = when("")
    time.sleep(0.02)
    vfs.write_file("top", b"")
    assert when("") > root_before


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def test_kept_folder_times_are_bounded_and_never_go_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from davstore.vfs import core

    monkeypatch.setattr(core, "_FOLDER_TIMES_KEPT", 4)
    vfs = VFS(adapt(MinimalStorage()), cache_ttl=0)
    seen = {}
    for number in range(10):
        vfs.mkdir(f"d{number}")
        seen.update({e.name: e.mtime_ns for e in vfs.listdir("")})
    assert len(vfs._folder_times) <= 4
    for entry in vfs.listdir(""):
        assert entry.mtime_ns is not None and entry.mtime_ns >= (seen[entry.name] or 0)


# -- revalidation (a long cache) --------------------------------------------------------------


def test_a_revalidation_round_finds_changes_behind_everyones_back(tmp_path: Path) -> None:
    """Listings read since the last round are listed again (one store listing each) and
    what changed in them is forgotten, the watchers told; the rest is forgotten unchecked,
    at no cost; an unchanged listing stays, with its children."""
    storage = FileSystemStorage(location=str(tmp_path))
    store = adapt(storage)
    vfs = VFS(store, cache_ttl=3600, revalidate=60)
    vfs.cache.tracking = True
    for folder in ("busy", "idle", "quiet"):
        vfs.mkdir(folder)
    for name in ("busy/a.txt", "busy/b.txt", "idle/c.txt", "quiet/d.txt"):
        vfs.write_file(name, b"1")
    told: list[tuple[str, bool]] = []
    vfs.watch(lambda path, tree: told.append((path, tree)))
    assert len(vfs.listdir("busy")) == 2
    assert len(vfs.listdir("quiet")) == 1
    assert vfs.lookup("idle/c.txt") is not None
    assert vfs.lookup("idle/missing") is None
    vfs.cache.take_used()  # a round: what was read before it is not counted
    lists: list[str] = []
    original = store.list
    store.list = lambda name: lists.append(name) or original(name)  # type: ignore[method-assign]

    storage.save("busy/new.txt", ContentFile(b"behind"))  # another program writes
    (tmp_path / "busy" / "a.txt").write_bytes(b"longer")
    (tmp_path / "busy" / "b.txt").unlink()
    assert len(vfs.listdir("busy")) == 2  # cached: only a round can tell
    assert len(vfs.listdir("quiet")) == 1
    assert vfs.revalidate() == ["busy/a.txt", "busy/b.txt", "busy/new.txt"]
    assert sorted(lists) == ["busy", "quiet"]
    assert {"busy/a.txt", "busy/b.txt", "busy/new.txt"} <= {path for path, _ in told}
    assert ("idle/c.txt", False) in told and ("idle/missing", False) in told
    assert not any(path.startswith("quiet") for path, _ in told)
    assert sorted(e.name for e in vfs.listdir("busy")) == ["busy/a.txt", "busy/new.txt"]
    assert vfs.stat("busy/a.txt").size == 6

    lists.clear()
    assert vfs.revalidate() == []  # "quiet" was not read since: dropped, not listed
    assert lists == ["busy"]
    assert vfs.cache.peek_listing("quiet") is None
    assert vfs.revalidate() == []
    assert lists == ["busy"]  # an idle share costs nothing


def test_revalidation_runs_every_interval_once_started(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path))
    vfs = VFS(adapt(storage), cache_ttl=3600, revalidate=0.05)
    vfs.start_revalidating()
    try:
        assert vfs.lookup("late.txt") is None
        storage.save("late.txt", ContentFile(b"x"))
        deadline = time.monotonic() + 20
        while vfs.lookup("late.txt") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert vfs.lookup("late.txt") is not None
    finally:
        vfs.close()


def test_a_file_move_whose_source_cannot_be_removed_stands_and_keeps_the_replaced_version() -> None:
    """A store without rename copies a file, then deletes its source. When the delete
    fails the target already holds the file: the move stands (its event told, the trash's
    version of the file it replaced kept) and PartlyRemoved names the source left."""
    vfs, store, changes, _ = _moving_vfs()
    vfs.write_file("dst", b"old content")
    trash = Trash(vfs).install()
    del changes[:]
    store.refuse_delete = "src/c"
    with pytest.raises(errors.PartlyRemoved) as left:
        vfs.rename("src/c", "dst")
    assert [name for name, _ in left.value.failures] == ["src/c"]
    assert read(vfs, "dst") == b"c" and read(vfs, "src/c") == b"c"
    (kept,) = trash.versions("dst")
    with trash.open_content(kept.id)[1] as old:
        assert old.read() == b"old content"  # what the move replaced is not lost
    # The move, then the source left behind, as made (readers took it as gone).
    assert [(c.action, c.path, c.target) for c in changes] == [
        (Action.MOVED, "src/c", "dst"),
        (Action.CREATED, "src/c", None),
    ]
    trash.close()


class Keeping:
    """A policy that records each change and refuses to delete names holding "keep"."""

    kinds = frozenset(Kind)

    def __init__(self) -> None:
        self.called: list[tuple[str, str]] = []

    def around(self, op: Operation, proceed: Proceed) -> None:
        self.called.append((op.kind.value, op.path))
        if op.kind is Kind.DELETE and "keep" in op.path:
            raise Refused(op.path, "a row names it")
        proceed()


def test_a_folder_copy_onto_a_folder_makes_it_the_copy_through_each_member_s_policies(
    storage: Storage,
) -> None:
    vfs = VFS(adapt(storage), cache_ttl=0)
    lay_out(
        vfs,
        {
            "src": None,
            "src/x": None,
            "dst": None,
            "dst/only": None,
            "src/a.txt": b"new a",
            "src/x/c.txt": b"c",
            "dst/a.txt": b"old a",
            "dst/gone.txt": b"gone",
            "dst/only/d.txt": b"d",
            "dst/x": b"a file where the source has a folder",
            "dst/keep.txt": b"refused",
        },
    )
    with pytest.raises(DirectoryNotEmpty):
        vfs.copy("src", "dst")  # without onto_folder: as before
    policy = Keeping()
    vfs.add_policy(policy)
    seen: list[Change] = []
    vfs.subscribe(seen.append)
    with pytest.raises(PartlyCopied) as caught:
        vfs.copy("src", "dst", onto_folder=True)
    assert [(name, type(exc)) for name, exc in caught.value.failures] == [("dst/keep.txt", Refused)]
    assert {e.name: e.is_dir for e in vfs.walk("dst")} == {
        "dst/a.txt": False,
        "dst/keep.txt": False,
        "dst/x": True,
        "dst/x/c.txt": False,
    }
    assert vfs.open_read("dst/a.txt").read() == b"new a"
    assert sorted(policy.called) == [
        ("create", "dst/x/c.txt"),
        ("delete", "dst/gone.txt"),
        ("delete", "dst/keep.txt"),
        ("delete", "dst/only"),
        ("delete", "dst/x"),
        ("replace", "dst/a.txt"),
    ]
    assert sorted((c.action.value, c.path, c.target) for c in seen) == [
        ("copied", "src", "dst"),
        ("deleted", "dst/gone.txt", None),
        ("deleted", "dst/x", None),
        ("folder_deleted", "dst/only", None),
    ]
    with pytest.raises(InvalidPath):
        vfs.copy("dst/x", "dst", onto_folder=True)  # the target holds the source
