"""The conformance suite on the VFS itself, for every store kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.vfs import VFS
from tests.conformance.suite import ConformanceSuite
from tests.conformance.vfs_driver import VFSDriver


class TestVFS(ConformanceSuite):
    @pytest.fixture
    def driver(self, storage: Storage) -> Iterator[VFSDriver]:
        yield VFSDriver(VFS(adapt(storage)))


class TestVFSWithoutCache(ConformanceSuite):
    """The same rules hold with the metadata cache turned off."""

    @pytest.fixture
    def driver(self, storage: Storage) -> Iterator[VFSDriver]:
        yield VFSDriver(VFS(adapt(storage), cache_ttl=0))
