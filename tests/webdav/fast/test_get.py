"""Whole-file GET/HEAD answered in front of wsgidav, and how the HTTP server sends them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from davstore.frontends.webdav.fast import get as plain_get
from tests.webdav.serving import PASSWORD, USER, Share

BLOB = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: more than one block


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """True per request PlainGet answered, False per request it passed on. A GET the HTTP
    server had the app answer at once (``DavstoreApp.answer_quick``, which answers with
    ``PlainGet.whole_file``) counts as answered."""
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

    monkeypatch.setattr(plain_get.PlainGet, "__call__", spy)
    monkeypatch.setattr(plain_get.PlainGet, "whole_file", whole_spy)
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
        {"Range": "bytes=0-9"},
        {"If-None-Match": '"x"'},
        {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"Depth": "1"},
    ],
)
def test_other_gets_go_to_wsgidav(share: Share, taken: list[bool], headers: dict) -> None:
    share.vfs.write_file("r.bin", BLOB)
    response = share.request("GET", "r.bin", headers=headers)
    assert response.status_code in (200, 206, 400)
    assert taken == [False]


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
