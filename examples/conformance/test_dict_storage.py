"""davstore's conformance kit on the project's own Storage: every rule of davstore, on a
new empty DictStorage per test, through the VFS and WebDAV."""

from __future__ import annotations

from dict_storage import DictStorage

from davstore.testing import StorageConformance


class TestDictStorage(StorageConformance):
    storage_factory = staticmethod(lambda folder: DictStorage())
