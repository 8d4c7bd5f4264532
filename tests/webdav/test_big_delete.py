"""A folder DELETE of any size streams: the files go in batches while the tree is walked
(Apache and nginx delete such folders too), a person's delete is still one trash entry,
and members that cannot be removed are reported one by one in a 207 (RFC 4918 9.6.1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore.errors import PermissionDenied
from davstore.store.base import ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS
from davstore.vfs.trash import Trash
from davstore.vfs.trees import BATCH
from tests.webdav.serving import Share, serve_share

#: More than the 10,000 entries a folder DELETE was refused past (501).
ENTRIES = 12_000
FOLDERS = 12


class Watched(StoreWrapper):
    """Records each ``delete_many`` batch; refuses to delete names holding ``stuck``."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.batches: list[int] = []

    def delete_many(self, names: Sequence[str]) -> None:
        self.batches.append(len(names))
        for name in names:
            if "stuck" in name:
                raise PermissionDenied(name, "injected: cannot remove this one")
        super().delete_many(names)

    def delete(self, name: str) -> None:
        if "stuck" in name:
            raise PermissionDenied(name, "injected: cannot remove this one")
        super().delete(name)


@pytest.fixture(params=["filesystem", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "filesystem":
        return FileSystemStorage(location=str(tmp_path / "media"))
    return InMemoryStorage()


@pytest.fixture
def share(storage: Storage, tmp_path: Path) -> Iterator[tuple[Share, Watched]]:
    with serve_share(storage, tmp_path / "state", cache_ttl=0) as served:
        watched: list[Watched] = []
        served.vfs.wrap_store(lambda inner: watched.append(Watched(inner)) or watched[-1])
        yield served, watched[0]


def fill(vfs: VFS, storage: Storage, count: int = ENTRIES) -> None:
    """``big/`` with ``count`` entries: FOLDERS folders of files."""
    vfs.mkdir("big")
    per_folder = count // FOLDERS - 1
    for folder in range(FOLDERS):
        vfs.mkdir(f"big/{folder:02}")
        names = [f"big/{folder:02}/{n:05}.txt" for n in range(per_folder)]
        if isinstance(storage, FileSystemStorage):
            base = Path(storage.location)
            for name in names:
                (base / name).write_bytes(b"x")
        else:
            for name in names:
                vfs.write_file(name, b"x")


def test_a_folder_of_12000_entries_is_deleted_in_batches(share: tuple[Share, Watched]) -> None:
    served, watched = share
    fill(served.vfs, served.storage)
    assert served.request("DELETE", "big").status_code == 204
    assert served.request("PROPFIND", "big", headers={"Depth": "0"}).status_code == 404
    assert served.vfs.listdir("") == []
    # Deleted while walking: many batches, none bigger than the bound.
    assert sum(watched.batches) == ENTRIES - FOLDERS
    assert len(watched.batches) > 10 and max(watched.batches) <= BATCH


def test_a_person_s_big_folder_delete_is_one_trash_entry(share: tuple[Share, Watched]) -> None:
    served, _ = share
    trash = Trash(served.vfs).install()
    fill(served.vfs, served.storage)
    assert served.request("DELETE", "big").status_code == 204
    assert served.request("GET", "big/03/00007.txt").status_code == 404
    (entry,) = trash.entries()
    assert (entry.path, entry.is_dir, entry.size, entry.files) == ("big", True, ENTRIES - 12, ())
    trash.restore(entry.id)
    assert served.request("GET", "big/03/00007.txt").content == b"x"
    assert sum(len(served.vfs.listdir(f"big/{n:02}")) for n in range(FOLDERS)) == ENTRIES - 12


def test_members_that_fail_are_each_in_a_207_and_keep_their_folders(
    share: tuple[Share, Watched],
) -> None:
    served, _ = share
    vfs = served.vfs
    fill(vfs, served.storage, count=2 * FOLDERS)
    vfs.mkdir("big/00/inner")
    vfs.write_file("big/00/inner/stuck one.txt", b"keep")
    vfs.write_file("big/05/stuck.txt", b"keep")
    answer = served.request("DELETE", "big")
    assert answer.status_code == 207
    body = ET.fromstring(answer.content)
    got = {
        r.findtext("{DAV:}href", "").lstrip("/"): r.findtext("{DAV:}status")
        for r in body.iter("{DAV:}response")
    }
    assert got == {
        "big/00/inner/stuck%20one.txt": "HTTP/1.1 403 Forbidden",
        "big/05/stuck.txt": "HTTP/1.1 403 Forbidden",
    }
    left = sorted(e.name for e in vfs.walk(""))
    assert left == [
        "big",
        "big/00",
        "big/00/inner",
        "big/00/inner/stuck one.txt",
        "big/05",
        "big/05/stuck.txt",
    ]
