"""``ObjectStore.delete_many``: folder removes hand every file to the store in one call."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.files.storage import InMemoryStorage

from davstore.store import MemoryStore
from davstore.vfs import VFS


class Recording(MemoryStore):
    def __init__(self) -> None:
        super().__init__(InMemoryStorage())
        self.batches: list[list[str]] = []

    def delete_many(self, names: Sequence[str]) -> None:
        self.batches.append(list(names))
        super().delete_many(names)


def test_remove_tree_and_folder_moves_delete_files_in_one_batch() -> None:
    store = Recording()
    vfs = VFS(store)
    vfs.mkdir("t")
    vfs.mkdir("t/u")
    for name in ("t/a", "t/u/b", "t/u/c"):
        vfs.write_file(name, b"x")
    vfs.rename("t", "m")  # copy + delete on a store without native rename
    assert [sorted(b) for b in store.batches] == [["t/a", "t/u/b", "t/u/c"]]
    vfs.remove_tree("m")
    assert sorted(store.batches[1]) == ["m/a", "m/u/b", "m/u/c"]
    assert vfs.listdir("") == []


def test_the_default_delete_many_skips_missing_names() -> None:
    store = MemoryStore(InMemoryStorage())
    VFS(store).write_file("here", b"x")
    store.delete_many(["gone", "here"])
    assert list(store.list("")) == []
