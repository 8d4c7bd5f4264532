"""Fixtures for the GCS tests: one gcp-storage-emulator per session, a bucket per test.

The suite fails, never skips, when the emulator cannot be started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.storage import Storage

from tests.gcs.emulator import PROJECT, EmulatorError, GCSEmulator, new_bucket

#: The prefix every GCS test storage keeps its objects under (``location``).
LOCATION = "some/prefix"

GCSStorageFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def gcs() -> Iterator[GCSEmulator]:
    server = GCSEmulator()
    try:
        server.start()
    except EmulatorError as exc:
        pytest.fail(str(exc))
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    yield server
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old
    server.stop()


@pytest.fixture
def bucket(gcs: GCSEmulator) -> str:
    return new_bucket(gcs)


def gcs_storage(bucket: str, **options: Any) -> Any:
    """A ``GoogleCloudStorage`` on ``bucket`` under :data:`LOCATION` (the emulator is found
    through ``STORAGE_EMULATOR_HOST``, as a project would configure it)."""
    from google.auth.credentials import AnonymousCredentials
    from storages.backends.gcloud import GoogleCloudStorage

    settings: dict[str, Any] = {
        "bucket_name": bucket,
        "project_id": PROJECT,
        "credentials": AnonymousCredentials(),
        "location": LOCATION,
        "file_overwrite": True,
    }
    settings.update(options)
    return GoogleCloudStorage(**settings)


@pytest.fixture
def make_gcs_storage(gcs: GCSEmulator, bucket: str) -> GCSStorageFactory:
    return lambda **options: gcs_storage(bucket, **options)


@pytest.fixture
def storage(make_gcs_storage: GCSStorageFactory) -> Storage:
    """Overrides the store-kind storage: every GCS test runs on GCS."""
    return make_gcs_storage()  # type: ignore[no-any-return]
