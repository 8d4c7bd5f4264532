"""The FUSE mount's real-work tests (tests/fuse/real_work.py) on an S3 mount (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import Share, fuse_usable
from tests.fuse.mounting import start_mount
from tests.fuse.real_work import *  # noqa: F403 - the tests themselves
from tests.s3.moto import MotoServer
from tests.s3.test_fuse import mount_args

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]


@pytest.fixture
def share(moto: MotoServer, bucket: str, tmp_path: Path) -> Iterator[Share]:
    mount = start_mount(tmp_path / "mnt", mount_args(moto, bucket), base=tmp_path)
    try:
        yield Share("s3", mount.mountpoint, mount)
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure
