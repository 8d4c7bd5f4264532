"""The conformance kit (davstore.testing) as this suite uses it, and the kit's own tests.

:class:`OnStorageFixture` runs the kit on the ``storage`` fixture of the conftest in scope:
the store kinds of tests/conftest.py, or a fresh bucket prefix on an emulator in tests/s3,
tests/gcs, tests/azure.
"""

from __future__ import annotations

import pytest
from django.core.files.storage import Storage

from davstore.testing import StorageConformance

__all__ = ["OnStorageFixture"]


class OnStorageFixture(StorageConformance):
    """:class:`~davstore.testing.StorageConformance` on the conftest's ``storage``."""

    @pytest.fixture
    def storage(self, storage: Storage) -> Storage:
        """The ``storage`` fixture this one overrides (pytest passes the outer one)."""
        return storage
