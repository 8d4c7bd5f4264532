"""Fixtures for the S3 tests: one moto server per session, a fresh bucket per test.

The suite fails, never skips, when moto's server cannot be started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.storage import Storage

from tests.s3.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    new_bucket,
    running_moto,
)

#: The prefix every S3 test storage keeps its objects under (``location``).
LOCATION = "some/prefix"

S3StorageFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return new_bucket(moto)


def s3_storage(server: MotoServer, bucket: str, **options: Any) -> Any:
    """An ``S3Storage`` on ``server``'s ``bucket`` under :data:`LOCATION`."""
    from storages.backends.s3 import S3Storage

    settings: dict[str, Any] = {
        "bucket_name": bucket,
        "endpoint_url": server.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
        "file_overwrite": True,
        "location": LOCATION,
    }
    settings.update(options)
    return S3Storage(**settings)


@pytest.fixture
def make_s3_storage(moto: MotoServer, bucket: str) -> S3StorageFactory:
    """``make_s3_storage(**options)``: an S3Storage on the test's bucket."""
    return lambda **options: s3_storage(moto, bucket, **options)


@pytest.fixture
def storage(make_s3_storage: S3StorageFactory) -> Storage:
    """Overrides the store-kind storage: every S3 test runs on S3."""
    return make_s3_storage()  # type: ignore[no-any-return]
