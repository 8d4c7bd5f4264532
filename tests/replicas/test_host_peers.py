"""Processes of one host serving one share see each other's changes at once (host_peers.py),
not after their cache TTL."""

from __future__ import annotations

from pathlib import Path

import requests
from django.core.files.storage import FileSystemStorage

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.host_peers import FILE_NAME, SLOTS, HostPeers, share_with_host_peers
from tests.process import start_serve
from tests.webdav.state.test_state import LOCK_BODY


def test_a_change_is_seen_once_by_the_others_and_not_by_its_maker(tmp_path: Path) -> None:
    one, two = HostPeers(tmp_path / FILE_NAME), HostPeers(tmp_path / FILE_NAME)
    assert not one.changed() and not two.changed()
    one.announce()
    assert not one.changed()  # its own change: nothing to forget
    assert two.changed()
    assert not two.changed()  # seen: until the next one
    two.announce()
    two.announce()
    assert one.changed() and not one.changed()
    late = HostPeers(tmp_path / FILE_NAME)
    assert not late.changed()  # what happened before it came is not its business
    assert (tmp_path / FILE_NAME).stat().st_size == SLOTS * 8


def test_peers_on_one_slot_still_see_each_other(tmp_path: Path) -> None:
    one, two = HostPeers(tmp_path / FILE_NAME), HostPeers(tmp_path / FILE_NAME)
    two._offset = one._offset  # as two processes whose pids share a slot
    one.announce()
    assert two.changed()
    two.announce()
    assert one.changed()


def _two_vfs(tmp_path: Path, *, peers: bool) -> tuple[VFS, VFS]:
    root = tmp_path / "files"
    root.mkdir()
    made = []
    for _ in range(2):
        vfs = VFS(adapt(FileSystemStorage(location=str(root))), cache_ttl=600)
        if peers:
            assert share_with_host_peers(vfs, tmp_path / "state") is not None
        made.append(vfs)
    return made[0], made[1]


def _write(vfs: VFS, path: str, data: bytes) -> None:
    with vfs.open_write(path) as handle:
        handle.write(data)


def test_a_cached_absence_and_listing_are_forgotten_at_once(tmp_path: Path) -> None:
    writer, reader = _two_vfs(tmp_path, peers=True)
    writer.mkdir("docs")
    assert not reader.exists("docs/a.txt")
    assert [e.name for e in reader.listdir("docs")] == []
    _write(writer, "docs/a.txt", b"new")
    assert reader.exists("docs/a.txt")
    assert [e.name for e in reader.listdir("docs")] == ["docs/a.txt"]
    with reader.open_read("docs/a.txt") as handle:
        assert handle.read() == b"new"
    writer.remove("docs/a.txt")
    assert not reader.exists("docs/a.txt")


def test_without_peers_the_ttl_hides_the_change(tmp_path: Path) -> None:
    """The control: the same steps without the shared file (what the peers fix)."""
    writer, reader = _two_vfs(tmp_path, peers=False)
    writer.mkdir("docs")
    assert not reader.exists("docs/a.txt")
    _write(writer, "docs/a.txt", b"new")
    assert not reader.exists("docs/a.txt")


def test_an_unusable_state_folder_leaves_the_ttl(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path / "files"))))
    assert share_with_host_peers(vfs, blocker / "state") is None
    assert vfs.coherence is None


def test_two_servers_with_one_state_folder(tmp_path: Path) -> None:
    """Two ``davstore serve`` of one folder (as workers of one share): a folder made through
    one is usable through the other at once, with a cache TTL of a minute."""
    served = tmp_path / "files"
    served.mkdir()
    args = ["--anonymous", "--cache-ttl", "60", "--state-dir", str(tmp_path / "state")]
    with (
        start_serve([*args, str(served)], cwd=tmp_path) as one,
        start_serve([*args, str(served)], cwd=tmp_path) as two,
    ):
        # Both cache absences: the folder on two, the file on one.
        depth = {"Depth": "0"}
        assert (
            requests.request("PROPFIND", two.url + "docs", headers=depth, timeout=10).status_code
            == 404
        )
        assert requests.get(one.url + "docs/a.txt", timeout=10).status_code == 404
        assert requests.request("MKCOL", one.url + "docs", timeout=10).status_code == 201
        put = requests.put(two.url + "docs/a.txt", data=b"hello", timeout=10)
        assert put.status_code == 201, put.text
        got = requests.get(one.url + "docs/a.txt", timeout=10)
        assert (got.status_code, got.content) == (200, b"hello")
        # Their locks are one set too (sqlite_locks.py): a lock taken through one holds on
        # the other.
        lock = requests.request("LOCK", two.url + "docs/a.txt", data=LOCK_BODY, timeout=10)
        assert lock.status_code == 200
        assert requests.put(one.url + "docs/a.txt", data=b"x", timeout=10).status_code == 423
        token = {"Lock-Token": lock.headers["Lock-Token"]}
        assert requests.request("UNLOCK", one.url + "docs/a.txt", headers=token).status_code == 204
        assert requests.delete(one.url + "docs/a.txt", timeout=10).status_code == 204
        assert requests.get(two.url + "docs/a.txt", timeout=10).status_code == 404
