"""Small whole-file PUT stored in front of wsgidav (fast/put.py): same answers, same files."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.storage import InMemoryStorage, Storage

from davstore.errors import StoreUnavailable
from davstore.frontends.webdav.fast import put as plain_put
from davstore.vfs.events import Change
from tests.webdav.serving import PASSWORD, USER, Share, serve_share
from tests.webdav.test_desktop_bad_input import lock


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """True per PUT PlainPut answered, False per PUT it passed on. A PUT the HTTP server
    had the app answer at once (``PlainPut.put_quick``) counts as answered."""
    seen: list[bool] = []
    original = plain_put.PlainPut.__call__

    def spy(self: plain_put.PlainPut, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] != "PUT":
            return original(self, environ, start_response)
        passed: list[bool] = []
        inner = self.app

        def app(*args: Any) -> Any:
            passed.append(True)
            return inner(*args)

        self.app = app
        try:
            return original(self, environ, start_response)
        finally:
            self.app = inner
            seen.append(not passed)

    original_quick = plain_put.PlainPut.put_quick

    def quick_spy(self: plain_put.PlainPut, *args: Any) -> Any:
        answer = original_quick(self, *args)
        if answer is not None:  # answered at once (DavstoreApp.answer_quick), as PlainPut
            seen.append(True)
        return answer

    monkeypatch.setattr(plain_put.PlainPut, "__call__", spy)
    monkeypatch.setattr(plain_put.PlainPut, "put_quick", quick_spy)
    yield seen


def _page(body: bytes) -> bytes:
    """wsgidav's status page without the time it was made."""
    return re.sub(rb" - \d{4}-\d\d-\d\d [\d:.]+", b"", body)


def both(share: Share, path: str, data: bytes, **kwargs: Any) -> tuple[Any, Any]:
    """The same PUT answered by PlainPut, then by wsgidav (each on a fresh name)."""
    answers = []
    for enabled in (True, False):
        share.app.plain_put.enabled = enabled
        answers.append(share.request("PUT", path.format(enabled), data=data, **kwargs))
    share.app.plain_put.enabled = True
    return answers[0], answers[1]


def same_answer(mine: Any, theirs: Any, *, drop: set[str] | None = None) -> None:
    assert mine.status_code == theirs.status_code
    drop = {name.lower() for name in {"Date", "ETag", *(drop or ())}}
    assert [(k, v) for k, v in mine.headers.lower_items() if k not in drop] == [
        (k, v) for k, v in theirs.headers.lower_items() if k not in drop
    ]
    assert ("ETag" in mine.headers) == ("ETag" in theirs.headers)
    assert _page(mine.content) == _page(theirs.content)


@pytest.mark.parametrize("name", ["f{}.bin", "d/Ünï cødé&{}.txt", "empty{}"])
def test_same_answers_as_wsgidav(share: Share, taken: list[bool], name: str) -> None:
    share.vfs.mkdir("d")
    data = b"" if name.startswith("empty") else bytes(range(256)) * 40
    created = both(share, name, data)
    assert created[0].status_code == 201
    same_answer(*created)
    replaced = both(share, name, data[::-1])
    assert replaced[0].status_code == 204
    same_answer(*replaced)
    assert taken == [True, False, True, False]
    for flag in (True, False):
        path = name.format(flag)
        assert share.vfs.stat(path).size == len(data)
        with share.vfs.open_read(path) as handle:
            assert handle.read() == data[::-1]


def test_etag_is_the_stored_versions(share: Share, taken: list[bool]) -> None:
    answer = share.request("PUT", "e.txt", data=b"v1")
    assert answer.headers["ETag"] == f'"{share.vfs.stat("e.txt").etag}"'
    get = share.request("GET", "e.txt")
    assert get.headers["ETag"] == answer.headers["ETag"]
    assert taken == [True]


def test_the_change_is_the_users(share: Share, taken: list[bool]) -> None:
    changes: list[Change] = []
    share.vfs.subscribe(changes.append)
    share.request("PUT", "who.txt", data=b"me")
    share.request("PUT", "who.txt", data=b"me again")
    assert taken == [True, True]
    assert [(c.action.value, c.path) for c in changes] == [
        ("created", "who.txt"),
        ("modified", "who.txt"),
    ]
    assert all(c.actor is not None and c.actor.user == USER for c in changes)
    assert all(c.actor is not None and c.actor.origin == "webdav" for c in changes)


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": '"x"'},
        {"If-None-Match": "*"},
        {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"If": "(<opaquelocktoken:nothing>)"},
        {"Content-Range": "bytes 0-1/2"},
        {"Content-Encoding": "gzip"},
    ],
)
def test_conditional_and_odd_puts_go_to_wsgidav(
    share: Share, taken: list[bool], headers: dict[str, str]
) -> None:
    share.vfs.write_file("c.txt", b"old")
    mine = share.request("PUT", "c.txt", data=b"new", headers=headers)
    assert taken == [False]
    share.app.plain_put.enabled = False
    theirs = share.request("PUT", "c.txt", data=b"new", headers=headers)
    assert mine.status_code == theirs.status_code


def test_any_lock_on_the_share_sends_puts_to_wsgidav(share: Share, taken: list[bool]) -> None:
    share.request("PUT", "locked.txt", data=b"old")
    token = lock(share, "locked.txt")
    assert share.request("PUT", "locked.txt", data=b"new").status_code == 423
    assert share.request("PUT", "elsewhere.txt", data=b"x").status_code == 201
    assert share.request("GET", "locked.txt").content == b"old"
    share.request("UNLOCK", "locked.txt", headers={"Lock-Token": f"<{token}>"})
    assert share.request("PUT", "locked.txt", data=b"free").status_code == 204
    assert taken == [True, False, False, True]


def test_folders_and_missing_parents_go_to_wsgidav(share: Share, taken: list[bool]) -> None:
    share.vfs.mkdir("folder")
    assert share.request("PUT", "folder", data=b"x").status_code == 405
    assert share.request("PUT", "nowhere/f.txt", data=b"x").status_code == 409
    share.vfs.write_file("file", b"f")
    assert share.request("PUT", "file/f.txt", data=b"x").status_code == 409
    assert taken == [False, False, False]


def test_big_and_chunked_bodies_go_to_wsgidav(share: Share, taken: list[bool]) -> None:
    big = b"b" * (plain_put.MAX_BODY + 1)
    assert share.request("PUT", "big.bin", data=big).status_code == 201
    assert share.request("PUT", "chunked.bin", data=iter([b"a", b"b"])).status_code == 201
    assert taken == [False, False]
    assert share.vfs.stat("big.bin").size == len(big)
    with share.vfs.open_read("chunked.bin") as handle:
        assert handle.read() == b"ab"


def test_authentication_is_checked(share: Share, taken: list[bool]) -> None:
    url = share("a.txt")
    assert requests.put(url, data=b"x", timeout=10).status_code == 401
    assert requests.put(url, data=b"x", auth=(USER, "wrong"), timeout=10).status_code == 401
    assert requests.put(url, data=b"x", auth=(USER, PASSWORD), timeout=10).status_code == 201
    assert taken == [False, False, True]


def test_mac_metadata_goes_to_the_side_store(share: Share, taken: list[bool]) -> None:
    assert share.request("PUT", "._a.txt", data=b"apple").status_code == 201
    assert share.request("PUT", ".DS_Store", data=b"ds").status_code == 201
    assert taken == [False, False]
    assert not share.vfs.exists("._a.txt")


def test_read_only_and_upload_limit_keep_their_answers(
    storage: Storage, tmp_path: Path, taken: list[bool]
) -> None:
    with serve_share(storage, tmp_path / "ro", read_only=True) as share:
        assert share.request("PUT", "r.txt", data=b"x").status_code == 403
    with serve_share(storage, tmp_path / "limit", max_upload_size=10) as share:
        assert share.request("PUT", "small.txt", data=b"x" * 10).status_code == 201
        assert share.request("PUT", "large.txt", data=b"x" * 11).status_code == 413
        assert not share.vfs.exists("large.txt")
    assert taken == [False, True, False]


def test_a_refused_write_gets_wsgidavs_answer_and_is_not_retried(
    share: Share, taken: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    share.vfs.write_file("keep.txt", b"old")

    calls: list[str] = []

    def unavailable(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise StoreUnavailable("keep.txt", "down")

        return refuse

    # The small-PUT path writes with put_file, wsgidav's provider with open_write.
    monkeypatch.setattr(share.vfs, "put_file", unavailable("put_file"))
    monkeypatch.setattr(share.vfs, "open_write", unavailable("open_write"))
    mine = share.request("PUT", "keep.txt", data=b"new")
    share.app.plain_put.enabled = False
    theirs = share.request("PUT", "keep.txt", data=b"new")
    assert mine.status_code == theirs.status_code == 502
    # wsgidav refuses before it reads the body, so it closes the connection; here the body
    # has been read and the connection stays usable.
    same_answer(mine, theirs, drop={"Connection"})
    assert taken == [True, False]
    assert calls == ["put_file", "open_write"]  # one try per request
    monkeypatch.undo()
    with share.vfs.open_read("keep.txt") as handle:
        assert handle.read() == b"old"


def short_put(share: Share) -> bytes:
    host, port = share.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"PUT /s.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_a_short_body_stores_nothing(tmp_path: Path, taken: list[bool]) -> None:
    with serve_share(InMemoryStorage(), tmp_path / "state", anonymous=True) as share:
        share.vfs.write_file("s.txt", b"old")
        mine = short_put(share)
        share.app.plain_put.enabled = False
        theirs = short_put(share)
        for reply in (mine, theirs):
            assert reply.startswith(b"HTTP/1.1 400")
            assert b"the request body ended before its Content-Length" in reply
        with share.vfs.open_read("s.txt") as handle:
            assert handle.read() == b"old"
    assert taken == [True, False]
