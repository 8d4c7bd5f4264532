"""Names on the local disk resolve beneath the root, never through a link
(davstore/store/beneath.py), with ``openat2`` and with the component walk of kernels
without it: both give the same answers on every primitive of the store."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from davstore.errors import AlreadyExists, InvalidPath, NotFound
from davstore.store import beneath
from davstore.store.filesystem import FileSystemStore
from davstore.vfs import VFS
from tests.hostile_links import DIR_LINKS, FILE_LINKS, OUTSIDE_BYTES, Planted, plant, snapshot


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "walk":
        monkeypatch.setattr(beneath, "_SYSCALL", None)
    else:
        assert beneath.OPENAT2  # this kernel (6.x) has it: the test must take that path
    yield str(request.param)


@pytest.fixture(params=["quick", "plain"])
def store(
    request: pytest.FixtureRequest, resolver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FileSystemStore:
    """The store over a planted root; ``plain``: without the GIL-keeping cached calls."""
    plant(tmp_path)
    made = FileSystemStore(FileSystemStorage(location=str(tmp_path / "root")))
    if request.param == "plain":
        monkeypatch.setattr(made, "_cached_io", None)
    return made


@pytest.fixture
def planted(tmp_path: Path, store: FileSystemStore) -> Planted:
    return Planted(tmp_path / "root", tmp_path / "outside")


def test_reads_never_follow_a_link(store: FileSystemStore, planted: Planted) -> None:
    before = snapshot(planted.outside)
    for name in (*FILE_LINKS, "inlink", *DIR_LINKS, "dirlink/inner.txt", "real/loop/a.txt"):
        assert store.find(name) is None
        with pytest.raises(NotFound):
            store.head(name)
        with pytest.raises(NotFound):
            store.open_read(name)
        with contextlib.suppress(NotFound):  # NotFound, or None from the plain store
            assert store.read_small(name, 1 << 16) is None
    for name in DIR_LINKS:
        with pytest.raises(NotFound):
            list(store.list(name))
    assert sorted(e.name for e in store.list("")) == ["a.txt", "real"]
    assert sorted(e.name for e in store.list("real")) == ["real/b.txt"]
    with store.open_read("a.txt") as stream:
        assert stream.read() == b"inside"
    planted.unchanged(before)


def test_changes_act_on_the_link_itself(store: FileSystemStore, planted: Planted) -> None:
    before = snapshot(planted.outside)
    for folder in DIR_LINKS:
        with pytest.raises(NotFound):
            store.start_upload(f"{folder}/new.txt", spool_dir=None, spool_memory=0)
        with pytest.raises(NotFound):
            store.make_dir(f"{folder}/made")
        with pytest.raises(AlreadyExists):
            store.make_dir(folder)
        with pytest.raises(NotFound):
            store.delete(f"{folder}/inner.txt")
        with pytest.raises(NotFound):
            store.remove_dir(f"{folder}/deeper")
        with pytest.raises(NotFound):
            store.rename("a.txt", f"{folder}/a.txt")
        with pytest.raises(NotFound):
            store.rename(f"{folder}/inner.txt", "stolen.txt")
        with pytest.raises(NotFound):
            store.copy(f"{folder}/inner.txt", "stolen.txt")
        with pytest.raises(NotFound):
            store.copy("a.txt", f"{folder}/a.txt")
        with pytest.raises(NotFound):
            store.set_mtime(f"{folder}/inner.txt", 0)
    with pytest.raises(NotFound):
        store.set_mtime("link", 0)
    with pytest.raises(NotFound):
        store.copy("link", "stolen.txt")
    # A delete removes the link, never its target (a folder's, too).
    store.delete("dirlink")
    store.delete("link")
    assert not os.path.lexists(planted.root / "dirlink")
    assert not os.path.lexists(planted.root / "link")
    # A write onto a link's name replaces the link.
    upload = store.start_upload("rellink", spool_dir=None, spool_memory=0)
    upload.file.write(b"new")
    upload.commit()
    assert (planted.root / "rellink").read_bytes() == b"new"
    # A folder that looks empty is removed with the links it holds.
    store.delete("real/b.txt")
    store.remove_dir("real")
    assert not os.path.lexists(planted.root / "real")
    planted.unchanged(before)
    assert OUTSIDE_BYTES in (planted.outside / "secret.txt").read_bytes()


def test_a_link_swapped_in_for_a_folder_is_not_followed(
    store: FileSystemStore, planted: Planted
) -> None:
    """A folder replaced by a link between two requests (the VFS saw a folder)."""
    (planted.root / "d").mkdir()
    upload = store.start_upload("d/f.txt", spool_dir=None, spool_memory=0)
    (planted.root / "d").rename(planted.root / "d-old")
    (planted.root / "d").symlink_to(planted.outside / "dir")
    upload.file.write(b"x")
    upload.commit()  # into the folder resolved at the start, now d-old
    assert (planted.root / "d-old" / "f.txt").read_bytes() == b"x"
    assert not (planted.outside / "dir" / "f.txt").exists()
    with pytest.raises(NotFound):
        store.start_upload("d/g.txt", spool_dir=None, spool_memory=0)


def test_names_that_are_not_relative_are_refused(store: FileSystemStore) -> None:
    for name in ("../outside/secret.txt", "/etc/passwd", "real/../a.txt", "a//b", "./a.txt"):
        with pytest.raises(InvalidPath):
            store.head(name)
    assert store.head("a.txt").size == 6


def test_the_location_made_anew_is_opened_again(tmp_path: Path, resolver: str) -> None:
    root = tmp_path / "root"
    store = FileSystemStore(FileSystemStorage(location=str(root)))
    (root / "a").write_bytes(b"1")
    os.rename(root, tmp_path / "gone")
    root.mkdir()
    (root / "b").write_bytes(b"2")
    assert store.head("b").size == 1
    vfs = VFS(store, cache_ttl=0)
    vfs.write_file("c", b"3")
    assert (root / "c").read_bytes() == b"3"


def test_the_location_may_itself_be_a_link(tmp_path: Path, resolver: str) -> None:
    """The administrator's choice (MEDIA_ROOT -> /data/media): followed, once."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(b"f")
    (tmp_path / "media").symlink_to(tmp_path / "data")
    store = FileSystemStore(FileSystemStorage(location=str(tmp_path / "media")))
    with store.open_read("f") as stream:
        assert stream.read() == b"f"


def test_a_loop_is_not_found(store: FileSystemStore, planted: Planted) -> None:
    (planted.root / "self").symlink_to("self")
    with pytest.raises(NotFound) as caught:
        store.head("self/x")
    assert caught.value.errno == errno.ENOENT


def test_what_davstore_writes_is_what_the_site_reads(tmp_path: Path, resolver: str) -> None:
    """Django's FileSystemStorage semantics: the same names, regular files and folders,
    the storage's permission modes; and the site's own files are davstore's."""
    storage = FileSystemStorage(
        location=str(tmp_path / "media"),
        file_permissions_mode=0o640,
        directory_permissions_mode=0o750,
    )
    vfs = VFS(FileSystemStore(storage), cache_ttl=0)
    vfs.mkdir("docs")
    vfs.mkdir("docs/2026")
    vfs.write_file("docs/2026/report.txt", b"from davstore")
    path = Path(storage.path("docs/2026/report.txt"))
    assert path.is_file() and not path.is_symlink()
    assert path.stat().st_mode & 0o777 == 0o640
    assert Path(storage.path("docs/2026")).stat().st_mode & 0o777 == 0o750
    with storage.open("docs/2026/report.txt") as opened:
        assert opened.read() == b"from davstore"
    assert storage.listdir("docs/2026") == ([], ["report.txt"])
    saved = storage.save("docs/site.txt", ContentFile(b"from the site"))
    with vfs.open_read(saved) as handle:
        assert handle.read() == b"from the site"
