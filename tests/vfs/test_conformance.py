"""The conformance kit (davstore.testing) on the VFS itself, for every store kind, with and
without the metadata cache."""

from __future__ import annotations

from davstore.testing import Features, StorageConformance
from tests.conformance import OnStorageFixture
from tests.minimal_storages import NoDeleteStorage


class TestVFS(OnStorageFixture):
    frontends = ("vfs", "vfs-uncached")


class TestVFSWithoutDelete(StorageConformance):
    """A store that cannot delete opts out by its features: the refusals are checked."""

    frontends = ("vfs", "vfs-uncached")
    storage_factory = staticmethod(lambda folder: NoDeleteStorage())
    store_features = Features(delete=False)
