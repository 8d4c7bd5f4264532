"""A big folder's copy and move on S3 (no rename: a move is a copy then a delete) stream:
past the VFS's ``max_tree_entries`` (refused before, NotSupported) every object is copied
server-side while the prefix is listed, and a move's source then goes in DeleteObjects
batches. A move that cannot copy every object removes none of its source, and removes
what it copied again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from davstore.errors import PartlyCopied, StoreError
from davstore.store import adapt
from davstore.store.base import ObjectInfo, ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS, trees
from tests.s3.conftest import LOCATION, s3_storage
from tests.s3.moto import MotoServer

FILES = 240
BATCH = 20
#: Far fewer entries than the tree has (the bound the copy and move were refused past).
BOUND = 100


class Counted(StoreWrapper):
    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.sizes: list[int] = []
        self.deleted: list[str] = []
        self.refuse: str | None = None

    def delete_many(self, names: Sequence[str]) -> None:
        self.sizes.append(len(names))
        self.deleted += names
        super().delete_many(names)

    def copy(self, source: str, target: str) -> ObjectInfo:
        if self.refuse is not None and source == self.refuse:
            raise StoreError(source, "injected: the bucket answered 500")
        return super().copy(source, target)


def _filled(moto: MotoServer, bucket: str) -> tuple[VFS, Counted, dict[str, bytes], Any]:
    storage = s3_storage(moto, bucket)
    expected = {}
    for n in range(FILES):
        name = f"{n % 6}/{n:04}.txt"
        expected[name] = name.encode()
        storage.bucket.put_object(Key=f"{LOCATION}/big/{name}", Body=name.encode())
    store = Counted(adapt(storage))
    return VFS(store, cache_ttl=0, max_tree_entries=BOUND), store, expected, storage


def contents(vfs: VFS, folder: str) -> dict[str, bytes]:
    found = {}
    for entry in trees.walk(vfs.store, folder):
        if not entry.is_dir:
            with vfs.store.open_read(entry.name) as stream:
                found[entry.name[len(folder) + 1 :]] = stream.read()
    return found


def test_a_big_folder_copy_and_move_stream_on_s3(
    moto: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trees, "BATCH", BATCH)
    vfs, store, expected, _ = _filled(moto, bucket)
    assert not vfs.capabilities.rename
    vfs.copy("big", "copy")
    assert contents(vfs, "copy") == expected
    assert contents(vfs, "big") == expected
    vfs.rename("copy", "moved")
    assert contents(vfs, "moved") == expected
    assert vfs.lookup("copy") is None
    # The source went in batches while it was walked.
    assert sum(store.sizes) == FILES and max(store.sizes) <= BATCH and len(store.sizes) >= 12
    vfs.close()


def test_a_big_move_on_s3_that_cannot_copy_an_object_keeps_its_source(
    moto: MotoServer, bucket: str
) -> None:
    vfs, store, expected, storage = _filled(moto, bucket)
    store.refuse = "big/3/0123.txt"
    with pytest.raises(PartlyCopied) as raised:
        vfs.rename("big", "moved")
    assert [(name, type(exc)) for name, exc in raised.value.failures] == [
        ("big/3/0123.txt", StoreError)
    ]
    assert contents(vfs, "big") == expected
    # Nothing of the source was deleted; everything the copy made was.
    assert store.deleted and all(name.startswith("moved/") for name in store.deleted)
    assert len(store.deleted) == FILES - 1
    assert vfs.lookup("moved") is None and [e.name for e in vfs.listdir("")] == ["big"]
    assert not list(storage.bucket.objects.filter(Prefix=f"{LOCATION}/moved/"))
    vfs.close()
