"""A WebDAV DELETE is kept in the share's trash, on every store kind, and the trash never
shows over WebDAV."""

from __future__ import annotations

from davstore.vfs.trash import Trash
from tests.webdav.serving import USER, Share

DEPTH_1 = {"Depth": "1"}


def test_a_webdav_delete_is_kept_and_the_trash_never_shows(share: Share) -> None:
    trash = Trash(share.vfs).install()
    assert share.request("MKCOL", "album").status_code == 201
    assert share.request("PUT", "album/one.jpg", data=b"1").status_code == 201
    assert share.request("PUT", "album/two.jpg", data=b"22").status_code == 201
    assert share.request("PUT", "note.txt", data=b"note").status_code == 201
    assert share.request("DELETE", "note.txt").status_code == 204
    assert share.request("DELETE", "album").status_code == 204
    assert share.request("GET", "note.txt").status_code == 404
    for path in ("", "album"):
        answer = share.request("PROPFIND", path, headers=DEPTH_1)
        assert answer.status_code in (207, 404)
        assert "davstore-" not in answer.text
    for method in ("GET", "PROPFIND", "DELETE"):
        assert share.request(method, ".davstore-trash/").status_code == 400
    entries = trash.entries()
    assert [(e.path, e.kind, e.is_dir, e.size, e.user, e.origin) for e in entries] == [
        ("note.txt", "deleted", False, 4, USER, "webdav"),
        ("album", "deleted", True, 3, USER, "webdav"),
    ]
    trash.restore(entries[1].id)
    assert share.request("GET", "album/two.jpg").content == b"22"


def test_a_webdav_copy_onto_a_folder_keeps_what_it_replaces_and_removes(share: Share) -> None:
    trash = Trash(share.vfs).install()
    for folder in ("src", "dst", "dst/only"):
        assert share.request("MKCOL", folder).status_code == 201
    for path, data in (("src/a.txt", b"new"), ("dst/a.txt", b"old a"), ("dst/only/b", b"b")):
        assert share.request("PUT", path, data=data).status_code == 201
    answer = share.request("COPY", "src", headers={"Destination": share("dst")})
    assert answer.status_code == 204
    assert share.request("GET", "dst/a.txt").content == b"new"
    assert share.request("PROPFIND", "dst/only", headers=DEPTH_1).status_code == 404
    assert sorted((e.path, e.kind, e.is_dir, e.size) for e in trash.entries()) == [
        ("dst/a.txt", "replaced", False, 5),
        ("dst/only", "deleted", True, 1),
    ]
