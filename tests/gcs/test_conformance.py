"""The conformance kit (davstore.testing) on GCS (gcp-storage-emulator): through the VFS,
with and without the metadata cache, and through WebDAV in-process."""

from __future__ import annotations

from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.store.gcs import GCSStore
from tests.conformance import OnStorageFixture


def test_adapt_picks_the_gcs_accelerator(storage: Storage) -> None:
    assert isinstance(adapt(storage), GCSStore)


class TestGCS(OnStorageFixture):
    """Every frontend of the kit, on an empty prefix of the emulator's bucket."""
