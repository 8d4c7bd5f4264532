"""A big folder's delete on S3 streams too: without the trash the objects go in
DeleteObjects batches while the prefix is listed; with it the folder is one trash entry
(copied server-side, then removed in batches), restorable whole."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from davstore.store import adapt
from davstore.store.base import ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS, trees
from davstore.vfs.trash import Trash
from tests.s3.conftest import LOCATION, s3_storage
from tests.s3.moto import MotoServer

FILES = 480
BATCH = 40


class Batches(StoreWrapper):
    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.sizes: list[int] = []

    def delete_many(self, names: Sequence[str]) -> None:
        self.sizes.append(len(names))
        super().delete_many(names)


def _filled(moto: MotoServer, bucket: str) -> tuple[VFS, Batches]:
    storage = s3_storage(moto, bucket)
    for n in range(FILES):
        storage.bucket.put_object(Key=f"{LOCATION}/big/{n % 6}/{n:04}.txt", Body=b"x")
    store = Batches(adapt(storage))
    return VFS(store, cache_ttl=0), store


@pytest.mark.parametrize("with_trash", [False, True], ids=["final", "trash"])
def test_a_big_folder_delete_streams_on_s3(
    moto: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch, with_trash: bool
) -> None:
    monkeypatch.setattr(trees, "BATCH", BATCH)
    vfs, store = _filled(moto, bucket)
    trash = Trash(vfs).install() if with_trash else None
    vfs.remove_tree("big")
    assert vfs.lookup("big") is None
    assert sum(store.sizes) == FILES and max(store.sizes) <= BATCH and len(store.sizes) >= 12
    if trash is not None:
        (entry,) = trash.entries()
        assert (entry.path, entry.size, entry.files) == ("big", FILES, ())
        trash.restore(entry.id)
        assert sum(len(vfs.listdir(f"big/{n}")) for n in range(6)) == FILES
    vfs.close()
