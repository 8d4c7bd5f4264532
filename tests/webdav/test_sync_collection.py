"""WebDAV sync-collection (RFC 6578) from the share's change journal (frontends/webdav/sync.py,
vfs/sync.py): the RFC's flow of an initial sync, then only what changed, on every store kind;
changes by another process of the share; tokens that cannot be continued from."""

from __future__ import annotations

import base64
import contextlib
import http.client
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import Storage
from lxml import etree

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.host_peers import HostPeers, share_with_host_peers
from davstore.vfs.journal import FILE_NAME, Journal, Record
from tests.webdav.serving import Share, serve_share
from tests.webdav.syncclient import DAV, SyncClient, report


@contextlib.contextmanager
def served_with_journal(storage: Storage, tmp_path: Path) -> Iterator[Share]:
    """A served share following the change journal in its state folder, as every
    ``davstore serve``, worker and site share does."""
    with serve_share(storage, tmp_path / "state") as share:
        peers = share_with_host_peers(share.vfs, tmp_path / "state")
        assert peers is not None
        try:
            yield share
        finally:
            peers.close()


@pytest.fixture
def synced(storage: Storage, tmp_path: Path) -> Iterator[Share]:
    with served_with_journal(storage, tmp_path) as share:
        yield share


def _put(share: Share, path: str, body: bytes = b"x") -> None:
    answer = share.request("PUT", path, data=body)
    assert answer.status_code in (201, 204), answer.text


def _seed(share: Share) -> None:
    _put(share, "a.txt", b"a")
    assert share.request("MKCOL", "sub/").status_code == 201
    _put(share, "sub/b.txt", b"b")


def test_initial_sync_lists_the_members_per_sync_level_and_a_uri_token(synced: Share) -> None:
    _seed(synced)
    one = report(synced.session, synced(""), level="1")
    assert one.status == 207, one.text
    assert sorted(one.changed) == ["/a.txt", "/sub/"]  # the collection itself is no member
    assert one.changed["/a.txt"]
    assert one.token is not None
    assert one.token.startswith("urn:x-davstore:sync:")
    every = report(synced.session, synced(""), level="infinite")
    assert sorted(every.changed) == ["/a.txt", "/sub/", "/sub/b.txt"]
    inner = report(synced.session, synced("sub/"), level="1")
    assert sorted(inner.changed) == ["/sub/b.txt"]


def test_a_token_gives_only_what_changed_since(synced: Share) -> None:
    _seed(synced)
    client = SyncClient(synced.session, synced(""), level="infinite")
    client.sync()
    before = dict(client.known)
    nothing = client.sync()
    assert nothing.changed == {}
    assert nothing.removed == []
    _put(synced, "a.txt", b"changed")
    _put(synced, "new.txt", b"new")
    answer = client.sync()
    assert sorted(answer.changed) == ["/a.txt", "/new.txt"]
    assert answer.removed == []
    assert client.known["/a.txt"] != before["/a.txt"]
    assert client.sync().changed == {}


def test_a_delete_is_a_404_response(synced: Share) -> None:
    _seed(synced)
    client = SyncClient(synced.session, synced(""), level="infinite")
    client.sync()
    assert synced.request("DELETE", "a.txt").status_code == 204
    answer = client.sync()
    assert answer.removed == ["/a.txt"]
    assert answer.changed == {}
    assert "<D:status>HTTP/1.1 404 Not Found</D:status>" in answer.text
    assert synced.request("DELETE", "sub/").status_code == 204
    folder = client.sync()
    assert folder.removed == ["/sub/"]  # once: what it held went with it
    assert client.known == {}


def test_a_move_is_a_delete_and_an_add(synced: Share) -> None:
    _seed(synced)
    client = SyncClient(synced.session, synced(""), level="infinite")
    client.sync()
    moved = synced.request("MOVE", "a.txt", headers={"Destination": synced("c.txt")})
    assert moved.status_code == 201, moved.text
    answer = client.sync()
    assert answer.removed == ["/a.txt"]
    assert sorted(answer.changed) == ["/c.txt"]
    folder = synced.request("MOVE", "sub/", headers={"Destination": synced("other/")})
    assert folder.status_code == 201, folder.text
    answer = client.sync()
    assert answer.removed == ["/sub/"]
    assert sorted(answer.changed) == ["/other/", "/other/b.txt"]  # with what it holds
    assert sorted(client.known) == ["/c.txt", "/other/", "/other/b.txt"]


def test_sync_level_1_reports_direct_members_only(synced: Share) -> None:
    _seed(synced)
    assert synced.request("MKCOL", "sub/deeper/").status_code == 201
    one = SyncClient(synced.session, synced(""), level="1")
    every = SyncClient(synced.session, synced(""), level="infinite")
    one.sync()
    every.sync()
    _put(synced, "sub/deeper/c.txt")
    assert one.sync().changed == {}
    assert sorted(every.sync().changed) == ["/sub/deeper/", "/sub/deeper/c.txt"]
    _put(synced, "sub/b.txt", b"again")
    assert sorted(one.sync().changed) == ["/sub/"]  # the folder's content changed
    assert sorted(every.sync().changed) == ["/sub/", "/sub/b.txt"]


def test_an_invalid_token_is_403_valid_sync_token(synced: Share) -> None:
    _seed(synced)
    token = report(synced.session, synced("")).token
    assert token is not None
    journal, cursor = token.removeprefix("urn:x-davstore:sync:").split(":")
    for bad in [
        "nonsense",
        "http://example.com/ns/sync/1234",  # the RFC's example: another server's
        f"urn:x-davstore:sync:{'0' * 32}:{cursor}",  # another journal
        f"urn:x-davstore:sync:{journal}:{int(cursor) + 100}",  # one not made yet
        f"urn:x-davstore:sync:{journal}:x",
    ]:
        answer = report(synced.session, synced(""), bad)
        assert answer.status == 403, (bad, answer.text)
        assert answer.error == "valid-sync-token", answer.text


def test_a_token_older_than_the_journals_retention_is_403(synced: Share, tmp_path: Path) -> None:
    _put(synced, "a.txt")
    client = SyncClient(synced.session, synced(""))
    client.sync()
    small = Journal(tmp_path / "state" / FILE_NAME, retention=5)  # another process's
    try:
        for n in range(150):  # trimmed every 100 appends
            small.append(Record(action="created", path=f"f{n}.txt", writer="elsewhere"))
    finally:
        small.close()
    answer = report(synced.session, synced(""), client.token)
    assert answer.status == 403, answer.text
    assert answer.error == "valid-sync-token"
    again = SyncClient(synced.session, synced(""))
    assert again.sync().status == 207  # the client starts over


def test_the_collection_itself_replaced_invalidates_its_tokens(synced: Share) -> None:
    _seed(synced)
    client = SyncClient(synced.session, synced("sub/"))
    client.sync()
    assert synced.request("DELETE", "sub/").status_code == 204
    assert synced.request("MKCOL", "sub/").status_code == 201
    answer = report(synced.session, synced("sub/"), client.token)
    assert answer.status == 403, answer.text
    assert answer.error == "valid-sync-token"


def test_a_limit_truncates_with_507_and_a_token_to_go_on(synced: Share) -> None:
    _seed(synced)
    client = SyncClient(synced.session, synced(""))
    client.sync()
    for name in ("x1", "x2", "x3"):
        _put(synced, f"{name}.txt")
    first = client.sync(limit=2)
    assert first.truncated
    assert sorted(first.changed) == ["/x1.txt", "/x2.txt"]
    assert "HTTP/1.1 507 Insufficient Storage" in first.text
    rest = client.sync(limit=2)
    assert not rest.truncated
    assert sorted(rest.changed) == ["/x3.txt"]
    full = report(synced.session, synced(""), level="infinite", limit=2)  # 3 members
    assert full.status == 507, full.text
    assert full.error == "number-of-matches-within-limits"


def test_changes_by_another_process_of_the_share_are_reported(
    synced: Share, storage: Storage, tmp_path: Path
) -> None:
    """Another VFS of the same share and state folder (a worker, a mount, the admin):
    its changes are in the journal this server reads."""
    _seed(synced)
    client = SyncClient(synced.session, synced(""), level="infinite")
    client.sync()
    other = VFS(adapt(storage))
    peers = share_with_host_peers(other, tmp_path / "state")
    assert isinstance(peers, HostPeers)
    try:
        other.write_file("from-elsewhere.txt", b"hello")
        other.remove("a.txt")
    finally:
        peers.close()
    answer = client.sync()
    assert sorted(answer.changed) == ["/from-elsewhere.txt"]
    assert answer.removed == ["/a.txt"]


def test_bad_requests(synced: Share) -> None:
    _seed(synced)
    assert report(synced.session, synced(""), depth="infinity").status == 400
    assert report(synced.session, synced(""), depth="1").status == 207  # python-caldav's
    on_a_file = report(synced.session, synced("a.txt"))
    assert on_a_file.status == 403
    assert on_a_file.error == "supported-report"
    other = synced.request(
        "REPORT",
        "",
        data=b'<D:expand-property xmlns:D="DAV:"/>',
        headers={"Content-Type": "application/xml"},
    )
    assert other.status_code == 403
    assert b"supported-report" in other.content
    assert report(synced.session, synced("missing/")).status == 404
    level = synced.request(
        "REPORT",
        "",
        data=b'<D:sync-collection xmlns:D="DAV:"><D:sync-token/>'
        b"<D:sync-level>2</D:sync-level><D:prop/></D:sync-collection>",
    )
    assert level.status_code == 400


def _propfind(share: Share, path: str, body: bytes) -> etree._Element:
    answer = share.request("PROPFIND", path, data=body, headers={"Depth": "0"})
    assert answer.status_code == 207, answer.text
    return etree.fromstring(answer.content)


def test_collections_carry_sync_token_and_supported_report_set(synced: Share) -> None:
    _seed(synced)
    root = _propfind(
        synced,
        "sub/",
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/><D:supported-report-set/>'
        b"</D:prop></D:propfind>",
    )
    token = root.findtext(f".//{DAV}prop/{DAV}sync-token")
    assert token is not None
    assert token.startswith("urn:x-davstore:sync:")
    assert root.find(f".//{DAV}supported-report/{DAV}report/{DAV}sync-collection") is not None
    _put(synced, "sub/c.txt")
    answer = report(synced.session, synced("sub/"), token)
    assert sorted(answer.changed) == ["/sub/c.txt"]  # the property's token works
    allprop = _propfind(synced, "sub/", b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>')
    assert allprop.find(f".//{DAV}sync-token") is None  # RFC 6578 4.1: not in allprop


def test_a_share_without_a_journal_does_not_offer_the_report(
    storage: Storage, tmp_path: Path
) -> None:
    with serve_share(storage, tmp_path / "state") as share:
        answer = report(share.session, share(""))
        assert answer.status == 403
        assert answer.error == "supported-report"


def _allow(share: Share, path: str) -> list[str]:
    answer = share.request("OPTIONS", path)
    assert answer.status_code == 200, answer.text
    return [method.strip() for method in answer.headers["Allow"].split(",")]


def test_options_names_report_where_it_is_answered(storage: Storage, tmp_path: Path) -> None:
    """A review found ``OPTIONS`` never naming ``REPORT`` though collections answer it.
    ``Allow`` names it on a share's collections (the root and a folder) when the share has
    a change journal; not on a file (RFC 6578 3: the report is defined on collections),
    a missing name, nor a share without a journal (all of which refuse it); the other
    methods stay as wsgidav names them."""
    with served_with_journal(storage, tmp_path / "journal") as synced:
        _seed(synced)
        for folder in ("", "sub/"):
            allow = _allow(synced, folder)
            assert allow.count("REPORT") == 1 and allow[-1] == "REPORT", (folder, allow)
            assert {"PROPFIND", "LOCK", "MOVE"} <= set(allow)
            assert report(synced.session, synced(folder)).status == 207
        for other in ("a.txt", "missing.txt"):
            assert "REPORT" not in _allow(synced, other), other
        assert report(synced.session, synced("a.txt")).status == 403
        assert "PUT" in _allow(synced, "a.txt")
    with serve_share(storage, tmp_path / "plain") as plain:
        assert "REPORT" not in _allow(plain, "")
        assert report(plain.session, plain("")).status == 403


def _server_options(share: Share, path: str, *, anonymous: bool = True) -> dict[str, str]:
    """The headers of ``OPTIONS path`` (``*`` too, which an HTTP library's URL cannot
    say), sent without credentials unless told otherwise."""
    host, _, port = share.url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = {} if anonymous else {"Authorization": _basic(share)}
        connection.request("OPTIONS", path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200, (path, answer.status)
        return {name.lower(): value for name, value in answer.getheaders()}
    finally:
        connection.close()


def _basic(share: Share) -> str:
    name, password = share.session.auth  # type: ignore[misc]
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def _methods(headers: dict[str, str]) -> list[str]:
    return [method.strip() for method in headers["allow"].split(",")]


def test_options_before_login_and_options_star_name_report_as_the_root_does(
    storage: Storage, tmp_path: Path
) -> None:
    """``OPTIONS`` without credentials (desktop clients probe so before they log in) and
    ``OPTIONS *`` did not name ``REPORT`` where the authenticated root's ``Allow`` does.
    Both are the share's options, the same answer for every path (naming ``REPORT`` as the
    root does, whether the path is a folder, a file or nothing, so they tell nothing of
    what exists); a share without a journal names it nowhere, a read-only one still
    does (a report only reads)."""
    with served_with_journal(storage, tmp_path / "journal") as synced:
        _seed(synced)
        assert "REPORT" in _allow(synced, "")  # the authenticated root's
        answers = [_server_options(synced, f"/{path}") for path in ("", "sub/", "a.txt", "nope")]
        answers.append(_server_options(synced, "*"))
        answers.append(_server_options(synced, "*", anonymous=False))
        for headers in answers:
            assert headers == answers[0]
            methods = _methods(headers)
            assert methods.count("REPORT") == 1 and methods[-1] == "REPORT", methods
            assert {"PROPFIND", "PUT", "MKCOL", "LOCK", "MOVE"} <= set(methods)
            assert headers["dav"] == "1,2"
    with serve_share(storage, tmp_path / "plain") as plain:
        assert "REPORT" not in _methods(_server_options(plain, "/"))
        assert "REPORT" not in _methods(_server_options(plain, "*"))
    with serve_share(storage, tmp_path / "read-only", read_only=True) as read_only:
        peers = share_with_host_peers(read_only.vfs, tmp_path / "read-only")
        assert peers is not None
        try:
            for path in ("/", "*"):
                headers = _server_options(read_only, path)
                assert _methods(headers) == ["OPTIONS", "GET", "HEAD", "PROPFIND", "REPORT"]
                assert headers["dav"] == "1"
            assert "REPORT" in _allow(read_only, "")
        finally:
            peers.close()


def test_the_journal_keeps_its_identity_across_restarts(tmp_path: Path) -> None:
    first = Journal(tmp_path / FILE_NAME)
    ident = first.ident
    first.close()
    again = Journal(tmp_path / FILE_NAME)
    assert again.ident == ident
    again.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("SELECT value FROM about WHERE key='id'").fetchone() == (ident,)
