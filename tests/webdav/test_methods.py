"""WebDAV methods served in-process, on every store kind."""

from __future__ import annotations

import os
from xml.etree import ElementTree

from tests.webdav.serving import Share

DAV = "{DAV:}"
BLOB = os.urandom(3 << 20) + b"end"

LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def propfind(share: Share, path: str, depth: str, body: str | None = None) -> dict[str, dict]:
    """href -> {property name: element} of a PROPFIND answer."""
    response = share.request("PROPFIND", path, headers={"Depth": depth}, data=body)
    assert response.status_code == 207, response.text
    result: dict[str, dict] = {}
    for node in ElementTree.fromstring(response.content).iter(f"{DAV}response"):
        href = node.findtext(f"{DAV}href") or ""
        props = {}
        for propstat in node.iter(f"{DAV}propstat"):
            if "200" in (propstat.findtext(f"{DAV}status") or ""):
                for prop in propstat.find(f"{DAV}prop") or []:
                    props[prop.tag] = prop
        result[href] = props
    return result


def test_put_get_head(share: Share) -> None:
    created = share.request("PUT", "a.bin", data=BLOB)
    assert created.status_code == 201
    assert created.headers.get("ETag")
    response = share.request("GET", "a.bin")
    assert response.status_code == 200
    assert response.content == BLOB
    assert response.headers["Content-Length"] == str(len(BLOB))
    head = share.request("HEAD", "a.bin")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(BLOB))
    assert head.content == b""
    replaced = share.request("PUT", "a.bin", data=b"short")
    assert replaced.status_code == 204
    assert share.request("GET", "a.bin").content == b"short"


def test_put_of_a_new_file_saves_once(share: Share) -> None:
    calls: list[str] = []
    original = share.vfs.store.start_upload

    def counting(name: str, **kwargs: object) -> object:
        calls.append(name)
        return original(name, **kwargs)  # type: ignore[arg-type]

    share.vfs.store.start_upload = counting  # type: ignore[method-assign]
    assert share.request("PUT", "once.txt", data=b"x" * 1000).status_code == 201
    assert calls == ["once.txt"]


def test_chunked_put(share: Share) -> None:
    def body() -> object:
        for _ in range(5):
            yield b"0123456789" * 100_000

    response = share.request("PUT", "chunked.bin", data=body())
    assert response.status_code == 201
    assert share.request("GET", "chunked.bin").content == b"0123456789" * 500_000


def test_range_get(share: Share) -> None:
    share.request("PUT", "r.bin", data=BLOB)
    part = share.request("GET", "r.bin", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == BLOB[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(BLOB)}"
    tail = share.request("GET", "r.bin", headers={"Range": "bytes=-3"})
    assert tail.status_code == 206
    assert tail.content == b"end"


def test_etag_and_if_none_match(share: Share) -> None:
    share.request("PUT", "e.txt", data=b"one")
    etag = share.request("GET", "e.txt").headers["ETag"]
    assert etag.startswith('"')
    again = share.request("GET", "e.txt", headers={"If-None-Match": etag})
    assert again.status_code == 304
    share.request("PUT", "e.txt", data=b"two, longer")
    changed = share.request("GET", "e.txt", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert share.request("PUT", "e.txt", data=b"x", headers={"If-Match": etag}).status_code == 412


def test_propfind_depth_0_and_1(share: Share) -> None:
    share.request("MKCOL", "d")
    share.request("PUT", "d/f.txt", data=b"12345")
    share.request("MKCOL", "d/sub")
    zero = propfind(share, "d", "0")
    assert list(zero) == ["/d/"]
    assert zero["/d/"][f"{DAV}resourcetype"].find(f"{DAV}collection") is not None
    one = propfind(share, "d/", "1")
    assert set(one) == {"/d/", "/d/f.txt", "/d/sub/"}
    file_props = one["/d/f.txt"]
    assert file_props[f"{DAV}getcontentlength"].text == "5"
    assert file_props[f"{DAV}getetag"].text
    assert file_props[f"{DAV}getlastmodified"].text.endswith("GMT")


def test_quota_properties(share: Share) -> None:
    body = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
        "<D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>"
    )
    response = share.request("PROPFIND", "", headers={"Depth": "0"}, data=body)
    assert response.status_code == 207
    usage = share.vfs.usage()
    root = ElementTree.fromstring(response.content)
    if usage.used is None:
        assert root.find(f".//{DAV}quota-used-bytes/..") is not None  # reported as missing
    else:
        assert int(root.findtext(f".//{DAV}quota-used-bytes") or -1) >= 0
        assert int(root.findtext(f".//{DAV}quota-available-bytes") or -1) >= 0


def test_mkcol_delete(share: Share) -> None:
    assert share.request("MKCOL", "m").status_code == 201
    assert share.request("MKCOL", "m").status_code == 405
    assert share.request("MKCOL", "no/such").status_code == 409
    share.request("PUT", "m/x.txt", data=b"x")
    assert share.request("DELETE", "m").status_code == 204
    assert share.request("GET", "m/x.txt").status_code == 404
    assert share.request("DELETE", "m").status_code == 404


def test_copy_and_move(share: Share) -> None:
    share.request("MKCOL", "src")
    share.request("PUT", "src/a.txt", data=b"A")
    copied = share.request("COPY", "src", headers={"Destination": share("cp")})
    assert copied.status_code == 201
    assert share.request("GET", "cp/a.txt").content == b"A"
    refused = share.request(
        "COPY", "src/a.txt", headers={"Destination": share("cp/a.txt"), "Overwrite": "F"}
    )
    assert refused.status_code == 412
    moved = share.request("MOVE", "src", headers={"Destination": share("mv")})
    assert moved.status_code == 201
    assert share.request("GET", "mv/a.txt").content == b"A"
    assert share.request("PROPFIND", "src", headers={"Depth": "0"}).status_code == 404
    over = share.request("MOVE", "mv/a.txt", headers={"Destination": share("cp/a.txt")})
    assert over.status_code == 204


def test_lock_and_unlock(share: Share) -> None:
    share.request("PUT", "l.txt", data=b"locked")
    lock = share.request("LOCK", "l.txt", data=LOCK_BODY, headers={"Timeout": "Second-60"})
    assert lock.status_code == 200
    token = lock.headers["Lock-Token"]
    assert share.request("PUT", "l.txt", data=b"other").status_code == 423
    with_token = share.request("PUT", "l.txt", data=b"mine", headers={"If": f"({token})"})
    assert with_token.status_code == 204
    assert share.request("UNLOCK", "l.txt", headers={"Lock-Token": token}).status_code == 204
    assert share.request("PUT", "l.txt", data=b"free").status_code == 204


def test_lock_on_unmapped_url_creates_an_empty_file(share: Share) -> None:
    lock = share.request("LOCK", "new.txt", data=LOCK_BODY)
    assert lock.status_code == 201
    assert share.request("GET", "new.txt").content == b""


def test_proppatch_and_dead_properties(share: Share) -> None:
    share.request("PUT", "p.txt", data=b"p")
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
    )
    assert share.request("PROPPATCH", "p.txt", data=body).status_code == 207
    props = propfind(share, "p.txt", "0")["/p.txt"]
    assert props["{urn:x-test:}colour"].text == "blue"
    share.request("MOVE", "p.txt", headers={"Destination": share("q.txt")})
    assert propfind(share, "q.txt", "0")["/q.txt"]["{urn:x-test:}colour"].text == "blue"
    share.request("DELETE", "q.txt")
    share.request("PUT", "q.txt", data=b"new")
    assert "{urn:x-test:}colour" not in propfind(share, "q.txt", "0")["/q.txt"]


def test_directory_listing_in_html(share: Share) -> None:
    share.request("MKCOL", "html")
    share.request("PUT", "html/page.txt", data=b"x")
    response = share.request("GET", "html/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "page.txt" in response.text


def test_get_on_a_keep_alive_connection_after_errors(share: Share) -> None:
    for _ in range(3):
        assert share.request("GET", "missing.txt").status_code == 404
    share.request("PUT", "ok.txt", data=b"ok")
    assert share.request("GET", "ok.txt").content == b"ok"


def test_options_advertises_class_2(share: Share) -> None:
    response = share.request("OPTIONS", "")
    assert "2" in response.headers["DAV"]
    assert "LOCK" in response.headers["Allow"]
