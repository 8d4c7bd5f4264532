"""The conformance kit (davstore.testing) on S3 (moto's server): through the VFS,
with and without the metadata cache, and through WebDAV in-process."""

from __future__ import annotations

from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.store.s3 import S3Store
from tests.conformance import OnStorageFixture


def test_adapt_picks_the_s3_accelerator(storage: Storage) -> None:
    assert isinstance(adapt(storage), S3Store)


class TestS3(OnStorageFixture):
    """Every frontend of the kit, on an empty prefix of the emulator's bucket."""
