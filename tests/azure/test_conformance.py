"""The conformance kit (davstore.testing) on Azure Blob Storage (Azurite): through the VFS,
with and without the metadata cache, and through WebDAV in-process."""

from __future__ import annotations

from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.store.azure import AzureStore
from tests.conformance import OnStorageFixture


def test_adapt_picks_the_azure_accelerator(storage: Storage) -> None:
    assert isinstance(adapt(storage), AzureStore)


class TestAzure(OnStorageFixture):
    """Every frontend of the kit, on an empty prefix of the emulator's bucket."""
