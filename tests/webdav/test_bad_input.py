"""Bad input gets a clear answer and never reaches the Storage."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from davstore.serving.observability import flush_access_log, instrument
from tests.minimal_storages import MinimalStorage
from tests.webdav.rawhttp import basic_auth, raw_request
from tests.webdav.serving import Share, serve_share


class RecordingStorage(MinimalStorage):
    """A MinimalStorage that records every name any method is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.calls_lock = threading.Lock()

    def _record(self, method: str, name: str) -> None:
        with self.calls_lock:
            self.calls.append((method, name))

    def _open(self, name: str, mode: str = "rb") -> Any:
        self._record("open", name)
        return super()._open(name, mode)

    def _save(self, name: str, content: Any) -> str:
        self._record("save", name)
        return super()._save(name, content)

    def exists(self, name: str) -> bool:
        self._record("exists", name)
        return super().exists(name)

    def delete(self, name: str) -> None:
        self._record("delete", name)
        super().delete(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        self._record("listdir", path)
        return super().listdir(path)

    def size(self, name: str) -> int:
        self._record("size", name)
        return super().size(name)

    def get_modified_time(self, name: str) -> Any:
        self._record("mtime", name)
        return super().get_modified_time(name)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    """One server for the module: no bad request may change anything anyway."""
    storage = RecordingStorage()
    storage.save("ok.txt", ContentFile(b"ok"))
    storage.save("dir/inner.txt", ContentFile(b"inner"))
    state = tmp_path_factory.mktemp("state")
    with serve_share(storage, state, cache_ttl=0) as share:
        yield share


BAD_TARGETS = [
    "/../etc/passwd",
    "/dir/../../etc/passwd",
    "/dir/..",
    "/%2e%2e/etc/passwd",
    "/%2E%2E%2Fetc%2Fpasswd",
    "/dir%5c..%5cok.txt",
    "/dir\\..\\ok.txt",
    "/ok%00.txt",
    "/ok%01.txt",
    "/%252e%252e/etc/passwd",
    "/%25%32%65%25%32%65/x",
    "//etc/passwd",
    "/" + "x" * 300,
    "/" + "abcdefghi/" * 120 + "f",
    "/.davstore-folder",
    "/dir/.davstore-upload-x",
    "/%ff%fe.txt",
]


@pytest.mark.parametrize("target", BAD_TARGETS, ids=lambda t: t[:40])
@pytest.mark.parametrize("method", ["GET", "PUT", "PROPFIND", "DELETE", "MKCOL"])
def test_bad_paths_never_reach_the_storage(recorded: Share, method: str, target: str) -> None:
    storage = recorded.storage
    assert isinstance(storage, RecordingStorage)
    storage.calls.clear()
    body = b"payload" if method == "PUT" else b""
    status, _ = raw_request(recorded.url, method, target, body=body)
    assert status in (400, 403, 404), status
    assert storage.calls == []
    assert sorted(storage.objects) == ["dir/inner.txt", "ok.txt"]


def test_an_encoded_slash_in_the_request_path_is_a_separator(recorded: Share) -> None:
    """The HTTP server decodes the request path whole (as PEP 3333 asks), so
    ``%2F`` arrives as ``/``: it names the file below the folder, never anything outside
    the share (``..`` is refused after decoding, see BAD_TARGETS)."""
    status, body = raw_request(recorded.url, "GET", "/dir%2finner.txt")
    assert status == 200
    assert body.endswith(b"\r\n\r\ninner")


BAD_DESTINATIONS = [
    "/../escaped.txt",
    "/dir/../../escaped.txt",
    "/%2e%2e/escaped.txt",
    "/%252e%252e/escaped.txt",
    "/dir%2fescaped.txt",
    "/dir%5cescaped.txt",
    "/esc%00aped.txt",
    "//etc/escaped.txt",
    "/" + "y" * 300,
]


@pytest.mark.parametrize("destination", BAD_DESTINATIONS, ids=lambda t: t[:40])
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_bad_destinations_never_reach_the_storage(
    recorded: Share, method: str, destination: str
) -> None:
    storage = recorded.storage
    assert isinstance(storage, RecordingStorage)
    for absolute in (True, False):
        storage.calls.clear()
        header = recorded.url + destination if absolute else destination
        status, _ = raw_request(recorded.url, method, "/ok.txt", headers={"Destination": header})
        # "//host/x" alone names another host: wsgidav answers 502 (no cross-server copy).
        assert status in (400, 403, 404, 502), status
        # Only the (valid) source may have been looked at.
        assert {name for _, name in storage.calls} <= {"", "ok.txt"}
    assert sorted(storage.objects) == ["dir/inner.txt", "ok.txt"]


def test_good_requests_still_work_after_bad_ones(recorded: Share) -> None:
    raw_request(recorded.url, "GET", "/../etc/passwd")
    status, body = raw_request(recorded.url, "GET", "/dir/inner.txt")
    assert status == 200
    assert body.endswith(b"inner")


def exchange(share: Share, raw: bytes, *, timeout: float = 30) -> bytes:
    """Send ``raw`` on a new connection; everything the server answers until it closes
    (or stays silent for ``timeout`` seconds)."""
    host, _, port = share.url.removeprefix("http://").partition(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(raw)
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of every answer in ``answer`` (heads at the start of a line)."""
    return [int(code) for code in re.findall(rb"(?:^|\r\n)HTTP/1\.1 (\d{3}) ", answer)]


def test_a_malformed_chunked_body_is_one_400_then_the_connection_closes(recorded: Share) -> None:
    auth = basic_auth().encode()
    head = b"PUT /chunky.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth
    head += b"\r\nTransfer-Encoding: chunked\r\n"
    # Malformed at once (the body waits on the loop), and after more than 1 MiB (its
    # thread reads it already), and after 100 Continue.
    big = b"%x\r\n%b\r\n" % (1 << 21, b"x" * (1 << 21))
    for raw in (
        head + b"\r\nzz\r\nhello\r\n0\r\n\r\n",
        head + b"\r\n" + big + b"zz\r\n",
        head + b"Expect: 100-continue\r\n\r\n5\r\nhello\r\nzz\r\n",
    ):
        answer = exchange(recorded, raw)
        assert [code for code in statuses(answer) if code != 100] == [400], answer[:300]
    assert not recorded.storage.exists("chunky.txt")


@pytest.mark.parametrize(
    ("request_line", "headers", "expected"),
    [
        (b"OPTIONS * HTTP/1.1", b"Host: x\r\n", 200),
        (b"GET * HTTP/1.1", b"Host: x\r\n", 400),
        (b"PROPFIND * HTTP/1.1", b"Host: x\r\n", 400),
        (b"GET /ok.txt HTTP/1.1", b"", 400),
        (b"GET /ok.txt HTTP/2.0", b"Host: x\r\n", 505),
        (b"GET /ok.txt HTTP/1.0", b"", 200),
    ],
    ids=["options-star", "get-star", "propfind-star", "no-host", "http2", "http10-no-host"],
)
def test_request_lines_http11_refuses(
    recorded: Share, request_line: bytes, headers: bytes, expected: int
) -> None:
    auth = b"Authorization: " + basic_auth().encode() + b"\r\n"
    answer = exchange(
        recorded, request_line + b"\r\n" + headers + auth + b"Connection: close\r\n\r\n"
    )
    assert statuses(answer) == [expected], answer[:300]
    if request_line.startswith(b"OPTIONS"):
        assert b"\r\nDAV: 1,2\r\n" in answer and b"PROPFIND" in answer


@pytest.mark.parametrize(
    ("ranges", "status", "body"),
    [
        ("bytes=-0", 416, None),
        ("bytes=5-1", 200, b"ok"),
        ("bytes=-0,0-0", 206, b"o"),
        ("bytes=1-", 206, b"k"),
        ("bytes=x-y", 200, b"ok"),
    ],
)
def test_ranges_as_rfc_9110_reads_them(
    recorded: Share, ranges: str, status: int, body: bytes | None
) -> None:
    response = recorded.request("GET", "ok.txt", headers={"Range": ranges})
    assert response.status_code == status
    if body is not None:
        assert response.content == body
    else:
        assert response.headers["Content-Range"] == "bytes */2"


@pytest.mark.parametrize("credentials", [None, "Basic " + "bm9ib2R5Om5vcGU="])
def test_expect_100_continue_comes_after_authentication(
    tmp_path: Path, credentials: str | None
) -> None:
    """No ``100 Continue`` before a 401: the client never sends a body it would lose. (A
    small PUT to a local disk runs on the event loop; it waited for its body first.)"""
    auth = b"" if credentials is None else b"Authorization: " + credentials.encode() + b"\r\n"
    media = tmp_path / "media"
    with serve_share(FileSystemStorage(location=str(media)), tmp_path / "state") as share:
        answer = exchange(
            share,
            b"PUT /expected.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            + auth
            + b"Expect: 100-continue\r\n\r\n",
            timeout=5,
        )
        assert statuses(answer) == [401], answer[:300]
        assert not (media / "expected.txt").exists()
        # With good credentials it goes on as usual.
        status, _ = raw_request(
            share.url, "PUT", "/expected.txt", headers={"Expect": "100-continue"}, body=b"hello"
        )
        assert status == 201 and (media / "expected.txt").read_bytes() == b"hello"


def test_control_characters_never_reach_the_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A path with CR LF or a terminal escape cannot plant a line in the access log."""
    caplog.set_level(logging.INFO, logger="davstore.access")
    with serve_share(InMemoryStorage(), tmp_path / "state") as share:
        instrument(share.app, share.vfs)
        fake = "%0d%0a127.0.0.1%20alice%20DELETE%20/payroll.xlsx%20204%1b[2K%c2%85"
        for target in (f"/a{fake}", f"/dir%0a/{fake}"):
            status, _ = raw_request(share.url, "GET", target, auth=False)
            assert status in (400, 401)
        status, _ = raw_request(share.url, "GET", "/caf%c3%a9%20x.txt", auth=True)
        flush_access_log()
    lines = [r.getMessage() for r in caplog.records if r.name == "davstore.access"]
    assert len(lines) == 3
    for line in lines:
        assert line.isprintable() and "\x1b" not in line, repr(line)
        assert len(line.split()) == 8, line  # one word a field
    assert "\\x0d\\x0a127.0.0.1\\x20alice" in lines[0]
    assert "/café\\x20x.txt" in lines[2]
