"""The VFS's answer to sync clients (vfs/sync.py): what changed under a folder since a
position in the change journal, counted as docs/SEMANTICS.md says, without any frontend."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import InMemoryStorage

from davstore.errors import ChangesLost, NotSupported, PartlyRemoved, StoreError
from davstore.store import adapt
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS, sync
from davstore.vfs.journal import FILE_NAME, Journal, JournalFeed, Record, follow


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / FILE_NAME)
    yield opened
    opened.close()


@pytest.fixture
def vfs(journal: Journal) -> VFS:
    made = VFS(adapt(InMemoryStorage()))
    follow(made, journal, lambda: False, lambda: None)
    return made


def _names(delta: sync.Delta) -> tuple[list[str], list[str]]:
    return sorted(e.name for e in delta.changed), sorted(p for p, _ in delta.removed)


def test_the_journal_a_vfs_follows_is_its_change_feed(vfs: VFS, journal: Journal) -> None:
    assert isinstance(vfs.change_feed, JournalFeed)
    assert sync.position(vfs) == sync.Position(journal.ident, "0")
    with pytest.raises(NotSupported):
        sync.position(VFS(adapt(InMemoryStorage())))


def test_a_folder_copied_in_is_added_with_what_it_holds(vfs: VFS) -> None:
    vfs.mkdir("src")
    vfs.write_file("src/a.txt", b"a")
    vfs.mkdir("dst")
    start = sync.position(vfs)
    vfs.copy("src", "dst/copy")
    every = sync.changes_since(vfs, start, "dst", infinite=True)
    assert _names(every) == (["dst/copy", "dst/copy/a.txt"], [])
    one = sync.changes_since(vfs, start, "dst", infinite=False)
    assert _names(one) == (["dst/copy"], [])
    assert sync.changes_since(vfs, start, "src", infinite=True).changed == []
    assert every.position == sync.position(vfs)


def test_the_sites_names_are_canonical_and_davstores_own_are_never_members(
    vfs: VFS, journal: Journal
) -> None:
    start = sync.position(vfs)
    nfd = unicodedata.normalize("NFD", "café.txt")
    vfs.write_file("café.txt", b"x")
    journal.append(Record(action="created", path=nfd, origin="site", writer="site"))
    journal.append(Record(action="created", path=".davstore-trash/1/x", writer="site"))
    journal.append(Record(action="created", path="a/../../etc/passwd", writer="site"))
    assert _names(sync.changes_since(vfs, start, "", infinite=True)) == (["café.txt"], [])


def test_a_position_of_another_journal_or_past_the_folder_s_removal_is_lost(
    vfs: VFS, tmp_path: Path
) -> None:
    vfs.mkdir("f")
    start = sync.position(vfs)
    other = Journal(tmp_path / "other.sqlite")
    try:
        with pytest.raises(ChangesLost):
            sync.changes_since(vfs, sync.Position(other.ident, start.cursor), "f", infinite=True)
    finally:
        other.close()
    vfs.rename("f", "g")
    vfs.mkdir("f")
    with pytest.raises(ChangesLost):
        sync.changes_since(vfs, start, "f", infinite=True)
    assert _names(sync.changes_since(vfs, start, "", infinite=False)) == (["f", "g"], [])


def test_a_listing_over_the_limit_is_truncated_and_empty(vfs: VFS) -> None:
    for n in range(3):
        vfs.write_file(f"{n}.txt", b"x")
    assert len(sync.listing(vfs, "", infinite=False, limit=3).changed) == 3
    over = sync.listing(vfs, "", infinite=False, limit=2)
    assert over.truncated
    assert over.changed == []


class _Undeletable(StoreWrapper):
    """A store that cannot delete the file ``kept`` (one at a time or in a batch)."""

    kept = "d/keep/c.txt"

    def delete_many(self, names: list[str]) -> None:  # type: ignore[override]
        if self.kept in names:
            raise StoreError(self.kept, "injected fault")
        super().delete_many(names)

    def delete(self, name: str) -> None:
        if name == self.kept:
            raise StoreError(name, "injected fault")
        super().delete(name)


def test_a_folder_delete_that_leaves_members_tells_sync_clients_what_went(
    journal: Journal,
) -> None:
    vfs = VFS(_Undeletable(adapt(InMemoryStorage())))
    follow(vfs, journal, lambda: False, lambda: None)
    for folder in ("d", "d/keep", "d/gone"):
        vfs.mkdir(folder)
    for name in ("d/a.txt", "d/keep/b.txt", "d/keep/c.txt", "d/gone/e.txt"):
        vfs.write_file(name, b"x")
    start = sync.position(vfs)
    with pytest.raises(PartlyRemoved):
        vfs.remove_tree("d")
    delta = sync.changes_since(vfs, start, "", infinite=True)
    # The folders that stay are told changed (as they are now), what went removed.
    assert _names(delta) == (["d", "d/keep"], ["d/a.txt", "d/gone", "d/keep/b.txt"])
    assert sync.changes_since(vfs, start, "d/keep", infinite=True).removed == [
        ("d/keep/b.txt", False)
    ]
