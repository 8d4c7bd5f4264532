"""Answers whose body is a FileBody: sent with sendfile(2) from the event loop (partial
sends, a slow or vanishing client, a file that shrinks), read and written over TLS."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from davstore.http.wsgi import FileBody
from tests.http.test_server import Client, get, served

SIZE = 8 << 20  # more than the socket takes at once, and than one turn of the loop


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture
def sendfiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts os.sendfile sent, call by call."""
    sent: list[int] = []
    original = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        got = original(out_fd, in_fd, offset, count)
        sent.append(got)
        return got

    monkeypatch.setattr(os, "sendfile", spy)
    return sent


class FileApp:
    """``/file?START-LENGTH`` answers that range of ``path`` as a FileBody; ``/plain``
    answers a few bytes. Records the bodies it closed and the threads it ran on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed: list[FileBody] = []
        self.threads: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        if environ["PATH_INFO"] == "/plain":
            start_response("200 OK", [("Content-Length", "5")])
            return [b"plain"]
        start, length = 0, self.path.stat().st_size
        if environ["QUERY_STRING"]:
            start, length = map(int, environ["QUERY_STRING"].split("-"))
        fd = os.open(self.path, os.O_RDONLY)
        body: FileBody

        def close() -> None:
            os.close(fd)
            self.closed.append(body)

        body = FileBody(fd, start, length, close)
        start_response("200 OK", [("Content-Length", str(length))])
        return body


def wait_for(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("part", [None, (0, SIZE), (1, 100), (12345, 3 << 20), (SIZE - 7, 7)])
def test_whole_and_ranges_go_by_sendfile_byte_exact(
    data_file: Path, sendfiles: list[int], part: tuple[int, int] | None
) -> None:
    app = FileApp(data_file)
    content = data_file.read_bytes()
    start, length = part or (0, SIZE)
    query = f"?{start}-{length}" if part else ""
    with served(app) as addr:
        client = Client(addr)
        for _ in range(2):  # keep-alive: the connection goes on after the file
            client.send(get(f"/file{query}"))
            status, headers, body = client.answer()
            assert status == 200 and headers["content-length"] == str(length)
            assert body == content[start : start + length]
        client.send(get("/plain"))
        assert client.answer()[2] == b"plain"
        client.close()
        assert wait_for(lambda: len(app.closed) == 2)
    assert sum(sendfiles) == 2 * length


def test_a_slow_reader_gets_every_byte_and_holds_no_thread(
    data_file: Path, sendfiles: list[int]
) -> None:
    app = FileApp(data_file)
    with served(app, threads=1) as addr:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        slow.connect(addr)
        slow.sendall(get("/file"))
        time.sleep(0.3)  # the socket is full: the rest waits on the loop, not on the thread
        other = Client(addr)
        other.send(get("/plain"))
        assert other.answer()[2] == b"plain"  # the only thread is free
        other.close()
        received = b""
        while b"\r\n\r\n" not in received:
            received += slow.recv(65536)
        received = received.partition(b"\r\n\r\n")[2]
        while len(received) < SIZE:
            chunk = slow.recv(65536)
            assert chunk
            received += chunk
        slow.close()
        assert received == data_file.read_bytes()
        assert wait_for(lambda: len(app.closed) == 1)
    assert len(sendfiles) > 2  # in several partial sends
    assert sum(sendfiles) == SIZE


def test_a_client_that_closes_early_ends_the_send(data_file: Path, sendfiles: list[int]) -> None:
    app = FileApp(data_file)
    with served(app) as addr:
        for _ in range(3):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.connect(addr)
            sock.sendall(get("/file"))
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, with most of the file unsent
        assert wait_for(lambda: len(app.closed) == 3)  # every file closed
        client = Client(addr)
        client.send(get("/plain"))
        assert client.answer()[2] == b"plain"
        client.close()
    assert sum(sendfiles) < 3 * SIZE


def test_a_client_that_reads_nothing_is_cut_off_after_the_timeout(
    tmp_path: Path, sendfiles: list[int]
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (64 << 20))  # more than the socket buffers hold
    app = FileApp(big)
    with served(app, timeout=1) as addr:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(addr)
        sock.sendall(get("/file"))  # and never read
        assert wait_for(lambda: len(app.closed) == 1, 15)  # the sweep aborted it
        sock.close()
    assert sum(sendfiles) < 64 << 20


def test_a_file_that_shrinks_while_sent_closes_the_connection(
    data_file: Path, sendfiles: list[int]
) -> None:
    app = FileApp(data_file)
    content = data_file.read_bytes()
    with served(app) as addr:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(addr)
        sock.settimeout(10)
        sock.sendall(get("/file"))
        received = sock.recv(65536)
        os.truncate(data_file, 1 << 20)  # changed in place, behind the server's back
        while chunk := sock.recv(1 << 20):
            received += chunk
        sock.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % SIZE in head
        # Less than the length said, then the connection closed (recv ended). The socket's
        # queue refers to the file's pages (zero copy): what the truncate dropped may come
        # as zeros, so only the part the file kept is compared.
        assert 1 << 20 <= len(body) < SIZE
        assert body[: 1 << 20] == content[: 1 << 20]
        assert wait_for(lambda: len(app.closed) == 1)


def test_head_sends_no_body_and_closes_the_file(data_file: Path, sendfiles: list[int]) -> None:
    app = FileApp(data_file)
    with served(app) as addr:
        client = Client(addr)
        client.send(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = client.answer(head_only=True)
        assert status == 200 and headers["content-length"] == str(SIZE)
        client.send(get("/plain"))
        assert client.answer()[2] == b"plain"  # nothing of the file came between
        client.close()
        assert wait_for(lambda: len(app.closed) == 1)
    assert sendfiles == []


def _certificate(folder: Path) -> tuple[Path, Path]:
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", "tls.key", "-out", "tls.crt", "-subj", "/CN=127.0.0.1"),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / "tls.crt", folder / "tls.key"


def test_over_tls_the_file_is_read_and_written(
    data_file: Path, sendfiles: list[int], tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    app = FileApp(data_file)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with served(app, tls_cert=cert, tls_key=key) as addr:
        raw = socket.create_connection(addr, timeout=10)
        client = Client.__new__(Client)
        client.sock = context.wrap_socket(raw)
        client.buffer = b""
        client.send(get("/file?100-3000000"))
        status, _, body = client.answer()
        assert status == 200 and body == data_file.read_bytes()[100:3000100]
        client.close()
        assert wait_for(lambda: len(app.closed) == 1)
    assert sendfiles == []


class QuickFileApp(FileApp):
    """Answers ``GET /quick`` from the head alone (``answer_quick``) with the whole file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.quick: list[str] = []

    def answer_quick(self, method: str, path: str, headers: Any, client: str, body: bytes) -> Any:
        if method != "GET" or path != "/quick":
            return None
        self.quick.append(threading.current_thread().name)
        fd = os.open(self.path, os.O_RDONLY)
        answer: FileBody

        def close() -> None:
            os.close(fd)
            self.closed.append(answer)

        answer = FileBody(fd, 0, self.path.stat().st_size, close)
        return "200 OK", [("Content-Length", str(answer.length))], answer


@pytest.mark.parametrize("tls", [False, True])
def test_a_quick_answer_may_be_a_file(
    data_file: Path, sendfiles: list[int], tmp_path: Path, tls: bool
) -> None:
    app = QuickFileApp(data_file)
    options: dict[str, Any] = {}
    if tls:
        options["tls_cert"], options["tls_key"] = _certificate(tmp_path)
    with served(app, **options) as addr:
        client = Client(addr)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            client.sock = context.wrap_socket(client.sock)
        pipelined = get("/quick") + get("/plain")
        client.send(pipelined)
        status, _, body = client.answer()
        assert status == 200 and body == data_file.read_bytes()
        assert client.answer()[2] == b"plain"  # after the file, in order
        client.close()
        assert wait_for(lambda: len(app.closed) == 1)
    assert app.quick == ["serve-loop"]
    assert sum(sendfiles) == (0 if tls else SIZE)


def test_iterated_a_file_body_reads_its_range(data_file: Path) -> None:
    fd = os.open(data_file, os.O_RDONLY)
    closed: list[bool] = []
    body = FileBody(fd, 10, 3 << 20, lambda: closed.append(True), block_size=1 << 20)
    try:
        chunks = list(body)
    finally:
        body.close()
        body.close()
        os.close(fd)
    assert [len(c) for c in chunks] == [1 << 20] * 3
    assert b"".join(chunks) == data_file.read_bytes()[10 : 10 + (3 << 20)]
    assert closed == [True]  # once
