"""The FUSE mount's real-work tests (tests/fuse/real_work.py) on a AZURE mount (emulator)."""

from __future__ import annotations

import pytest

from tests.azure.test_fuse import azure_mount
from tests.fuse.conftest import Share, fuse_usable
from tests.fuse.mounting import MountProcess
from tests.fuse.real_work import *  # noqa: F403 - the tests themselves

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]

__all__ = ["azure_mount"]


@pytest.fixture
def share(azure_mount: MountProcess) -> Share:
    return Share("azure", azure_mount.mountpoint, azure_mount)
