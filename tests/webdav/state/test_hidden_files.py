"""Where hidden macOS metadata files are kept (hidden_files.py): memory and the shared
SQLite file behave alike, and the SQLite file is one store for every app that opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from davstore.frontends.webdav.state.hidden_files import (
    HIDDEN_FILES_FILE,
    HiddenFiles,
    MemoryHiddenFiles,
    SqliteHiddenFiles,
    open_hidden_files,
)
from tests.webdav.serving import serve_share


@pytest.fixture(params=["memory", "sqlite"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HiddenFiles]:
    made: HiddenFiles
    if request.param == "memory":
        made = MemoryHiddenFiles(budget=100)
    else:
        made = SqliteHiddenFiles(str(tmp_path / "hidden.sqlite3"), budget=100)
    yield made
    made.close()


def test_put_get_delete(files: HiddenFiles) -> None:
    assert files.get("a/._x") is None
    assert not files.exists("a/._x")
    assert files.put("a/._x", b"tags")
    assert files.exists("a/._x") and not files.exists("a/._y")
    found = files.get("a/._x")
    assert found is not None and found.data == b"tags" and found.mtime > 0
    assert files.put("a/._x", b"more tags")
    assert files.get("a/._x") == (b"more tags", files.get("a/._x").mtime)  # type: ignore[union-attr]
    assert files.delete("a/._x") and not files.delete("a/._x")
    assert files.get("a/._x") is None and files.names() == [] and files.used() == 0


def test_the_budget_counts_every_file_and_a_refused_put_changes_nothing(
    files: HiddenFiles,
) -> None:
    assert files.put(".DS_Store", b"x" * 60)
    assert files.put("._a", b"y" * 40)
    assert not files.put("._b", b"z")  # 101 bytes in all
    assert files.get("._b") is None
    assert files.put("._a", b"y" * 40)  # a replacement is weighed without the old bytes
    assert not files.put("._a", b"y" * 41)
    assert files.get("._a").data == b"y" * 40  # type: ignore[union-attr]
    assert files.used() == 100 and files.names() == [".DS_Store", "._a"]


def test_touch_makes_an_empty_file_only_where_none_is(files: HiddenFiles) -> None:
    files.touch("._new")
    assert files.get("._new").data == b""  # type: ignore[union-attr]
    files.put("._old", b"kept")
    files.touch("._old")
    assert files.get("._old").data == b"kept"  # type: ignore[union-attr]


def test_copy_and_move_of_one_file(files: HiddenFiles) -> None:
    assert files.copy("._none", "._b", move=False, overwrite=True) == "missing"
    files.put("._a", b"one")
    assert files.copy("._a", "._b", move=False, overwrite=True) == "created"
    assert files.copy("._a", "._b", move=False, overwrite=False) == "refused"
    files.put("._a", b"two")
    assert files.copy("._a", "._b", move=True, overwrite=True) == "replaced"
    assert files.get("._a") is None and files.get("._b").data == b"two"  # type: ignore[union-attr]


def test_folders_take_their_hidden_files_along(files: HiddenFiles) -> None:
    for name in ("p/._a", "p/q/.DS_Store", "pq/._c", "._top"):
        files.put(name, name.encode())
    files.copy_tree("p", "copy")
    files.carry("p", "album")
    assert files.names() == [
        "._top",
        "album/._a",
        "album/q/.DS_Store",
        "copy/._a",
        "copy/q/.DS_Store",
        "pq/._c",
    ]
    assert files.get("album/q/.DS_Store").data == b"p/q/.DS_Store"  # type: ignore[union-attr]
    files.carry("album", None)
    assert files.names() == ["._top", "copy/._a", "copy/q/.DS_Store", "pq/._c"]


NAMES = st.sampled_from(["._a", "._b", "d/._c", "d/.DS_Store", "d/e/._f", "g/._h"])
FOLDERS = st.sampled_from(["d", "d/e", "g", "x"])


class SameAsMemory(RuleBasedStateMachine):
    """Any sequence of changes leaves the SQLite file holding what memory holds."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.sqlite = SqliteHiddenFiles(str(Path(self._dir.name) / "h.sqlite3"), budget=64)
        self.memory = MemoryHiddenFiles(budget=64)

    def teardown(self) -> None:
        self.sqlite.close()
        self._dir.cleanup()

    @rule(name=NAMES, data=st.binary(max_size=40))
    def put(self, name: str, data: bytes) -> None:
        assert self.sqlite.put(name, data) == self.memory.put(name, data)

    @rule(name=NAMES)
    def touch_and_delete(self, name: str) -> None:
        self.sqlite.touch(name)
        self.memory.touch(name)
        assert self.sqlite.delete(name) == self.memory.delete(name)

    @rule(source=NAMES, dest=NAMES, move=st.booleans(), overwrite=st.booleans())
    def copy(self, source: str, dest: str, move: bool, overwrite: bool) -> None:
        assert self.sqlite.copy(source, dest, move=move, overwrite=overwrite) == (
            self.memory.copy(source, dest, move=move, overwrite=overwrite)
        )

    @rule(source=FOLDERS, dest=FOLDERS, how=st.sampled_from(["move", "copy", "delete"]))
    def folder(self, source: str, dest: str, how: str) -> None:
        if how == "copy":
            self.sqlite.copy_tree(source, dest)
            self.memory.copy_tree(source, dest)
        else:
            self.sqlite.carry(source, dest if how == "move" else None)
            self.memory.carry(source, dest if how == "move" else None)

    @invariant()
    def same(self) -> None:
        assert self.sqlite.names() == self.memory.names()
        assert self.sqlite.used() == self.memory.used()  # memory keeps a running total
        assert self.memory.used() == sum(
            len(self.memory.get(n).data)  # type: ignore[union-attr]
            for n in self.memory.names()
        )
        for name in self.memory.names():
            assert self.sqlite.exists(name) and self.memory.exists(name)
            assert self.sqlite.get(name).data == self.memory.get(name).data  # type: ignore[union-attr]


SameAsMemory.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_sqlite_hidden_files_behave_as_memory = SameAsMemory.TestCase


def test_shares_on_one_state_folder_see_one_set_and_it_survives_a_restart(
    tmp_path: Path,
) -> None:
    """As the workers of one host do: a file hidden through one is there in the other."""
    state = tmp_path / "state"
    first = FileSystemStorage(location=str(tmp_path / "media"))
    second = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(first, state) as one, serve_share(second, state) as two:
        one.request("MKCOL", "photos")
        assert one.request("PUT", "photos/._cat.jpg", data=b"apple double").status_code == 201
        assert two.request("GET", "photos/._cat.jpg").content == b"apple double"
        moved = two.request("MOVE", "photos/", headers={"Destination": two("album/")})
        assert moved.status_code == 201
        assert one.request("GET", "album/._cat.jpg").content == b"apple double"
        assert one.request("GET", "photos/._cat.jpg").status_code == 404
        assert two.request("DELETE", "album/._cat.jpg").status_code == 204
        assert one.request("GET", "album/._cat.jpg").status_code == 404
        assert one.request("PUT", "album/.DS_Store", data=b"bud1").status_code == 201
    assert (state / HIDDEN_FILES_FILE).exists()
    with serve_share(FileSystemStorage(location=str(tmp_path / "media")), state) as again:
        assert again.request("GET", "album/.DS_Store").content == b"bud1"
    assert not list((tmp_path / "media").rglob(".DS_Store"))


def test_memory_state_keeps_them_in_memory(tmp_path: Path) -> None:
    assert isinstance(open_hidden_files("memory:", tmp_path, 10), MemoryHiddenFiles)
    state = tmp_path / "state"
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, state, property_storage="memory:") as share:
        assert share.request("PUT", "._x", data=b"x").status_code == 201
    assert not (state / HIDDEN_FILES_FILE).exists()
    with serve_share(storage, state, property_storage="memory:") as share:
        assert share.request("GET", "._x").status_code == 404


def test_a_failed_change_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    files = SqliteHiddenFiles(str(tmp_path / "h.sqlite3"), budget=100)
    try:
        files.put("p/._a", b"kept")
        files.put("p/q/._b", b"kept too")
        with pytest.raises(RuntimeError), files._transaction() as db:
            db.execute("DELETE FROM hidden")
            raise RuntimeError("the store failed halfway")
        assert files.names() == ["p/._a", "p/q/._b"]
        assert files.put("._c", b"and a later change commits")
        assert files.get("._c") is not None
    finally:
        files.close()
