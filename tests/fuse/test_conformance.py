"""The conformance suite through a real mount, for FileSystemStorage and InMemoryStorage."""

from __future__ import annotations

import pytest

from tests.conformance.fuse_driver import FuseDriver
from tests.conformance.suite import ConformanceSuite
from tests.fuse.conftest import MountFactory


class TestConformanceThroughFuse(ConformanceSuite):
    @pytest.fixture(params=["filesystem", "memory"])
    def driver(self, request: pytest.FixtureRequest, mount_share: MountFactory) -> FuseDriver:
        return FuseDriver(mount_share(str(request.param)).path)
