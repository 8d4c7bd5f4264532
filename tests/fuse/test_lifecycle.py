"""``davstore mount`` / ``davstore umount`` as a person runs them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fuse.conftest import MountFactory
from tests.fuse.mounting import REPO, force_unmount, is_mounted, start_mount
from tests.process import davstore_env


def davstore(*args: str | Path, base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "davstore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=base,
        env=davstore_env(base, pythonpath=[REPO]),
        check=False,
    )


def test_mount_daemonises_and_umount_unmounts(tmp_path: Path) -> None:
    root, mnt = tmp_path / "root", tmp_path / "mnt"
    root.mkdir()
    mnt.mkdir()
    try:
        done = davstore("mount", mnt, root, base=tmp_path)
        assert done.returncode == 0, done.stderr
        assert is_mounted(mnt)  # ready when mount returns
        (mnt / "f.txt").write_bytes(b"through the daemon")
        assert (root / "f.txt").read_bytes() == b"through the daemon"
        done = davstore("umount", mnt, base=tmp_path)
        assert done.returncode == 0, done.stderr
        assert not is_mounted(mnt)
    finally:
        force_unmount(mnt)


def test_mount_reports_a_failure_with_status_1(tmp_path: Path) -> None:
    done = davstore("mount", tmp_path / "missing", tmp_path, base=tmp_path)
    assert done.returncode == 1
    assert "not a folder" in done.stderr
    (tmp_path / "mnt").mkdir()
    done = davstore("mount", tmp_path / "mnt", "--backend", "no.such.Storage", base=tmp_path)
    assert done.returncode != 0
    assert "no.such.Storage" in done.stderr
    assert not is_mounted(tmp_path / "mnt")


def test_sigterm_commits_open_files_then_unmounts(mount_share: MountFactory) -> None:
    share = mount_share("filesystem")
    assert share.root is not None
    out = open(share.path / "open.txt", "wb")  # noqa: SIM115 - closed after the unmount
    out.write(b"written, never closed")
    out.flush()
    share.process.process.send_signal(signal.SIGTERM)
    assert share.process.process.wait(15) == 0
    with contextlib.suppress(OSError):
        out.close()
    assert not is_mounted(share.path)
    assert (share.root / "open.txt").read_bytes() == b"written, never closed"
    assert "committing open files" in share.process.output()


def test_mount_on_a_mounted_folder_is_refused(mount_share: MountFactory, tmp_path: Path) -> None:
    share = mount_share("memory")
    done = davstore("mount", share.path, tmp_path, base=tmp_path)
    assert done.returncode == 1 and "mounted there already" in done.stderr
    assert share.process.alive()
    assert os.listdir(share.path) == []


def test_a_mount_prints_no_libfuse_complaint(tmp_path: Path) -> None:
    """libfuse 3.14 complains of its own default idle-thread bound ("Ignoring invalid max
    threads value 4294967295 > max (100000)") unless the mount names one."""
    root, mnt = tmp_path / "root", tmp_path / "mnt"
    root.mkdir()
    mnt.mkdir()
    process = start_mount(mnt, [str(root)], base=tmp_path)
    try:
        (mnt / "f.txt").write_bytes(b"one request at least")
        assert (root / "f.txt").read_bytes() == b"one request at least"
    finally:
        assert process.stop() == 0
    output = process.output()
    assert "mounting" in output  # the log of the mount is there
    assert "Ignoring invalid" not in output and "max threads" not in output, output
