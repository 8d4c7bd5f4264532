"""The conformance kit (davstore.testing) through WebDAV, in-process, for every store kind."""

from __future__ import annotations

from davstore.testing import Features, StorageConformance
from tests.conformance import OnStorageFixture
from tests.minimal_storages import NoDeleteStorage


class TestWebDAV(OnStorageFixture):
    frontends = ("webdav",)


class TestWebDAVWithoutDelete(StorageConformance):
    """What a store cannot do is 501 through WebDAV, and nothing is lost."""

    frontends = ("webdav",)
    storage_factory = staticmethod(lambda folder: NoDeleteStorage())
    store_features = Features(delete=False)
