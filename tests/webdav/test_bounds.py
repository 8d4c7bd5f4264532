"""The bounds a share puts on one client (davstore.frontends.webdav.limits, docs/SECURITY.md):
PROPFIND Depth infinity, dead properties, locks. Counts and refusals, never times."""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from xml.etree import ElementTree

import pytest
from django.core.files.storage import InMemoryStorage

from davstore.frontends.webdav import DavstoreApp, create_app
from davstore.frontends.webdav.limits import DavLimits
from davstore.store import adapt
from davstore.vfs import VFS
from tests.webdav.serving import Share, serve_share

DAV = "{DAV:}"
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


def tree(vfs: VFS, folders: int, files: int = 20) -> None:
    for f in range(folders):
        vfs.mkdir(f"d{f}")
        for i in range(files):
            vfs.write_file(f"d{f}/file-{i}.txt", b"x")


@pytest.fixture
def infinite(tmp_path: Path) -> Iterator[Share]:
    with serve_share(
        InMemoryStorage(), tmp_path / "state", limits=DavLimits(depth_infinity=True)
    ) as share:
        yield share


def hrefs(text: str) -> list[str]:
    return [node.text or "" for node in ElementTree.fromstring(text).iter(f"{DAV}href")]


# -- PROPFIND Depth: infinity ---------------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Depth": "infinity"}, {}])
def test_depth_infinity_is_refused_by_default(share: Share, headers: dict[str, str]) -> None:
    share.vfs.mkdir("d")
    response = share.request("PROPFIND", "", headers=headers, data=ALLPROP)
    assert response.status_code == 403
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{DAV}error"
    assert root.find(f"{DAV}propfind-finite-depth") is not None


def test_depth_infinity_on_a_file_is_depth_0(share: Share) -> None:
    share.vfs.write_file("f.txt", b"f")
    response = share.request("PROPFIND", "f.txt", headers={"Depth": "infinity"})
    assert response.status_code == 207
    assert [h.rsplit("/", 1)[-1] for h in hrefs(response.text)] == ["f.txt"]


def test_depth_infinity_when_allowed_lists_the_whole_tree_in_order(infinite: Share) -> None:
    infinite.vfs.mkdir("a")
    infinite.vfs.mkdir("a/b")
    infinite.vfs.write_file("a/b/deep.txt", b"d")
    infinite.vfs.write_file("a/mid.txt", b"m")
    infinite.vfs.write_file("top.txt", b"t")
    response = infinite.request("PROPFIND", "", headers={"Depth": "infinity"}, data=ALLPROP)
    assert response.status_code == 207
    assert response.headers.get("Transfer-Encoding") == "chunked" or "Content-Length" in (
        response.headers
    )
    found = hrefs(response.text)
    assert sorted(found) == ["/", "/a/", "/a/b/", "/a/b/deep.txt", "/a/mid.txt", "/top.txt"]
    assert found.index("/a/b/deep.txt") > found.index("/a/b/") > found.index("/a/")


def test_depth_infinity_streams_dead_properties_and_locks_too(infinite: Share) -> None:
    infinite.vfs.mkdir("a")
    infinite.vfs.write_file("a/p.txt", b"p")
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
    )
    assert infinite.request("PROPPATCH", "a/p.txt", data=body).status_code == 207
    response = infinite.request("PROPFIND", "", headers={"Depth": "infinity"}, data=ALLPROP)
    assert response.status_code == 207
    assert "blue" in response.text
    named = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:prop><Z:colour/><D:getcontentlength/></D:prop></D:propfind>"
    )
    response = infinite.request("PROPFIND", "a/", headers={"Depth": "infinity"}, data=named)
    assert response.status_code == 207
    assert "blue" in response.text and "404 Not Found" in response.text


def test_a_folder_that_fails_midway_gets_its_own_status(
    infinite: Share, monkeypatch: pytest.MonkeyPatch
) -> None:
    from davstore.errors import StoreUnavailable

    for name in ("a", "b", "c"):
        infinite.vfs.mkdir(name)
        infinite.vfs.write_file(f"{name}/f.txt", b"f")
    listdir = infinite.vfs.listdir

    def failing(path: str) -> Any:
        if path.strip("/") == "b":
            raise StoreUnavailable("b")
        return listdir(path)

    monkeypatch.setattr(infinite.vfs, "listdir", failing)
    response = infinite.request("PROPFIND", "", headers={"Depth": "infinity"}, data=ALLPROP)
    assert response.status_code == 207
    assert "/a/f.txt" in hrefs(response.text) and "/c/f.txt" in hrefs(response.text)
    assert "/b/f.txt" not in hrefs(response.text)
    failed = [
        node.findtext(f"{DAV}status")
        for node in ElementTree.fromstring(response.content).iter(f"{DAV}response")
        if node.findtext(f"{DAV}href") == "/b/" and node.find(f"{DAV}propstat") is None
    ]
    assert failed == ["HTTP/1.1 502 Bad Gateway"]


def _propfind_peak(app: DavstoreApp) -> tuple[int, int]:
    """(tracemalloc peak, answer bytes) of one in-process Depth: infinity PROPFIND."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "PROPFIND",
        "PATH_INFO": "/",
        "SCRIPT_NAME": "",
        "HTTP_DEPTH": "infinity",
        "CONTENT_LENGTH": str(len(ALLPROP)),
        "wsgi.input": io.BytesIO(ALLPROP.encode()),
    }
    setup_testing_defaults(environ)
    statuses: list[str] = []
    size = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        for chunk in result:
            size += len(chunk)
        getattr(result, "close", lambda: None)()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert statuses and statuses[0].startswith("207"), statuses
    return peak, size


def test_depth_infinity_memory_does_not_grow_with_the_tree(tmp_path: Path) -> None:
    """Ten times the files, about the same peak: the answer is never whole in memory."""
    peaks = []
    sizes = []
    for folders in (10, 100):
        vfs = VFS(adapt(InMemoryStorage()), cache_ttl=0)
        tree(vfs, folders)
        app = create_app(
            vfs,
            users=None,
            state_dir=tmp_path / f"s{folders}",
            limits=DavLimits(depth_infinity=True),
        )
        try:
            _propfind_peak(app)  # first-use allocations (caches, imports) out of the way
            peak, size = _propfind_peak(app)
        finally:
            app.close()
        peaks.append(peak)
        sizes.append(size)
    assert sizes[1] > 9 * sizes[0]
    assert peaks[1] < 1.5 * peaks[0], peaks
    assert peaks[1] - peaks[0] < (sizes[1] - sizes[0]) / 5, (peaks, sizes)


# -- dead properties ------------------------------------------------------------------------


def proppatch(count: int, *, start: int = 0, remove: bool = False) -> str:
    props = "".join(f"<Z:p{i}>{'' if remove else i}</Z:p{i}>" for i in range(start, start + count))
    action = "remove" if remove else "set"
    return (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        f"<D:{action}><D:prop>{props}</D:prop></D:{action}></D:propertyupdate>"
    )


def statuses(text: str) -> dict[str, str]:
    return {
        prop.tag: propstat.findtext(f"{DAV}status") or ""
        for propstat in ElementTree.fromstring(text).iter(f"{DAV}propstat")
        for prop in propstat.find(f"{DAV}prop") or []
    }


def stored(share: Share, path: str) -> list[str]:
    manager = share.app.wsgidav.prop_manager
    return sorted(manager.get_properties(share.app.provider.share_path + "/" + path))


def test_a_proppatch_of_too_many_properties_is_413_and_changes_nothing(share: Share) -> None:
    share.vfs.write_file("f.txt", b"f")
    limit = DavLimits().max_properties_per_request
    assert share.request("PROPPATCH", "f.txt", data=proppatch(limit)).status_code == 207
    response = share.request("PROPPATCH", "f.txt", data=proppatch(limit + 1, start=limit))
    assert response.status_code == 413
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{DAV}error"
    assert root.find("{urn:x-davstore:}too-many-properties") is not None
    assert len(stored(share, "f.txt")) == limit


def test_a_proppatch_removing_too_many_properties_is_413(share: Share) -> None:
    share.vfs.write_file("f.txt", b"f")
    limit = DavLimits().max_properties_per_request
    removes = "".join(
        [
            '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">',
            "<D:remove><D:prop>",
            *(f"<Z:p{i}/>" for i in range(limit + 1)),
            "</D:prop></D:remove></D:propertyupdate>",
        ]
    )
    assert share.request("PROPPATCH", "f.txt", data=removes).status_code == 413


def test_properties_past_the_resource_bound_are_507_and_nothing_changes(tmp_path: Path) -> None:
    limits = DavLimits(max_properties=5)
    with serve_share(InMemoryStorage(), tmp_path / "state", limits=limits) as share:
        share.vfs.write_file("f.txt", b"f")
        assert share.request("PROPPATCH", "f.txt", data=proppatch(4)).status_code == 207
        response = share.request("PROPPATCH", "f.txt", data=proppatch(2, start=3))
        assert set(statuses(response.text).values()) == {"HTTP/1.1 200 OK"}  # p3 again, p4
        response = share.request("PROPPATCH", "f.txt", data=proppatch(3, start=3))
        assert response.status_code == 207
        found = statuses(response.text)
        assert found["{urn:x-test:}p5"] == "HTTP/1.1 507 Insufficient Storage"
        assert found["{urn:x-test:}p3"] == "HTTP/1.1 424 Failed Dependency"
        assert stored(share, "f.txt") == [f"{{urn:x-test:}}p{i}" for i in range(5)]
        # within the bound: replacing, removing and adding again all work
        assert share.request("PROPPATCH", "f.txt", data=proppatch(2, start=3)).status_code == 207
        share.request("PROPPATCH", "f.txt", data=proppatch(1, remove=True))
        assert share.request("PROPPATCH", "f.txt", data=proppatch(1, start=9)).status_code == 207
        assert len(stored(share, "f.txt")) == 5


# -- locks ----------------------------------------------------------------------------------

LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def lock(share: Share, path: str, timeout: str | None = "Second-60") -> Any:
    headers = {} if timeout is None else {"Timeout": timeout}
    response = share.request("LOCK", path, data=LOCK_BODY, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


def seconds_left(answer: bytes) -> int:
    """The seconds of the Timeout in a LOCK answer's lockdiscovery."""
    timeout = ElementTree.fromstring(answer).findtext(f".//{DAV}timeout") or ""
    assert timeout.startswith("Second-"), timeout
    return int(timeout[len("Second-") :])


def lock_db(share: Share) -> Any:
    """The SQLite connection of the share's lock storage."""
    storage = share.app.wsgidav.lock_manager.storage
    if hasattr(storage, "db"):
        return storage.db
    return storage._dict._db  # the key-value table of before


def test_a_lock_costs_the_same_work_with_many_locks(share: Share) -> None:
    """SQLite steps (its progress handler, called every 100 virtual-machine instructions) of
    one LOCK with 10 locks held and with 400: the lock table is searched by its indexes."""
    for i in range(400):
        share.vfs.write_file(f"f{i}.txt", b"f")

    def steps_of_one_lock(name: str) -> int:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        db = lock_db(share)
        db.set_progress_handler(count, 100)
        try:
            lock(share, name)
        finally:
            db.set_progress_handler(None, 100)
        return counted[0]

    for i in range(10):
        lock(share, f"f{i}.txt")
    few = steps_of_one_lock("f10.txt")
    for i in range(11, 399):
        lock(share, f"f{i}.txt")
    many = steps_of_one_lock("f399.txt")
    assert many <= 2 * few + 10, (few, many)


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        ("Infinite", 86400),
        ("Second-4100000000", 86400),
        ("Second-100000", 86400),
        (None, 86400),
        ("Second-600", 600),
        ("Infinite, Second-30", 86400),
    ],
)
def test_lock_lifetimes_are_capped(share: Share, asked: str | None, granted: int) -> None:
    share.vfs.write_file("l.txt", b"l")
    response = lock(share, "l.txt", asked)
    assert granted - 60 <= seconds_left(response.content) <= granted
    token = response.headers["Lock-Token"]
    refreshed = share.request("LOCK", "l.txt", headers={"If": f"({token})", "Timeout": "Infinite"})
    assert refreshed.status_code == 200, refreshed.text
    assert 86400 - 60 <= seconds_left(refreshed.content) <= 86400
    (row,) = lock_db(share).execute("SELECT expire FROM lock_tokens").fetchall()
    assert row[0] <= time.time() + 86400


def test_longer_locks_kept_from_before_are_shortened_at_start(tmp_path: Path) -> None:
    storage = InMemoryStorage()
    state = tmp_path / "state"
    with serve_share(storage, state, limits=DavLimits(max_lock_timeout=30 * 86400)) as share:
        share.vfs.write_file("l.txt", b"l")
        lock(share, "l.txt", "Infinite")
        (row,) = lock_db(share).execute("SELECT expire FROM lock_tokens").fetchall()
        assert row[0] > time.time() + 29 * 86400
    with serve_share(storage, state, limits=DavLimits(max_lock_timeout=3600)) as share:
        (row,) = lock_db(share).execute("SELECT expire FROM lock_tokens").fetchall()
        assert row[0] <= time.time() + 3600
        response = share.request("PROPFIND", "l.txt", headers={"Depth": "0"})
        assert 3600 - 60 <= seconds_left(response.content) <= 3600


def test_an_unlocked_lock_of_a_new_name_leaves_no_empty_file(share: Share) -> None:
    response = lock(share, "new.txt")
    assert response.status_code == 201  # RFC 4918 section 7.3: a locked empty resource
    assert share.vfs.stat("new.txt").size == 0
    assert share.request("GET", "new.txt").status_code == 200
    token = response.headers["Lock-Token"]
    assert share.request("UNLOCK", "new.txt", headers={"Lock-Token": token}).status_code == 204
    assert not share.vfs.exists("new.txt")
    assert share.request("GET", "new.txt").status_code == 404


def test_a_written_lock_null_file_stays(share: Share) -> None:
    token = lock(share, "kept.txt").headers["Lock-Token"]
    put = share.request("PUT", "kept.txt", data=b"content", headers={"If": f"({token})"})
    assert put.status_code in (201, 204), put.text
    share.request("UNLOCK", "kept.txt", headers={"Lock-Token": token})
    assert share.request("GET", "kept.txt").content == b"content"
    token = lock(share, "empty-but-mine.txt").headers["Lock-Token"]
    share.request("PUT", "empty-but-mine.txt", data=b"", headers={"If": f"({token})"})
    share.vfs.write_file("empty-but-mine.txt", b"")  # written again by someone else
    share.request("UNLOCK", "empty-but-mine.txt", headers={"Lock-Token": token})
    assert share.vfs.exists("empty-but-mine.txt")


def test_an_expired_lock_of_a_new_name_leaves_no_empty_file(share: Share) -> None:
    lock(share, "gone.txt")
    share.vfs.write_file("other.txt", b"o")
    lock(share, "other.txt")  # an existing file is never removed
    lock_db(share).execute("UPDATE lock_tokens SET expire = 1")
    share.app.wsgidav.lock_manager.storage.cleanup()
    assert not share.vfs.exists("gone.txt")
    assert share.request("GET", "other.txt").content == b"o"
