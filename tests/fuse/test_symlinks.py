"""Symbolic links in a local share's root never lead out of it through the mount (issue 20).

A real mount of a root holding links to the outside (absolute and relative, to a file and to
a folder), a link inside, a loop: every operation a shell makes, and the outside untouched.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fuse.conftest import MountFactory
from tests.hostile_links import DIR_LINKS, FILE_LINKS, OUTSIDE_BYTES, plant, snapshot


def _errno(call: object, *args: object) -> int:
    assert callable(call)
    with pytest.raises(OSError) as caught:
        call(*args)
    assert caught.value.errno is not None
    return caught.value.errno


def test_links_never_lead_out_of_the_mount(tmp_path: Path, mount_share: MountFactory) -> None:
    planted = plant(tmp_path)
    before = snapshot(planted.outside)
    share = mount_share("filesystem", root=planted.root)
    mnt = share.path
    assert sorted(os.listdir(mnt)) == ["a.txt", "real"]
    assert sorted(os.listdir(mnt / "real")) == ["b.txt"]
    for link in (*FILE_LINKS, "inlink"):
        assert _errno(os.stat, mnt / link) == errno.ENOENT
        assert _errno(open, mnt / link, "rb") == errno.ENOENT
        assert _errno(os.unlink, mnt / link) == errno.ENOENT
        assert _errno(os.rename, mnt / link, mnt / f"{link}-moved") == errno.ENOENT
    for link in DIR_LINKS:
        assert _errno(os.listdir, mnt / link) == errno.ENOENT
        assert _errno(open, mnt / link / "inner.txt", "rb") == errno.ENOENT
        assert _errno(open, mnt / link / "new.txt", "wb") == errno.ENOENT
        assert _errno(os.mkdir, mnt / link / "made") == errno.ENOENT
        assert _errno(os.rename, mnt / "a.txt", mnt / link / "a.txt") == errno.ENOENT
        assert _errno(os.unlink, mnt / link / "inner.txt") == errno.ENOENT
        assert _errno(os.rmdir, mnt / link) == errno.ENOENT
        assert _errno(shutil.copy, mnt / "a.txt", mnt / link / "x.txt") == errno.ENOENT
        assert _errno(os.mkdir, mnt / link) == errno.EEXIST  # the name is taken, not shown
        # rm -rf of the link's name: nothing there for the mount, nothing removed outside.
        subprocess.run(["rm", "-rf", str(mnt / link)], check=True, timeout=60)
    # A recursive walk meets no link and no loop; grep reads nothing from outside.
    found = subprocess.run(
        ["grep", "-r", OUTSIDE_BYTES.decode(), str(mnt)],
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert found.returncode == 1 and not found.stdout
    walked = subprocess.run(
        ["find", str(mnt)], capture_output=True, check=True, text=True, timeout=60
    )
    assert sorted(Path(p).relative_to(mnt).as_posix() for p in walked.stdout.split()) == [
        ".",
        "a.txt",
        "real",
        "real/b.txt",
    ]
    # Writing onto a link's name replaces the link; rm -r of a folder holding links
    # removes the links with it.
    (mnt / "link").write_bytes(b"replaced")
    assert (planted.root / "link").read_bytes() == b"replaced"
    assert not (planted.root / "link").is_symlink()
    subprocess.run(["rm", "-r", str(mnt / "real")], check=True, timeout=60)
    assert not os.path.lexists(planted.root / "real")
    assert (planted.root / "a.txt").read_bytes() == b"inside"
    snapshot_after = snapshot(planted.outside)
    assert snapshot_after == before
