"""Dead properties and locks: where they live, and that they survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from davstore.frontends.webdav import create_app
from davstore.frontends.webdav.state import SqlitePropertyManager
from davstore.store import adapt
from davstore.vfs import VFS
from tests.webdav.serving import serve_share

SET_COLOUR = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:set><D:prop><Z:colour>green</Z:colour></D:prop></D:set></D:propertyupdate>"
)
GET_COLOUR = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:prop><Z:colour/></D:prop></D:propfind>"
)
LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def storage_at(tmp_path: Path) -> FileSystemStorage:
    return FileSystemStorage(location=str(tmp_path / "media"))


@pytest.mark.parametrize("url", [None, "sqlite:///{tmp}/props.db", "shelve:///{tmp}/props"])
def test_dead_properties_survive_a_restart(tmp_path: Path, url: str | None) -> None:
    state = tmp_path / "state"
    options = {} if url is None else {"property_storage": url.format(tmp=tmp_path)}
    with serve_share(storage_at(tmp_path), state, **options) as share:
        share.request("PUT", "p.txt", data=b"p")
        share.request("MKCOL", "d")
        assert share.request("PROPPATCH", "p.txt", data=SET_COLOUR).status_code == 207
        assert share.request("PROPPATCH", "d", data=SET_COLOUR).status_code == 207
    with serve_share(storage_at(tmp_path), state, **options) as share:
        for path in ("p.txt", "d/"):
            found = share.request("PROPFIND", path, data=GET_COLOUR, headers={"Depth": "0"})
            assert found.status_code == 207
            assert "green" in found.text, path
    if url is None:
        assert (state / "properties.sqlite3").exists()


def test_memory_properties_do_not_survive(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve_share(storage_at(tmp_path), state, property_storage="memory:") as share:
        share.request("PUT", "p.txt", data=b"p")
        share.request("PROPPATCH", "p.txt", data=SET_COLOUR)
    with serve_share(storage_at(tmp_path), state, property_storage="memory:") as share:
        found = share.request("PROPFIND", "p.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" not in found.text


def test_locks_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve_share(storage_at(tmp_path), state) as share:
        share.request("PUT", "l.txt", data=b"l")
        token = share.request("LOCK", "l.txt", data=LOCK_BODY).headers["Lock-Token"]
    with serve_share(storage_at(tmp_path), state) as share:
        assert share.request("PUT", "l.txt", data=b"x").status_code == 423
        assert share.request("UNLOCK", "l.txt", headers={"Lock-Token": token}).status_code == 204


def test_deleting_a_folder_drops_the_properties_below_it(tmp_path: Path) -> None:
    with serve_share(InMemoryStorage(), tmp_path / "state") as share:
        share.request("MKCOL", "d")
        share.request("PUT", "d/f.txt", data=b"f")
        share.request("PROPPATCH", "d/f.txt", data=SET_COLOUR)
        share.request("DELETE", "d")
        share.request("MKCOL", "d")
        share.request("PUT", "d/f.txt", data=b"again")
        found = share.request("PROPFIND", "d/f.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" not in found.text


@pytest.mark.parametrize("url", ["redis:///0", "ftp://x", "sqlite://host/x", "bogus"])
def test_unknown_state_urls_are_refused(tmp_path: Path, url: str) -> None:
    vfs = VFS(adapt(InMemoryStorage()))
    with pytest.raises(ValueError, match="state"):
        create_app(vfs, users=None, state_dir=tmp_path, lock_storage=url)
    with pytest.raises(ValueError, match="state"):
        create_app(vfs, users=None, state_dir=tmp_path, property_storage=url)


def test_sqlite_property_manager_moves_trees(tmp_path: Path) -> None:
    manager = SqlitePropertyManager(str(tmp_path / "p.db"))
    try:
        manager.write_property("/a/", "{x}p", b"<p/>")
        manager.write_property("/a/b.txt", "{x}p", b"<b/>")
        manager.write_property("/ab.txt", "{x}p", b"<ab/>")
        manager.move_properties("/a/", "/z/", with_children=True)
        assert manager.get_property("/z/b.txt", "{x}p") == b"<b/>"
        assert manager.get_property("/z/", "{x}p") == b"<p/>"
        assert manager.get_property("/ab.txt", "{x}p") == b"<ab/>"
        assert manager.get_properties("/a/b.txt") == []
        manager.remove_tree("/z/")
        assert manager.get_properties("/z/b.txt") == []
        assert manager.get_property("/ab.txt", "{x}p") == b"<ab/>"
    finally:
        manager.close()


def check_replace_tree(manager: Any) -> None:
    """``replace_tree`` (a folder's COPY onto a folder): the destination tree's dead
    properties become the source's, but for the trees kept, and nothing outside moves."""
    for url, value in (
        ("/src/", b"<src/>"),
        ("/src/a.txt", b"<a/>"),
        ("/src/sub/b.txt", b"<b/>"),
        ("/src/kept.txt", b"<new/>"),
        ("/dst/", b"<old dst/>"),
        ("/dst/a.txt", b"<old a/>"),
        ("/dst/gone.txt", b"<gone/>"),
        ("/dst/kept.txt", b"<old kept/>"),
        ("/dst/stays/c.txt", b"<c/>"),
        ("/dstx.txt", b"<beside/>"),
    ):
        manager.write_property(url, "{x}p", value)
    manager.replace_tree("/src/", "/dst/", ["/dst/kept.txt", "/dst/stays"])
    found = {
        url: manager.get_property(url, "{x}p")
        for url in (
            "/dst/",
            "/dst/a.txt",
            "/dst/sub/b.txt",
            "/dst/gone.txt",
            "/dst/kept.txt",
            "/dst/stays/c.txt",
            "/dstx.txt",
            "/src/a.txt",
        )
    }
    assert found == {
        "/dst/": b"<src/>",
        "/dst/a.txt": b"<a/>",
        "/dst/sub/b.txt": b"<b/>",
        "/dst/gone.txt": None,
        "/dst/kept.txt": b"<old kept/>",
        "/dst/stays/c.txt": b"<c/>",
        "/dstx.txt": b"<beside/>",
        "/src/a.txt": b"<a/>",
    }
    assert manager.get_properties("/dst/gone.txt") == []


def test_sqlite_property_manager_replaces_trees(tmp_path: Path) -> None:
    manager = SqlitePropertyManager(str(tmp_path / "p.db"))
    try:
        check_replace_tree(manager)
    finally:
        manager.close()
