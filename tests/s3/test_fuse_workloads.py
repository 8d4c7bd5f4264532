"""The FUSE mount's real-work tests (tests/fuse/test_workloads.py) on an S3 mount (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse import test_workloads as workloads
from tests.fuse.conftest import Share, fuse_usable
from tests.fuse.mounting import start_mount
from tests.fuse.test_workloads import (
    test_cp_r_in_and_out_keeps_every_byte,
    test_editor_safe_save,
    test_find_du_ls,
    test_mv_folder_with_files,
    test_tar_extract_and_create,
    test_vim_edits_with_a_swap_file,
)
from tests.s3.moto import MotoServer
from tests.s3.test_fuse import mount_args

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]

__all__ = [
    "test_cp_r_in_and_out_keeps_every_byte",
    "test_editor_safe_save",
    "test_find_du_ls",
    "test_mv_folder_with_files",
    "test_tar_extract_and_create",
    "test_vim_edits_with_a_swap_file",
]


@pytest.fixture
def share(moto: MotoServer, bucket: str, tmp_path: Path) -> Iterator[Share]:
    mount = start_mount(tmp_path / "mnt", mount_args(moto, bucket), base=tmp_path)
    try:
        yield Share("s3", mount.mountpoint, mount)
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure


def test_git_clone_and_status_clean_on_s3(share: Share, tmp_path: Path) -> None:
    workloads.test_git_clone_and_status_clean(lambda *args, **kwargs: share, tmp_path, "s3")
