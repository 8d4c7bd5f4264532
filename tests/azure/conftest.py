"""Fixtures for the Azure tests: one Azurite per session, a container per test.

The suite fails, never skips, when Azurite cannot be started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.storage import Storage

from tests.azure.azurite import AzuriteServer, EmulatorError, new_container

#: The prefix every Azure test storage keeps its blobs under (``location``).
LOCATION = "some/prefix"

AzureStorageFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    server = AzuriteServer()
    try:
        server.start()
    except EmulatorError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def container(azurite: AzuriteServer) -> str:
    return new_container(azurite)


def azure_storage(server: AzuriteServer, container: str, **options: Any) -> Any:
    """An ``AzureStorage`` on ``server``'s ``container`` under :data:`LOCATION`."""
    from storages.backends.azure_storage import AzureStorage

    settings: dict[str, Any] = {
        "connection_string": server.connection_string,
        "azure_container": container,
        "location": LOCATION,
        "overwrite_files": True,
    }
    settings.update(options)
    return AzureStorage(**settings)


def quick_azure_storage(server: AzuriteServer, container: str, **options: Any) -> Any:
    """An ``AzureStorage`` whose client fails fast: no retries, short socket timeouts.

    django-storages passes no client options with a connection string, so a test-only
    subclass builds the service client itself.
    """
    from azure.storage.blob import BlobServiceClient
    from storages.backends.azure_storage import AzureStorage

    class QuickAzureStorage(AzureStorage):  # type: ignore[misc]
        def _get_service_client(self) -> Any:
            return BlobServiceClient.from_connection_string(
                self.connection_string, retry_total=0, connection_timeout=1, read_timeout=2
            )

    settings: dict[str, Any] = {
        "connection_string": server.connection_string,
        "azure_container": container,
        "location": LOCATION,
        "overwrite_files": True,
    }
    settings.update(options)
    return QuickAzureStorage(**settings)


@pytest.fixture
def make_azure_storage(azurite: AzuriteServer, container: str) -> AzureStorageFactory:
    return lambda **options: azure_storage(azurite, container, **options)


@pytest.fixture
def storage(make_azure_storage: AzureStorageFactory) -> Storage:
    """Overrides the store-kind storage: every Azure test runs on Azure."""
    return make_azure_storage()  # type: ignore[no-any-return]
