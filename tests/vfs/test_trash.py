"""The trash (davstore.vfs.trash): a person's delete is kept, on every store, and a store
failure or a crash part-way never loses the file."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore.errors import AlreadyExists, InvalidPath, NotFound, StoreError
from davstore.store import adapt
from davstore.store.base import ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS
from davstore.vfs.events import acting_as
from davstore.vfs.policy import Kind, Operation, Proceed, Refused
from davstore.vfs.trash import PURGE_LOCK, TRASH_FOLDER, Retention, Trash
from tests.azure.azurite import AzuriteServer, new_container
from tests.azure.conftest import azure_storage, azurite  # noqa: F401 - fixtures
from tests.gcs.conftest import gcs, gcs_storage  # noqa: F401 - fixtures
from tests.gcs.emulator import GCSEmulator, new_bucket
from tests.minimal_storages import MinimalStorage
from tests.s3.conftest import bucket, moto, s3_storage  # noqa: F401 - fixtures
from tests.s3.moto import MotoServer
from tests.vfs_trees import lay_out

T = TypeVar("T")

KINDS = ["filesystem", "memory", "minimal", "s3", "gcs", "azure"]


class Crash(Exception):
    """The process died here (nothing after it runs, the store stays as it was)."""


class Faulty(StoreWrapper):
    """A store whose ``fail_on``-th call of a kind raises StoreError; with ``crash`` the
    store then refuses every call (the process is gone) until :meth:`up`."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.fail_on: dict[str, int] = {}
        self.crash = False
        self.down = False
        self.calls: dict[str, int] = {}

    def _call(self, kind: str, func: Callable[[], T]) -> T:
        if self.down and kind != "abort":  # dropping a local spool needs no store
            raise StoreError("", "the store is down")
        count = self.calls[kind] = self.calls.get(kind, 0) + 1
        if self.fail_on.get(kind) == count:
            self.down = self.crash
            raise StoreError("", f"injected fault on {kind} #{count}")
        return func()

    def delete_many(self, names: Any) -> None:
        for name in names:  # one call each, so a fault can fall in the middle
            try:
                self.delete(name)
            except NotFound:
                continue

    def up(self) -> None:
        self.down = False
        self.fail_on.clear()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_storage(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], Storage]:
    """Storages of one store (each call a new object over the same files)."""
    if kind == "filesystem":
        return lambda: FileSystemStorage(location=str(tmp_path / "media"))
    if kind == "memory":
        memory = InMemoryStorage()
        return lambda: memory
    if kind == "minimal":
        minimal = MinimalStorage()
        return lambda: minimal
    if kind == "gcs":
        emulator: GCSEmulator = request.getfixturevalue("gcs")
        gcs_bucket = new_bucket(emulator)
        return lambda: gcs_storage(gcs_bucket)
    if kind == "azure":
        azure: AzuriteServer = request.getfixturevalue("azurite")
        box = new_container(azure)
        return lambda: azure_storage(azure, box)
    server: MotoServer = request.getfixturevalue("moto")
    name: str = request.getfixturevalue("bucket")
    return lambda: s3_storage(server, name)


@pytest.fixture
def opened(make_storage: Callable[[], Storage]) -> Callable[[], tuple[VFS, Trash, Faulty]]:
    def open_() -> tuple[VFS, Trash, Faulty]:
        store = Faulty(adapt(make_storage()))
        vfs = VFS(store, cache_ttl=0)
        return vfs, Trash(vfs, stale_after=0).install(), store

    return open_


@pytest.fixture
def share(opened: Callable[[], tuple[VFS, Trash, Faulty]]) -> Iterator[tuple[VFS, Trash, Faulty]]:
    got = opened()
    yield got
    got[0].close()


def tree(vfs: VFS) -> dict[str, bytes | None]:
    return {e.name: None if e.is_dir else vfs.open_read(e.name).read() for e in vfs.walk("")}


def make_folder(vfs: VFS) -> None:
    vfs.mkdir("d")
    vfs.mkdir("d/e")
    vfs.write_file("d/a.txt", b"aaa")
    vfs.write_file("d/e/b.txt", b"bb")
    vfs.write_file("d/e/c.txt", b"c")


FOLDER = {"d": None, "d/e": None, "d/a.txt": b"aaa", "d/e/b.txt": b"bb", "d/e/c.txt": b"c"}


# -- a delete is kept ----------------------------------------------------------------


def test_a_deleted_file_goes_to_the_trash_with_who_when_origin_and_size(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("report.txt", b"hello")
    with acting_as("ann", "webdav"):
        vfs.remove("report.txt")
    assert vfs.lookup("report.txt") is None
    (entry,) = trash.entries()
    assert (entry.path, entry.kind, entry.user, entry.origin, entry.size, entry.state) == (
        "report.txt",
        "deleted",
        "ann",
        "webdav",
        5,
        "done",
    )
    public = entry.public()
    assert {"id", "path", "kind", "when", "user", "origin", "size"} <= set(public)
    assert public["when"].endswith("+00:00")
    # The trash is never listed, never reachable by path.
    assert [e.name for e in vfs.listdir("")] == []
    with pytest.raises(InvalidPath):
        vfs.stat(TRASH_FOLDER)
    with pytest.raises(InvalidPath):
        vfs.open_read(f"{TRASH_FOLDER}/{entry.id}/content")


def test_a_deleted_folder_is_one_entry_and_restores_whole(share: Any) -> None:
    vfs, trash, _ = share
    make_folder(vfs)
    with acting_as("bob", "fuse"):
        vfs.remove_tree("d")
    assert tree(vfs) == {}
    (entry,) = trash.entries()
    assert (entry.path, entry.is_dir, entry.size, entry.user) == ("d", True, 6, "bob")
    trash.restore(entry.id)
    assert tree(vfs) == FOLDER
    assert trash.entries() == []


def test_an_empty_folder_is_removed_not_trashed(share: Any) -> None:
    vfs, trash, _ = share
    vfs.mkdir("empty")
    vfs.rmdir("empty")
    vfs.mkdir("e2")
    vfs.remove_tree("e2")
    assert trash.entries() == []
    assert vfs.lookup("empty") is None


def test_restore_to_another_path_makes_the_folders_above(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("x.txt", b"x")
    vfs.remove("x.txt")
    (entry,) = trash.entries()
    trash.restore(entry.id, to="/new/place/y.txt")
    assert tree(vfs) == {"new": None, "new/place": None, "new/place/y.txt": b"x"}


def test_restoring_onto_a_file_keeps_the_current_file_as_a_replaced_entry(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("f.txt", b"old")
    vfs.remove("f.txt")
    vfs.write_file("f.txt", b"current")
    (deleted,) = trash.entries()
    with acting_as("ann", "cli"):
        trash.restore(deleted.id)
    assert vfs.open_read("f.txt").read() == b"old"
    (kept,) = trash.entries()
    assert (kept.path, kept.kind, kept.user, kept.size) == ("f.txt", "replaced", "ann", 7)
    trash.restore(kept.id)
    assert vfs.open_read("f.txt").read() == b"current"
    assert [e.kind for e in trash.entries()] == ["replaced"]  # "old", kept in turn


def test_restoring_a_folder_onto_a_folder_is_refused_and_changes_nothing(share: Any) -> None:
    vfs, trash, _ = share
    make_folder(vfs)
    vfs.remove_tree("d")
    vfs.mkdir("d")
    (entry,) = trash.entries()
    with pytest.raises(AlreadyExists, match="--to PATH"):
        trash.restore(entry.id)
    assert trash.entries() == [entry]
    trash.restore(entry.id, to="d2")
    assert tree(vfs) == {"d": None, **{"d2" + k[1:]: v for k, v in FOLDER.items()}}


def test_restore_of_an_unknown_id_is_not_found(share: Any) -> None:
    _, trash, _ = share
    with pytest.raises(NotFound):
        trash.restore("20260101T000000Z-00000000")
    with pytest.raises(InvalidPath):
        trash.restore("../x")


# -- faults and crashes --------------------------------------------------------------

#: Where a fault falls in a file's move into the trash, per store: the record written,
#: the move (rename on disk; copy then delete elsewhere), the record marked done.
FILE_STEPS = ["commit#1", "copy#1", "delete#1", "rename#1", "commit#2"]


def _fault(store: Faulty, step: str, *, crash: bool) -> None:
    call, _, number = step.partition("#")
    store.fail_on = {call: int(number)}
    store.crash = crash


@pytest.mark.parametrize("step", FILE_STEPS)
@pytest.mark.parametrize("crash", [False, True], ids=["fault", "crash"])
def test_a_fault_moving_a_file_never_loses_it(
    opened: Callable[[], tuple[VFS, Trash, Faulty]], step: str, crash: bool
) -> None:
    vfs, trash, store = opened()
    vfs.write_file("keep.txt", b"precious")
    store.calls.clear()
    _fault(store, step, crash=crash)
    try:
        vfs.remove("keep.txt")
        failed = False
    except StoreError:
        failed = True
    store.up()
    if crash:
        vfs, trash, store = opened()  # a restart
    trash.recover()  # at start, and before every purge
    entries = [e for e in trash.entries() if e.state == "done"]
    here = vfs.lookup("keep.txt")
    # In exactly one place, whole.
    assert (here is not None) != bool(entries), (here, entries)
    if here is not None:
        assert failed
        assert vfs.open_read("keep.txt").read() == b"precious"
    else:
        trash.restore(entries[0].id)
        assert vfs.open_read("keep.txt").read() == b"precious"
    assert [e for e in trash.entries() if e.state != "done"] == []


#: Faults in a folder's move: the record, the first and second file copied, the first
#: and second file deleted (copy stores), the folders removed, the rename (disk).
FOLDER_STEPS = ["commit#1", "copy#1", "copy#2", "delete#1", "delete#2", "remove_dir#1", "rename#1"]


@pytest.mark.parametrize("step", FOLDER_STEPS)
@pytest.mark.parametrize("crash", [False, True], ids=["fault", "crash"])
def test_a_fault_moving_a_folder_never_loses_a_file(
    opened: Callable[[], tuple[VFS, Trash, Faulty]], step: str, crash: bool
) -> None:
    vfs, trash, store = opened()
    make_folder(vfs)
    store.calls.clear()
    _fault(store, step, crash=crash)
    with contextlib.suppress(StoreError):
        vfs.remove_tree("d")
    store.up()
    if crash:
        vfs, trash, store = opened()
    trash.recover()
    files = {k: v for k, v in FOLDER.items() if v is not None}
    entries = trash.entries()
    assert [e for e in entries if e.state != "done"] == []
    here = {k: v for k, v in tree(vfs).items() if v is not None}
    if entries:
        # Finished: nothing of it left in place (maybe empty folders), all in the trash.
        assert here == {}
        trash.restore(entries[0].id, to="back")
        got = {k: v for k, v in tree(vfs).items() if v is not None and k.startswith("back/")}
        assert got == {"back" + k[1:]: v for k, v in files.items()}
    else:
        assert here == files


def test_a_delete_without_rename_writes_one_record_and_is_done_when_listed(share: Any) -> None:
    """On a store without rename (copy then delete) a delete writes its record once: no
    "done" mark follows, the first listing finds the move over and records it."""
    vfs, trash, store = share
    vfs.write_file("one.txt", b"1")
    store.calls.clear()
    vfs.remove("one.txt")
    renames = store.capabilities.rename
    assert store.calls.get("commit") == (2 if renames else 1)
    (entry,) = trash.entries()
    assert entry.state == "done" and entry.inferred is not renames
    store.calls.clear()
    assert trash.entries() == [entry]
    assert "commit" not in store.calls  # recorded once: later listings ask nothing more


@pytest.mark.parametrize("new", [b"new content", b"old content"], ids=["other", "same"])
def test_a_file_made_at_the_name_since_is_no_original(
    opened: Callable[[], tuple[VFS, Trash, Faulty]], new: bytes
) -> None:
    """A crash leaves the record of a finished move "moving" (the "done" mark failed on
    local disk; never written elsewhere) and a new file is made at the name: the
    recovery keeps the entry and the new file, never rolls back onto it or drops the old
    content (other bytes); the same bytes may pass for the original, and then the
    entry goes with its content still at the name."""
    vfs, trash, store = opened()
    vfs.write_file("keep.txt", b"old content")
    store.calls.clear()
    if store.capabilities.rename:
        _fault(store, "commit#2", crash=True)
        with contextlib.suppress(StoreError):
            vfs.remove("keep.txt")
        store.up()
    else:
        vfs.remove("keep.txt")
    time.sleep(0.01)  # a store's clock of hundredths
    vfs.write_file("keep.txt", new)
    vfs, trash, store = opened()  # a restart
    trash.recover(everything=True)
    entries = trash.entries()
    assert [e.state for e in entries] == ["done"] * len(entries)
    assert vfs.open_read("keep.txt").read() == new
    if new == b"old content" and not entries:
        # The same bytes within the store's clock tick (S3 has seconds) pass for the
        # original: the entry goes, its content is at the name.
        return
    (entry,) = entries
    trash.restore(entry.id, to="old.txt")
    assert vfs.open_read("old.txt").read() == b"old content"


def test_a_crash_during_a_purge_leaves_nothing_half_kept(share: Any) -> None:
    vfs, trash, store = share
    make_folder(vfs)
    vfs.remove_tree("d")
    vfs.write_file("f", b"f")
    vfs.remove("f")
    store.calls.clear()
    store.fail_on, store.crash = {"delete_many": 1, "delete": 2}, True
    with pytest.raises(StoreError):
        trash._drop(trash.entries()[0].id)  # record gone, content not yet
    store.up()
    assert len(trash.entries()) == 1
    result = trash.purge(everything=True)
    assert (result.removed, result.entries) == (1, 0)
    try:
        left = list(store.list(TRASH_FOLDER))
    except NotFound:  # an object store: no object, no folder
        left = []
    assert left == []


# -- retention -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def retained(vfs: VFS, retention: Retention) -> tuple[Trash, Clock]:
    clock = Clock()
    return Trash(vfs, retention, clock=clock).install(), clock


def test_entries_older_than_the_days_kept_are_purged(share: Any) -> None:
    vfs = share[0]
    trash, clock = retained(VFS(vfs.store, cache_ttl=0), Retention(days=2))
    vfs = trash.vfs
    vfs.write_file("old", b"1")
    vfs.remove("old")
    clock.now += 86400
    vfs.write_file("new", b"2")
    vfs.remove("new")
    clock.now += 1.5 * 86400
    result = trash.purge()
    assert [e.path for e in trash.entries()] == ["new"]
    assert (result.removed, result.freed, result.entries, result.complete) == (1, 1, 1, True)


def test_at_most_versions_entries_per_path_are_kept_the_newest(share: Any) -> None:
    vfs = share[0]
    trash, clock = retained(VFS(vfs.store, cache_ttl=0), Retention(versions=2))
    vfs = trash.vfs
    for content in (b"1", b"22", b"333"):
        vfs.write_file("f", content)
        vfs.remove("f")
        clock.now += 1
    trash.purge()
    assert sorted(e.size for e in trash.entries()) == [2, 3]


def test_past_the_size_cap_the_oldest_entries_go_first(share: Any) -> None:
    vfs = share[0]
    trash, clock = retained(VFS(vfs.store, cache_ttl=0), Retention(max_size=10))
    vfs = trash.vfs
    for name in ("a", "b", "c"):
        vfs.write_file(name, b"x" * 6)
        vfs.remove(name)
        clock.now += 1
    assert trash.size() == 18
    trash.purge()
    assert [e.path for e in trash.entries()] == ["c"]


def test_a_purge_stops_at_its_time_budget(share: Any) -> None:
    vfs, trash, _ = share
    for name in ("a", "b"):
        vfs.write_file(name, b"x")
        vfs.remove(name)
    result = trash.purge(budget=-1, everything=True)
    assert (result.removed, result.complete) == (0, False)
    assert len(trash.entries()) == 2
    assert trash.purge(everything=True).removed == 2


class Rounds:
    """Counts a trash's purge rounds: those it tried (:meth:`Trash._purges_here`) and
    those it purged; :meth:`wait` for a count."""

    def __init__(self, trash: Trash, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tried = self.purged = 0
        self._changed = threading.Condition()
        purges_here, purge = trash._purges_here, trash.purge

        def tried(state_dir: Path | None) -> bool:
            answer = purges_here(state_dir)
            with self._changed:
                self.tried += 1
                self._changed.notify_all()
            return answer

        def purged(**kwargs: Any) -> Any:
            result = purge(**kwargs)
            with self._changed:
                self.purged += 1
                self._changed.notify_all()
            return result

        monkeypatch.setattr(trash, "_purges_here", tried)
        monkeypatch.setattr(trash, "purge", purged)

    def wait(self, what: Callable[[Rounds], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: what(self), timeout=60), vars(self)


@pytest.mark.parametrize("kind", ["filesystem"])
def test_one_trash_of_a_state_folder_purges_and_another_takes_over(
    opened: Callable[[], tuple[VFS, Trash, Faulty]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A review found every worker of ``serve --workers N`` (and a mount beside them)
    purging the same trash every round. With the share's state folder, the process
    holding its purge lock purges; the others skip their rounds, and the first to try
    once the holder is closed purges from then on."""
    state = tmp_path / "state"
    state.mkdir()
    (vfs_a, a, store_a), (vfs_b, b, store_b) = opened(), opened()
    vfs_a.write_file("gone.txt", b"x")
    vfs_a.remove("gone.txt")
    a.retention = b.retention = Retention(days=0)  # due at once: a purge removes it
    rounds = {a: Rounds(a, monkeypatch), b: Rounds(b, monkeypatch)}
    store_a.calls.clear()
    store_b.calls.clear()
    try:
        for trash in (a, b):
            trash.start_purging(interval=0.01, first_after=0, state_dir=state)
        for counted in rounds.values():
            counted.wait(lambda r: r.tried >= 5)
        (holder,) = [trash for trash, counted in rounds.items() if counted.purged]
        other = b if holder is a else a
        assert rounds[holder].purged >= 4 and rounds[other].purged == 0
        assert (store_b if other is b else store_a).calls.get("list", 0) == 0  # not a look
        assert a.entries() == []  # the holder did the work
        holder.close()
        rounds[other].wait(lambda r: r.purged >= 1)
        assert (state / PURGE_LOCK).exists()
    finally:
        a.close()
        b.close()
        vfs_a.close()
        vfs_b.close()


@pytest.mark.parametrize("kind", ["filesystem"])
def test_a_purging_process_that_dies_leaves_the_purge_to_another(
    share: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process of the host holds the purge lock (another worker): this trash
    purges nothing; once that process is gone, it purges at its next round."""
    _, trash, _ = share
    state = tmp_path / "state"
    state.mkdir()
    rounds = Rounds(trash, monkeypatch)
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            " fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('held', flush=True);"
            " sys.stdin.read()",
            str(state / PURGE_LOCK),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline() == b"held\n"
            trash.start_purging(interval=0.01, first_after=0, state_dir=state)
            rounds.wait(lambda r: r.tried >= 5)
            assert rounds.purged == 0
        finally:
            holder.stdin.close()  # the other process ends, and its lock with it
            holder.wait(timeout=60)
    rounds.wait(lambda r: r.purged >= 1)
    trash.close()


# -- the order of policies -----------------------------------------------------------


class RefuseAll:
    kinds = frozenset({Kind.DELETE})

    def around(self, op: Operation, proceed: Proceed) -> None:
        raise Refused(op.path, "used by a row", references=[{"model": "x"}])


def test_a_refusal_comes_before_the_trash_whatever_the_order_added(share: Any) -> None:
    vfs, trash, _ = share
    vfs.add_policy(RefuseAll())  # added after the trash: still runs first
    vfs.write_file("used.txt", b"u")
    with pytest.raises(Refused):
        vfs.remove("used.txt")
    assert trash.entries() == []
    assert vfs.open_read("used.txt").read() == b"u"


def test_with_the_trash_off_a_delete_is_final(share: Any) -> None:
    vfs = share[0]
    off = Trash(VFS(vfs.store, cache_ttl=0), Retention(enabled=False)).install()
    off.vfs.write_file("gone", b"g")
    off.vfs.remove("gone")
    assert off.entries() == []
    assert off.vfs.lookup("gone") is None


# -- previous versions ---------------------------------------------------------------


def content(vfs: VFS, path: str) -> bytes:
    with vfs.open_read(path) as stream:
        return bytes(stream.read())


def test_an_overwrite_keeps_the_replaced_content_as_a_version(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("doc.txt", b"first")
    with acting_as("ann", "webdav"):
        vfs.put_file("doc.txt", b"second")  # the quick PUT path
    with acting_as("bob", "fuse"), vfs.open_write("doc.txt") as handle:  # a handle's commit
        handle.write(b"third")
    assert content(vfs, "doc.txt") == b"third"
    versions = trash.versions("doc.txt")
    assert [(v.kind, v.size, v.user, v.origin) for v in versions] == [
        ("replaced", 5, "ann", "webdav"),
        ("replaced", 6, "bob", "fuse"),
    ]
    trash.restore(versions[0].id)
    assert content(vfs, "doc.txt") == b"first"
    assert sorted(v.size for v in trash.versions("doc.txt")) == [5, 6]  # "third" kept too


def test_a_move_or_a_copy_onto_a_file_keeps_the_file_replaced(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("a", b"aa")
    vfs.write_file("b", b"bbb")
    vfs.write_file("c", b"c")
    vfs.rename("a", "b")  # an editor's safe save: the new file moved over the old
    vfs.copy("c", "b")
    assert content(vfs, "b") == b"c"
    assert [v.size for v in trash.versions("b")] == [3, 2]
    assert [e.kind for e in trash.entries()] == ["replaced", "replaced"]


def test_a_new_file_keeps_no_version(share: Any) -> None:
    vfs, trash, _ = share
    vfs.write_file("new", b"n")
    vfs.put_file("new2", b"n")
    vfs.copy("new", "new3")
    vfs.rename("new3", "new4")
    assert trash.entries() == []


@pytest.mark.parametrize("step", ["commit#1", "copy#1", "commit#2", "commit#3"])
@pytest.mark.parametrize("crash", [False, True], ids=["fault", "crash"])
def test_a_fault_in_an_overwrite_loses_neither_version(
    opened: Callable[[], tuple[VFS, Trash, Faulty]], step: str, crash: bool
) -> None:
    """commit#1: the record; copy#1: the old content kept; commit#2: the new content;
    commit#3: the record marked done."""
    vfs, trash, store = opened()
    vfs.write_file("f", b"old")
    store.calls.clear()
    _fault(store, step, crash=crash)
    try:
        vfs.put_file("f", b"new")
        replaced = True
    except StoreError:
        replaced = False
    store.up()
    if crash:
        vfs, trash, store = opened()
    trash.recover()
    versions = trash.versions("f")
    now = content(vfs, "f")
    assert [e for e in trash.entries() if e.state != "done"] == []
    if now == b"new":
        assert [content_of(trash, v.id) for v in versions] == [b"old"]
    else:
        assert now == b"old" and not replaced
        assert [content_of(trash, v.id) for v in versions] in ([], [b"old"])


def content_of(trash: Trash, entry_id: str) -> bytes:
    with trash.store.open_read(f"{TRASH_FOLDER}/{entry_id}/content") as stream:
        return bytes(stream.read())


def test_at_most_versions_are_kept_per_file_at_once(share: Any) -> None:
    """A program saving one file again and again never fills the trash between purges."""
    vfs = share[0]
    trash, clock = retained(VFS(vfs.store, cache_ttl=0), Retention(versions=3))
    vfs = trash.vfs
    for number in range(7):
        vfs.put_file("f", b"x" * number)
        clock.now += 1
    assert [v.size for v in trash.versions("f")] == [3, 4, 5]
    assert trash.purge().removed == 0


def test_a_folder_copy_onto_a_folder_keeps_what_it_replaces_and_removes(share: Any) -> None:
    vfs, trash, _ = share
    lay_out(
        vfs,
        {
            "src": None,
            "src/keep": None,
            "dst": None,
            "dst/keep": None,
            "dst/only": None,
            "src/a.txt": b"new",
            "src/keep/b.txt": b"bb",
            "dst/a.txt": b"old a",
            "dst/keep/b.txt": b"old b",
            "dst/gone.txt": b"gone",
            "dst/only/c.txt": b"cc",
        },
    )
    vfs.copy("src", "dst", onto_folder=True)
    assert {k: v for k, v in tree(vfs).items() if k.startswith("dst")} == {
        "dst": None,
        "dst/a.txt": b"new",
        "dst/keep": None,
        "dst/keep/b.txt": b"bb",
    }
    assert sorted((e.path, e.kind, e.is_dir, e.size) for e in trash.entries()) == [
        ("dst/a.txt", "replaced", False, 5),
        ("dst/gone.txt", "deleted", False, 4),
        ("dst/keep/b.txt", "replaced", False, 5),
        ("dst/only", "deleted", True, 2),
    ]
    trash.restore(trash.versions("dst/a.txt")[0].id)
    assert content(vfs, "dst/a.txt") == b"old a"
