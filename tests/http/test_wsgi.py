"""davstore's HTTP server (server.py) as WSGI asks: start_response, wsgi.input, stopping."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from davstore.http.server import make_server
from tests.webdav.serving import serve_in_thread


def _lazy_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    """Calls start_response only when iterated (PEP 3333 allows it; wsgidav does it)."""
    path = environ["PATH_INFO"]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        body = b"|".join(lines)
    elif path == "/read-all":
        body = environ["wsgi.input"].read(-1)
    elif path == "/slow":
        time.sleep(0.5)
        body = b"slow"
    else:
        body = path.encode()
    start_response("207 Multi-Status", [("Content-Type", "text/plain"), ("X-Seen", "yes")])
    yield body


def test_start_response_called_while_iterating_sets_status_and_headers() -> None:
    with serve_in_thread(_lazy_app) as (url, _):
        answer = requests.get(url + "/hello", timeout=10)
    assert answer.status_code == 207
    assert answer.headers["X-Seen"] == "yes"
    assert answer.content == b"/hello"


def test_input_lines_and_read_minus_one() -> None:
    with serve_in_thread(_lazy_app) as (url, _):
        lines = requests.post(url + "/lines", data=b"ab\ncd\nef", timeout=10)
        whole = requests.post(url + "/read-all", data=b"x" * 100_000, timeout=10)
    assert lines.content == b"ab\n|cd\n|ef"
    assert whole.content == b"x" * 100_000


def test_connections_beyond_the_thread_count_are_answered() -> None:
    """Idle keep-alive connections hold no thread: 12 of them on a 2-thread server all get
    their answers (with as many connection slots as threads, the third never did)."""
    with serve_in_thread(_lazy_app, threads=2) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(12)]
        try:
            for round_ in range(2):
                for k, sock in enumerate(socks):
                    sock.sendall(f"GET /c{k}r{round_} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                for k, sock in enumerate(socks):
                    data = b""
                    while not data.endswith(f"/c{k}r{round_}".encode()):
                        chunk = sock.recv(4096)
                        assert chunk, f"connection {k} closed"
                        data += chunk
                    assert data.startswith(b"HTTP/1.1 207")
        finally:
            for sock in socks:
                sock.close()


def test_stop_waits_for_requests_in_progress() -> None:
    server = make_server(_lazy_app, "127.0.0.1", 0, threads=4, timeout=30)
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    answers: list[bytes] = []

    def slow() -> None:
        answers.append(requests.get(f"http://127.0.0.1:{port}/slow", timeout=10).content)

    client = threading.Thread(target=slow)
    client.start()
    time.sleep(0.2)
    assert server.in_progress == 1
    server.stop()
    client.join(10)
    thread.join(10)
    assert answers == [b"slow"] and server.in_progress == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_port_in_use_is_refused() -> None:
    first = make_server(_lazy_app, "127.0.0.1", 0)
    first.prepare()
    try:
        second = make_server(_lazy_app, "127.0.0.1", first.bind_addr[1])
        with pytest.raises(OSError):
            second.prepare()
    finally:
        first.stop()
