"""The FUSE mount's real-work tests (tests/fuse/real_work.py) on a GCS mount (emulator)."""

from __future__ import annotations

import pytest

from tests.fuse.conftest import Share, fuse_usable
from tests.fuse.mounting import MountProcess
from tests.fuse.real_work import *  # noqa: F403 - the tests themselves
from tests.gcs.test_fuse import gcs_mount

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]

__all__ = ["gcs_mount"]


@pytest.fixture
def share(gcs_mount: MountProcess) -> Share:
    return Share("gcs", gcs_mount.mountpoint, gcs_mount)
