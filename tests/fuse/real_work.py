"""The FUSE real-work tests, for other stores: a test module imports these names and
provides a ``share`` fixture (a :class:`tests.fuse.conftest.Share` mounted on its store)."""

from __future__ import annotations

from pathlib import Path

from tests.fuse import test_workloads as workloads
from tests.fuse.conftest import Share
from tests.fuse.test_workloads import (
    test_cp_r_in_and_out_keeps_every_byte,
    test_editor_safe_save,
    test_find_du_ls,
    test_mv_folder_with_files,
    test_tar_extract_and_create,
    test_vim_edits_with_a_swap_file,
)

__all__ = [
    "test_cp_r_in_and_out_keeps_every_byte",
    "test_editor_safe_save",
    "test_find_du_ls",
    "test_git_clone_and_status_clean_on_this_store",
    "test_mv_folder_with_files",
    "test_tar_extract_and_create",
    "test_vim_edits_with_a_swap_file",
]


def test_git_clone_and_status_clean_on_this_store(share: Share, tmp_path: Path) -> None:
    workloads.test_git_clone_and_status_clean(lambda *_: share, tmp_path, share.kind)
