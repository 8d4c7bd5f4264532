"""Desktop clients' habits (davstore/frontends/webdav/desktop.py): OPTIONS before login,
Win32 properties, Finder's chunked PUT and NFD names, names wsgidav's Destination parsing
used to cut."""

from __future__ import annotations

import inspect
import os
import unicodedata
from email.utils import formatdate
from pathlib import Path

import requests
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from lxml import etree

from tests.webdav.rawhttp import raw_request
from tests.webdav.serving import Share, serve_share

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner><D:href>WIN\\alice</D:href></D:owner></D:lockinfo>"
)


def win32_proppatch(when: float) -> bytes:
    stamp = formatdate(when, usegmt=True)
    return (
        '<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:"'
        ' xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
        f"<Z:Win32CreationTime>{stamp}</Z:Win32CreationTime>"
        f"<Z:Win32LastAccessTime>{stamp}</Z:Win32LastAccessTime>"
        f"<Z:Win32LastModifiedTime>{stamp}</Z:Win32LastModifiedTime>"
        "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    ).encode()


def prop_values(share: Share, path: str, *names: str) -> dict[str, str | None]:
    body = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">'
        "<D:prop>" + "".join(f"<{n}/>" for n in names) + "</D:prop></D:propfind>"
    )
    response = share.request("PROPFIND", path, headers={"Depth": "0"}, data=body)
    assert response.status_code == 207, response.text
    tree = etree.fromstring(response.content)
    found: dict[str, str | None] = {}
    for propstat in tree.iter("{DAV:}propstat"):
        if "200" not in propstat.findtext("{DAV:}status", ""):
            continue
        for prop in propstat.find("{DAV:}prop"):
            found[etree.QName(prop).localname] = prop.text
    return found


# -- OPTIONS before login --------------------------------------------------------------------


def test_options_without_credentials_is_answered_on_any_path(share: Share) -> None:
    for path in ("", "nowhere/at/all.docx", "folder/"):
        response = requests.options(share(path), timeout=10)
        assert response.status_code == 200, path
        assert response.headers["DAV"] == "1,2"
        assert response.headers["MS-Author-Via"] == "DAV"
        assert {"PROPFIND", "LOCK", "UNLOCK", "PUT"} <= set(
            response.headers["Allow"].replace(" ", "").split(",")
        )
        assert "WWW-Authenticate" not in response.headers


def test_everything_else_still_needs_credentials(share: Share) -> None:
    for method in ("GET", "PROPFIND", "PUT", "LOCK", "DELETE"):
        assert requests.request(method, share("x.txt"), timeout=10).status_code == 401


def test_options_with_credentials_is_wsgidavs_and_names_ms_author_via(share: Share) -> None:
    response = share.request("OPTIONS", "")
    assert response.status_code == 200
    assert response.headers["MS-Author-Via"] == "DAV"
    assert response.headers["DAV"] == "1,2"
    assert requests.options(share(""), auth=("alice", "wrong"), timeout=10).status_code == 401


def test_options_on_a_read_only_share_advertises_class_1(tmp_path: Path) -> None:
    with serve_share(InMemoryStorage(), tmp_path / "state", read_only=True) as share:
        response = requests.options(share(""), timeout=10)
        assert response.headers["DAV"] == "1"
        assert "PUT" not in response.headers["Allow"]


# -- Win32 properties ------------------------------------------------------------------------


def test_win32_properties_are_kept_and_set_the_modification_time(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as share:
        share.request("PUT", "w.txt", data=b"windows")
        when = 1_600_000_000.0
        response = share.request("PROPPATCH", "w.txt", data=win32_proppatch(when))
        assert response.status_code == 207
        assert response.text.count("200 OK") >= 1 and "403" not in response.text
        assert os.stat(tmp_path / "media" / "w.txt").st_mtime == when
        values = prop_values(
            share, "w.txt", "Z:Win32FileAttributes", "Z:Win32LastModifiedTime", "D:getlastmodified"
        )
        assert values["Win32FileAttributes"] == "00000020"
        assert values["getlastmodified"] == formatdate(when, usegmt=True)
        assert values["Win32LastModifiedTime"] == formatdate(when, usegmt=True)
        assert share.request("HEAD", "w.txt").headers["Last-Modified"] == formatdate(
            when, usegmt=True
        )


def test_win32_time_on_a_store_without_settable_times_is_kept_as_a_property(
    tmp_path: Path,
) -> None:
    with serve_share(InMemoryStorage(), tmp_path / "state") as share:
        share.request("PUT", "w.txt", data=b"windows")
        response = share.request("PROPPATCH", "w.txt", data=win32_proppatch(1_500_000_000))
        assert response.status_code == 207 and "403" not in response.text
        values = prop_values(share, "w.txt", "Z:Win32LastModifiedTime")
        assert values["Win32LastModifiedTime"] == formatdate(1_500_000_000, usegmt=True)


def test_an_unreadable_win32_time_is_kept_and_changes_nothing(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as share:
        share.request("PUT", "w.txt", data=b"windows")
        before = os.stat(tmp_path / "media" / "w.txt").st_mtime
        body = win32_proppatch(0).replace(b"Thu, 01 Jan 1970 00:00:00 GMT", b"yesterday")
        assert share.request("PROPPATCH", "w.txt", data=body).status_code == 207
        assert os.stat(tmp_path / "media" / "w.txt").st_mtime == before


def test_explorer_upload_sequence_leaves_one_file_with_its_time(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as share:
        agent = {"User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045"}
        assert share.request("PUT", "report.pdf", data=b"", headers=agent).status_code == 201
        lock = share.request(
            "LOCK",
            "report.pdf",
            data=LOCK_BODY,
            headers={**agent, "Timeout": "Second-3600", "Depth": "0"},
        )
        assert lock.status_code == 200
        token = lock.headers["Lock-Token"].strip("<>")
        when = 1_650_000_000.0
        patched = share.request(
            "PROPPATCH",
            "report.pdf",
            data=win32_proppatch(when),
            headers={**agent, "If": f"(<{token}>)"},
        )
        assert patched.status_code == 207
        assert share.request("PUT", "report.pdf", data=b"locked?").status_code == 423
        put = share.request(
            "PUT", "report.pdf", data=b"%PDF-1.7 bytes", headers={**agent, "If": f"(<{token}>)"}
        )
        assert put.status_code == 204
        unlock = share.request(
            "UNLOCK", "report.pdf", headers={**agent, "Lock-Token": f"<{token}>"}
        )
        assert unlock.status_code == 204
        assert os.listdir(tmp_path / "media") == ["report.pdf"]
        assert (tmp_path / "media" / "report.pdf").read_bytes() == b"%PDF-1.7 bytes"
        assert os.stat(tmp_path / "media" / "report.pdf").st_mtime == when


# -- Finder ----------------------------------------------------------------------------------


def chunked(body: bytes, size: int = 1000) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_finder_chunked_put_with_expected_entity_length(share: Share) -> None:
    data = os.urandom(5000)
    status, _ = raw_request(
        share.url,
        "PUT",
        "/finder.bin",
        headers={
            "Transfer-Encoding": "chunked",
            "X-Expected-Entity-Length": str(len(data)),
            "User-Agent": "WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (arm64)",
            "Content-Length": None,
        },
        body=chunked(data),
    )
    assert status == 201
    assert share.request("GET", "finder.bin").content == data


def test_chunked_put_shorter_than_announced_keeps_the_old_content(share: Share) -> None:
    share.request("PUT", "finder.bin", data=b"old")
    status, _ = raw_request(
        share.url,
        "PUT",
        "/finder.bin",
        headers={
            "Transfer-Encoding": "chunked",
            "X-Expected-Entity-Length": "5000",
            "Content-Length": None,
        },
        body=chunked(b"x" * 100),
    )
    assert status == 400
    assert share.request("GET", "finder.bin").content == b"old"


def test_expected_entity_length_over_the_upload_limit_is_413(tmp_path: Path) -> None:
    with serve_share(InMemoryStorage(), tmp_path / "state", max_upload_size=100) as share:
        status, _ = raw_request(
            share.url,
            "PUT",
            "/big.bin",
            headers={
                "Transfer-Encoding": "chunked",
                "X-Expected-Entity-Length": "5000",
                "Content-Length": None,
            },
            body=chunked(b"x" * 50),
        )
        assert status == 413
        assert share.request("GET", "big.bin").status_code == 404


def test_nfd_and_nfc_names_reach_the_same_file_lock_and_properties(share: Share) -> None:
    nfc = unicodedata.normalize("NFC", "Café Ünïcode.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    assert share.request("PUT", nfd, data=b"from finder").status_code == 201
    assert share.request("GET", nfc).content == b"from finder"
    listing = share.request("PROPFIND", "", headers={"Depth": "1"})
    hrefs = [h.text for h in etree.fromstring(listing.content).iter("{DAV:}href")]
    assert hrefs == ["/", requests.utils.quote("/" + nfc, safe="/")]
    lock = share.request("LOCK", nfd, data=LOCK_BODY, headers={"Depth": "0"})
    token = lock.headers["Lock-Token"]
    assert share.request("PUT", nfc, data=b"sneaky").status_code == 423
    assert share.request("PUT", nfc, data=b"mine", headers={"If": f"({token})"}).status_code == 204
    assert share.request("UNLOCK", nfc, headers={"Lock-Token": token}).status_code == 204
    target = share(requests.utils.quote("Ñandú " + nfd))
    moved = share.request("MOVE", nfc, headers={"Destination": target})
    assert moved.status_code == 201
    assert share.request("GET", unicodedata.normalize("NFC", "Ñandú " + nfd)).content == b"mine"


def test_destinations_with_query_and_semicolon_characters_keep_their_name(share: Share) -> None:
    share.request("PUT", "a.txt", data=b"a")
    target = "q?uery;x #1 100%.txt"
    quoted = requests.utils.quote(target, safe="")
    assert share.request("MOVE", "a.txt", headers={"Destination": share(quoted)}).status_code == 201
    assert share.request("GET", quoted).content == b"a"
    copy = share.request("COPY", quoted, headers={"Destination": share("c%3Bd%3Fe.txt")})
    assert copy.status_code == 201
    assert share.request("GET", "c%3Bd%3Fe.txt").content == b"a"


def test_wsgidav_reads_destination_only_where_the_fix_applies() -> None:
    from wsgidav import request_server

    source = inspect.getsource(request_server)
    assert source.count("unquote(") == 1 and source.count("urlparse(") == 1
    assert 'unquote(environ["HTTP_DESTINATION"])' in source
