"""Whole-file GET/HEAD answered in front of wsgidav, and how the HTTP server sends them."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from davstore.frontends.webdav.fast import get as plain_get
from davstore.frontends.webdav.fast.common import http_date
from davstore.serving.observability import flush_access_log, instrument
from tests.webdav.serving import PASSWORD, USER, Share

BLOB = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: more than one block


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """True per request PlainGet answered, False per request it passed on. A GET the HTTP
    server had the app answer at once (``DavstoreApp.answer_quick``, which answers with
    ``PlainGet.whole_file`` or ``PlainGet.file_answer``) counts as answered."""
    seen: list[bool] = []
    original = plain_get.PlainGet.__call__
    original_whole = plain_get.PlainGet.whole_file
    in_call = threading.local()

    def spy(self: plain_get.PlainGet, environ: dict[str, Any], start_response: Any) -> Any:
        passed: list[bool] = []
        inner = self.app

        def app(*args: Any) -> Any:
            passed.append(True)
            return inner(*args)

        self.app = app
        in_call.active = True
        try:
            return original(self, environ, start_response)
        finally:
            in_call.active = False
            self.app = inner
            seen.append(not passed)

    def whole_spy(self: plain_get.PlainGet, path: str) -> Any:
        answer = original_whole(self, path)
        if answer is not None and not getattr(in_call, "active", False):
            seen.append(True)  # answered at once, before any environ
        return answer

    original_file = plain_get.PlainGet.file_answer

    def file_spy(self: plain_get.PlainGet, path: str) -> Any:
        answer = original_file(self, path)
        if answer is not None and not getattr(in_call, "active", False):
            seen.append(True)  # answered at once with a FileBody
        return answer

    monkeypatch.setattr(plain_get.PlainGet, "__call__", spy)
    monkeypatch.setattr(plain_get.PlainGet, "whole_file", whole_spy)
    monkeypatch.setattr(plain_get.PlainGet, "file_answer", file_spy)
    yield seen


def both(share: Share, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
    answers = []
    for enabled in (True, False):
        share.app.plain_get.enabled = enabled
        answers.append(share.request(method, path, **kwargs))
    share.app.plain_get.enabled = True
    return answers[0], answers[1]


@pytest.mark.parametrize("name", ["f.bin", "notes.txt", "d/Ünï cødé&.HTML", "empty", "x.tar.gz"])
def test_same_headers_and_body_as_wsgidav(share: Share, taken: list[bool], name: str) -> None:
    share.vfs.mkdir("d")
    share.vfs.write_file(name, b"" if name == "empty" else BLOB)
    for method in ("GET", "HEAD"):
        mine, theirs = both(share, method, name)
        assert mine.status_code == theirs.status_code == 200
        assert mine.content == theirs.content
        assert [(k, v) for k, v in mine.headers.lower_items() if k != "date"] == [
            (k, v) for k, v in theirs.headers.lower_items() if k != "date"
        ]
    assert taken == [True, False, True, False]


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=99999999-"},  # not satisfiable: wsgidav's 416
        {"Range": "bytes=-0"},  # satisfies nothing (PathGuard): 416 too
        {"If-Range": '"x"'},  # without a Range
        {"Range": "bytes=0-9", "If-None-Match": '"x"'},
        {"If-None-Match": '"x"'},
        {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"Depth": "1"},
    ],
)
def test_other_gets_go_to_wsgidav(share: Share, taken: list[bool], headers: dict) -> None:
    share.vfs.write_file("r.bin", BLOB)
    response = share.request("GET", "r.bin", headers=headers)
    assert response.status_code in (200, 206, 400, 416)
    assert taken == [False]


def _if_range(share: Share, which: str) -> dict[str, str]:
    entry = share.vfs.stat("r.bin")
    assert entry.mtime is not None
    if which == "etag":
        return {"If-Range": f'"{entry.etag}"'}
    if which == "old etag":
        return {"If-Range": '"not-the-etag"'}
    if which == "date":
        return {"If-Range": http_date(int(entry.mtime))}
    return {"If-Range": http_date(int(entry.mtime) - 60)}  # an older date


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=0-9",
        "bytes=100-",  # to the end, more than WHOLE
        "bytes=-100",  # the last 100 bytes
        "bytes=-5000000",  # a suffix longer than the file: all of it
        "bytes=70000-1048579",
        "bytes=1048570-9999999",  # past the end: cut there
        "bytes=0-9,20-29",  # several: wsgidav sends one
        "bytes=x",  # no byte-range set: ignored (PathGuard), the whole file
    ],
)
@pytest.mark.parametrize("condition", [None, "etag", "old etag", "date", "old date"])
def test_ranges_as_wsgidav_answers_them(
    share: Share, taken: list[bool], spec: str, condition: str | None
) -> None:
    share.vfs.write_file("r.bin", BLOB)
    headers = {"Range": spec, **(_if_range(share, condition) if condition else {})}
    for method in ("GET", "HEAD"):
        mine, theirs = both(share, method, "r.bin", headers=headers)
        assert mine.status_code == theirs.status_code
        whole = condition in ("old etag", "old date") or spec == "bytes=x"
        assert mine.status_code == (200 if whole else 206)
        assert mine.content == theirs.content
        assert [(k, v) for k, v in mine.headers.lower_items() if k != "date"] == [
            (k, v) for k, v in theirs.headers.lower_items() if k != "date"
        ]
    # An If-Range without a (valid) Range is wsgidav's.
    mine_taken = not (spec == "bytes=x" and condition)
    assert taken == [mine_taken, False, mine_taken, False]


def test_a_range_of_an_empty_file_is_the_whole_file(share: Share, taken: list[bool]) -> None:
    share.vfs.write_file("e.bin", b"")
    mine, theirs = both(share, "GET", "e.bin", headers={"Range": "bytes=0-9"})
    assert mine.status_code == theirs.status_code == 200
    assert mine.content == theirs.content == b""
    assert taken == [True, False]


def test_folders_missing_files_and_bodies_go_to_wsgidav(share: Share, taken: list[bool]) -> None:
    share.vfs.mkdir("folder")
    assert share.request("GET", "folder").status_code == 200  # the HTML listing
    assert share.request("GET", "missing.txt").status_code == 404
    share.vfs.write_file("b.txt", b"b")
    assert share.request("GET", "b.txt", data=b"body").status_code == 415
    assert taken and not any(taken)


def test_authentication_is_checked(share: Share, taken: list[bool]) -> None:
    share.vfs.write_file("s.txt", b"secret")
    assert requests.get(share("s.txt"), timeout=10).status_code == 401
    assert requests.get(share("s.txt"), auth=(USER, "wrong"), timeout=10).status_code == 401
    assert requests.get(share("s.txt"), auth=("nobody", PASSWORD), timeout=10).status_code == 401
    good = requests.get(share("s.txt"), auth=(USER, PASSWORD), timeout=10)
    assert good.content == b"secret"
    assert taken == [False, False, False, True]


def raw_exchange(share: Share, data: bytes, replies: int) -> list[bytes]:
    """Send ``data`` on one connection; the raw bytes of each ``recv`` until ``replies``."""
    host, port = share.url.removeprefix("http://").split(":")
    chunks: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        while b"".join(chunks).count(b"HTTP/1.1 ") < replies:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return chunks


def request_bytes(method: str, path: str) -> bytes:
    import base64

    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode()


def test_keep_alive_pipelined_and_head_responses(share: Share) -> None:
    share.vfs.write_file("k.txt", b"keep")
    pipelined = request_bytes("GET", "/k.txt") + request_bytes("HEAD", "/k.txt")
    pipelined += request_bytes("GET", "/k.txt")
    data = b"".join(raw_exchange(share, pipelined, 3))
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.count(b"\r\n\r\nkeep") == 2


def test_small_response_is_one_segment(share: Share) -> None:
    share.vfs.write_file("one.txt", b"x" * 1024)
    chunks = raw_exchange(share, request_bytes("GET", "/one.txt"), 1)
    assert len(chunks) == 1  # head and body sent together
    assert chunks[0].endswith(b"x" * 1024)


@pytest.mark.parametrize("size", [0, 1, plain_get.WHOLE, plain_get.WHOLE + 1, 3 * plain_get.WHOLE])
def test_small_files_are_read_whole_bigger_ones_stream(
    share: Share, taken: list[bool], size: int
) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    share.vfs.write_file(f"s{size}.bin", data)
    got = share.request("GET", f"s{size}.bin")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Length"] == str(size)
    head = share.request("HEAD", f"s{size}.bin")
    assert head.headers["Content-Length"] == str(size) and head.content == b""
    assert taken == [True, True]
    assert not share.vfs._readers  # every handle closed once the answer is sent


@pytest.fixture
def sendfiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts os.sendfile sent (the HTTP server's FileBody answers)."""
    sent: list[int] = []
    original = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        got = original(out_fd, in_fd, offset, count)
        sent.append(got)
        return got

    monkeypatch.setattr(os, "sendfile", spy)
    return sent


def _closed(share: Share) -> bool:
    """Every read handle closed, within a few seconds (the loop closes it after the send)."""
    deadline = time.monotonic() + 10
    while share.vfs._readers and time.monotonic() < deadline:
        time.sleep(0.01)
    return not share.vfs._readers


@pytest.mark.parametrize("store_kind", ["filesystem", "memory"], indirect=True)
@pytest.mark.parametrize(
    ("spec", "part"),
    [
        (None, slice(None)),
        ("bytes=100-", slice(100, None)),
        ("bytes=-70000", slice(-70000, None)),
        ("bytes=1000-300999", slice(1000, 301000)),
        ("bytes=10-20", slice(10, 21)),  # short: answered at once, by sendfile too
    ],
)
def test_files_on_disk_go_by_sendfile(
    share: Share, store_kind: str, sendfiles: list[int], spec: str | None, part: slice
) -> None:
    share.vfs.write_file("big.bin", BLOB)
    got = share.request("GET", "big.bin", headers={"Range": spec} if spec else {})
    assert got.status_code == (206 if spec else 200)
    assert got.content == BLOB[part]
    assert _closed(share)
    by_sendfile = store_kind == "filesystem"  # every GET of more than WHOLE, every range
    assert sum(sendfiles) == (len(BLOB[part]) if by_sendfile else 0)


def _raw_get(share: Share, path: str) -> socket.socket:
    """A connection with a small receive buffer that sent a GET of ``path``."""
    host, port = share.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(request_bytes("GET", path))
    return sock


@pytest.mark.parametrize("store_kind", ["filesystem"], indirect=True)
def test_a_file_replaced_while_sent_arrives_as_it_was(share: Share, sendfiles: list[int]) -> None:
    old = os.urandom(16 << 20)
    share.vfs.write_file("r.bin", old)
    sock = _raw_get(share, "/r.bin")
    received = sock.recv(65536)
    share.vfs.write_file("r.bin", b"new content")  # a PUT replaces the file (a new inode)
    while len(received.partition(b"\r\n\r\n")[2]) < len(old):
        chunk = sock.recv(1 << 20)
        assert chunk
        received += chunk
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(old) in head
    assert body == old
    assert share.request("GET", "r.bin").content == b"new content"
    assert _closed(share)
    assert sum(sendfiles) == len(old)


@pytest.mark.parametrize("store_kind", ["filesystem"], indirect=True)
def test_a_client_that_leaves_mid_file_releases_it(share: Share, sendfiles: list[int]) -> None:
    share.vfs.write_file("l.bin", os.urandom(16 << 20))
    for _ in range(3):
        sock = _raw_get(share, "/l.bin")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        sock.close()
    assert _closed(share)
    assert sum(sendfiles) < 3 * (16 << 20)
    assert share.request("GET", "l.bin").status_code == 200


@pytest.mark.parametrize("store_kind", ["filesystem"], indirect=True)
def test_metrics_and_the_access_log_count_what_sendfile_sent(
    share: Share, sendfiles: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="davstore.access")
    observability = instrument(share.app, share.vfs)
    share.vfs.write_file("big.bin", BLOB)
    got = share.request("GET", "big.bin", headers={"Range": "bytes=4-"})
    assert got.content == BLOB[4:]
    assert sum(sendfiles) == len(BLOB) - 4  # through the middleware, still by sendfile
    assert _closed(share)
    deadline = time.monotonic() + 10
    while observability.metrics.in_progress.value() and time.monotonic() < deadline:
        time.sleep(0.01)
    flush_access_log()
    assert observability.metrics.sent.value(("GET",)) == len(BLOB) - 4
    assert observability.metrics.requests.value(("GET", "206")) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "davstore.access"]
    assert [line.split(" in=")[0] for line in lines] == [f"127.0.0.1 {USER} GET /big.bin 206"]
