"""The conformance suite on GCS (gcp-storage-emulator): through the VFS, with and without
the metadata cache, and through WebDAV in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.store.gcs import GCSStore
from davstore.vfs import VFS
from tests.conformance.suite import ConformanceSuite
from tests.conformance.vfs_driver import VFSDriver
from tests.conformance.webdav_driver import WebDAVDriver
from tests.webdav.serving import serve_share


def test_adapt_picks_the_gcs_accelerator(storage: Storage) -> None:
    assert isinstance(adapt(storage), GCSStore)


class TestGCSVFS(ConformanceSuite):
    @pytest.fixture
    def driver(self, storage: Storage) -> Iterator[VFSDriver]:
        yield VFSDriver(VFS(adapt(storage)))


class TestGCSVFSWithoutCache(ConformanceSuite):
    @pytest.fixture
    def driver(self, storage: Storage) -> Iterator[VFSDriver]:
        yield VFSDriver(VFS(adapt(storage), cache_ttl=0))


class TestGCSWebDAV(ConformanceSuite):
    @pytest.fixture
    def driver(self, storage: Storage, tmp_path: Path) -> Iterator[WebDAVDriver]:
        with serve_share(storage, tmp_path / "state") as share:
            yield WebDAVDriver(share.url, share.session)
