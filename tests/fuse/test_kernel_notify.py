"""A mount tells the kernel what the share's journal says changed behind it
(davstore/frontends/fuse/notify.py): with kernel and VFS caches far longer than the test,
``stat``, ``cat`` and ``ls`` in the mount show a write the site made through its own
Storage (the file written behind the mount, the change journaled and announced as
davstore.site.announce does) at once, however the kernel had cached the path before:
known missing, known with the old content, in a folder known missing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
from davstore.vfs.host_peers import HostPeers
from davstore.vfs.journal import FILE_NAME as JOURNAL_FILE
from davstore.vfs.journal import Journal, Record
from tests.fuse.mounting import MountProcess, start_mount, wait_until

pytestmark = pytest.mark.fuse

#: Far longer than the test: only a notification can make the kernel ask again.
LONG = ["--cache-ttl", "3600"]
#: How long a change may take to show (a bound for a loaded machine, not a goal).
SHOWS_WITHIN = 20.0


class Site:
    """Writes behind the mount as the site does: the file, then its journal record and
    the host-peers announcement."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self.journal = Journal(state_dir / JOURNAL_FILE)
        self.peers = HostPeers(state_dir / PEERS_FILE)

    def save(self, name: str, content: bytes) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self._announce("created", name)

    def delete(self, name: str) -> None:
        (self.root / name).unlink()
        self._announce("deleted", name)

    def _announce(self, action: str, name: str) -> None:
        record = Record(action, name, origin="site", at=time.time(), writer="the-site")
        self.journal.append(record)
        self.peers.announce()

    def close(self) -> None:
        self.journal.close()
        self.peers.close()


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[Path, Site, MountProcess]]:
    root = tmp_path / "files"
    root.mkdir()
    (root / "old.txt").write_bytes(b"old")
    (root / "gone.txt").write_bytes(b"to be deleted")
    (root / "sub").mkdir()
    mount = start_mount(tmp_path / "mnt", [str(root), *LONG], base=tmp_path)
    try:
        (state_dir,) = {p.parent for p in (tmp_path / "xdg-state").rglob(JOURNAL_FILE)}
        site = Site(root, state_dir)
        try:
            yield mount.mountpoint, site, mount
        finally:
            site.close()
    finally:
        mount.stop()


def _shows(check: Callable[[], bool], mount: MountProcess) -> None:
    try:
        wait_until(check, timeout=SHOWS_WITHIN)
    except TimeoutError:
        pytest.fail(
            f"not seen in the mount within {SHOWS_WITHIN} s; log:\n{mount.output()[-3000:]}"
        )


def _exists(path: Path) -> Callable[[], bool]:
    return lambda: os.path.lexists(path)


def test_a_site_write_shows_in_stat_cat_and_ls_at_once(
    mounted: tuple[Path, Site, MountProcess],
) -> None:
    mnt, site, mount = mounted
    # The kernel caches each path as it is now: missing, old content, folder missing.
    assert not (mnt / "new.txt").exists()
    assert not (mnt / "sub" / "deep.txt").exists()
    assert not (mnt / "made" / "inside.txt").exists()
    assert (mnt / "old.txt").read_bytes() == b"old"
    assert (mnt / "old.txt").stat().st_size == 3
    assert (mnt / "gone.txt").stat().st_size == 13
    assert sorted(os.listdir(mnt)) == ["gone.txt", "old.txt", "sub"]

    site.save("new.txt", b"made by the site")
    site.save("sub/deep.txt", b"deeper")
    site.save("made/inside.txt", b"in a new folder")
    site.save("old.txt", b"new content, longer")
    site.delete("gone.txt")

    _shows(_exists(mnt / "new.txt"), mount)
    assert (mnt / "new.txt").stat().st_size == len(b"made by the site")
    assert (mnt / "new.txt").read_bytes() == b"made by the site"
    _shows(_exists(mnt / "sub" / "deep.txt"), mount)
    assert (mnt / "sub" / "deep.txt").read_bytes() == b"deeper"
    _shows(_exists(mnt / "made" / "inside.txt"), mount)
    assert (mnt / "made" / "inside.txt").read_bytes() == b"in a new folder"
    _shows(lambda: (mnt / "old.txt").stat().st_size == len(b"new content, longer"), mount)
    assert (mnt / "old.txt").read_bytes() == b"new content, longer"
    _shows(lambda: not os.path.lexists(mnt / "gone.txt"), mount)
    assert sorted(os.listdir(mnt)) == ["made", "new.txt", "old.txt", "sub"]
    assert os.listdir(mnt / "sub") == ["deep.txt"]


def test_a_write_behind_everyones_back_shows_at_the_next_revalidation(tmp_path: Path) -> None:
    """No journal tells of a file another program wrote into the folder: the mount's
    revalidation finds it and tells the kernel, whose own timeouts are an hour."""
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "old.txt").write_bytes(b"old")
    mount = start_mount(tmp_path / "mnt", [str(root), *LONG, "--revalidate", "0.2"], base=tmp_path)
    try:
        mnt = mount.mountpoint
        assert not (mnt / "sub" / "new.txt").exists()
        assert (mnt / "sub" / "old.txt").stat().st_size == 3
        assert os.listdir(mnt / "sub") == ["old.txt"]
        (root / "sub" / "new.txt").write_bytes(b"another program")
        (root / "sub" / "old.txt").write_bytes(b"rewritten")
        _shows(_exists(mnt / "sub" / "new.txt"), mount)
        assert (mnt / "sub" / "new.txt").read_bytes() == b"another program"
        _shows(lambda: (mnt / "sub" / "old.txt").stat().st_size == len(b"rewritten"), mount)
        assert (mnt / "sub" / "old.txt").read_bytes() == b"rewritten"
    finally:
        mount.stop()
