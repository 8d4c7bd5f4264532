"""HTTP/1.1 as davstore's server (server.py) speaks it: which requests run on the event loop,
keep-alive and pipelining, bodies in and out, Expect: 100-continue, timeouts and refusals."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from davstore.http import server as http_server
from davstore.http.server import MAX_HEAD, ClientGone, make_server
from tests.webdav.serving import serve_share


class App:
    """A WSGI app that records the thread each request ran on; ``runs_inline`` names the
    paths the loop may answer."""

    def __init__(self) -> None:
        self.threads: dict[str, str] = {}
        self.errors: list[BaseException] = []
        self.read_started = threading.Event()

    def runs_inline(self, environ: dict[str, Any]) -> bool:
        return str(environ["PATH_INFO"]).startswith("/inline")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        path = environ["PATH_INFO"]
        self.threads[path] = threading.current_thread().name
        status, headers = "200 OK", [("Content-Type", "text/plain")]
        if path.endswith("/echo"):
            self.read_started.set()
            try:
                body = environ["wsgi.input"].read()
            except ClientGone as exc:
                self.errors.append(exc)
                raise
        elif path.endswith("/refuse"):
            status, body = "413 Content Too Large", b"too large"
        elif path.endswith("/big"):
            size = int(environ["QUERY_STRING"] or 1_000_000)
            headers.append(("Content-Length", str(size)))
            start_response(status, headers)
            return _blocks(size)
        elif path.endswith("/unsized"):
            start_response(status, headers)
            return iter([b"a" * 300_000, b"", b"b" * 5])
        elif path.endswith("/crash"):
            raise RuntimeError("the application failed")
        elif path.endswith("/slow"):
            time.sleep(0.3)
            body = b"slow"
        else:
            body = path.encode()
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return iter([body])


def _blocks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        block = min(65536, size - sent)
        yield bytes([sent // 65536 % 251]) * block
        sent += block


@contextlib.contextmanager
def served(
    app: Any, *, timeout: float = 30, threads: int = 4, **options: Any
) -> Iterator[tuple[str, int]]:
    server = make_server(app, "127.0.0.1", 0, threads=threads, timeout=timeout, **options)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="serve-loop", daemon=True)
    thread.start()
    try:
        yield server.bind_addr
    finally:
        server.stop()
        thread.join(10)


class Client:
    """A raw HTTP/1.1 connection that reads answers one at a time."""

    def __init__(self, addr: tuple[str, int], timeout: float = 10, source: str = "") -> None:
        self.sock = socket.create_connection(
            addr, timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"closed before an answer's head: {self.buffer!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    def answer(self, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head()
        if head_only or status in (100, 204, 304):
            return status, headers, b""
        if "content-length" in headers:
            size = int(headers["content-length"])
            while len(self.buffer) < size:
                assert self._fill(), "closed within a body"
            body, self.buffer = self.buffer[:size], self.buffer[size:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buffer:
                    assert self._fill()
                line, _, self.buffer = self.buffer.partition(b"\r\n")
                size = int(line, 16)
                while len(self.buffer) < size + 2:
                    assert self._fill()
                body += self.buffer[:size]
                self.buffer = self.buffer[size + 2 :]
                if not size:
                    break
        else:
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
        return status, headers, body

    def closed(self) -> bool:
        """True when the server closed the connection (nothing more to read)."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_quick_requests_run_on_the_loop_the_others_on_threads() -> None:
    app = App()
    with served(app) as addr:
        client = Client(addr)
        client.send(get("/inline/a") + get("/threaded/b"))
        assert client.answer()[2] == b"/inline/a"
        assert client.answer()[2] == b"/threaded/b"
        client.close()
    assert app.threads["/inline/a"] == "serve-loop"
    assert app.threads["/threaded/b"].startswith("davstore-http")


def test_pipelined_requests_are_answered_in_order() -> None:
    """More requests than the server parses ahead (_PIPELINE), GETs and PUTs with bodies,
    on the loop and on threads, sent at once: every answer, in order."""
    app = App()
    requests_: list[bytes] = []
    expected: list[bytes] = []
    for k in range(3 * http_server._PIPELINE):
        where = "inline" if k % 2 else "threaded"
        if k == 5:
            requests_.append(get("/threaded/slow"))
            expected.append(b"slow")
        elif k % 7 == 0:
            body = f"body {k} ".encode() * (k + 1)
            requests_.append(
                f"PUT /{where}/{k}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                f"\r\n\r\n".encode()
                + body
            )
            expected.append(body)
        else:
            requests_.append(get(f"/{where}/{k}"))
            expected.append(f"/{where}/{k}".encode())
    with served(app) as addr:
        client = Client(addr)
        client.send(b"".join(requests_))
        for body in expected:
            status, _, answer = client.answer()
            assert status == 200
            assert answer == body
        client.close()


@pytest.mark.parametrize("where", ["inline", "threaded"])
def test_bodies_by_length_and_chunked(where: str) -> None:
    app = App()
    with served(app) as addr:
        client = Client(addr)
        client.send(f"PUT /{where}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n".encode())
        client.send(b"hello")
        assert client.answer()[2] == b"hello"
        chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        client.send(
            b"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked
        )
        assert client.answer()[2] == b"hello world"
        client.close()


def test_a_big_body_streams_through_with_flow_control() -> None:
    """8 MiB in and out: the body is read in pieces while it arrives (the loop stops
    reading while 1 MiB waits), and the answer is written while the client reads."""
    app = App()
    payload = bytes(range(256)) * (8 * 4096)
    with served(app) as addr:
        client = Client(addr)
        sender = threading.Thread(
            target=client.send,
            args=(
                f"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}"
                f"\r\n\r\n".encode()
                + payload,
            ),
        )
        sender.start()
        status, headers, body = client.answer()
        sender.join()
        assert status == 200 and body == payload
        client.send(get(f"/inline/big?{len(payload)}"))
        status, headers, body = client.answer()
        assert headers["content-length"] == str(len(payload))
        assert body == b"".join(_blocks(len(payload)))
        client.close()
    assert app.threads["/inline/big"] == "serve-loop"  # its rest went out from a thread


def test_an_answer_without_length_is_chunked_on_http11_and_closes_on_http10() -> None:
    app = App()
    with served(app) as addr:
        client = Client(addr)
        client.send(get("/threaded/unsized"))
        status, headers, body = client.answer()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"a" * 300_000 + b"b" * 5
        client.close()
        old = Client(addr)
        old.send(b"GET /threaded/unsized HTTP/1.0\r\n\r\n")
        _status, headers, body = old.answer()
        assert "transfer-encoding" not in headers and headers["connection"] == "close"
        assert body == b"a" * 300_000 + b"b" * 5
        old.close()


def test_http10_keep_alive_is_kept_when_asked() -> None:
    with served(App()) as addr:
        client = Client(addr)
        for k in range(2):
            client.send(f"GET /inline/{k} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            _status, headers, body = client.answer()
            assert body == f"/inline/{k}".encode() and headers["connection"] == "keep-alive"
        client.send(b"GET /inline/last HTTP/1.0\r\n\r\n")
        assert client.answer()[2] == b"/inline/last"
        assert client.closed()
        client.close()


def test_100_continue_goes_out_when_the_body_is_read_and_not_for_a_refusal() -> None:
    app = App()
    with served(app) as addr:
        client = Client(addr)
        client.send(
            b"PUT /threaded/refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        status, headers, _ = client.answer()
        assert status == 413  # no 100 Continue before it
        assert headers["connection"] == "close"  # the unsent body cannot be skipped
        client.close()
        client = Client(addr)
        client.send(
            b"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert client.head()[0] == 100
        client.send(b"body")
        assert client.answer()[2] == b"body"
        client.close()


def test_an_unread_short_body_is_skipped_and_the_connection_kept() -> None:
    with served(App()) as addr:
        client = Client(addr)
        client.send(
            b"PUT /threaded/refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
            + get("/threaded/after")
        )
        assert client.answer()[0] == 413
        assert client.answer()[2] == b"/threaded/after"
        client.close()


def test_a_stalled_body_costs_no_thread_and_fails_after_the_timeout() -> None:
    """A short body arrives on the loop before its request takes a thread: stalled, it
    never reaches the application. With ``Expect: 100-continue`` the thread reads it (the
    application refuses or reads first) and fails at the timeout."""
    app = App()
    with served(app, timeout=1) as addr:
        client = Client(addr)
        client.send(b"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01")
        time.sleep(1.5)
        assert client.closed()
        client.close()
        assert not app.read_started.is_set() and "/threaded/echo" not in app.threads
        client = Client(addr)
        client.send(
            b"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert client.head()[0] == 100
        client.send(b"01")
        assert app.read_started.wait(5)
        time.sleep(1.5)
        assert client.closed()
        client.close()
    assert len(app.errors) == 1 and "stalled" in str(app.errors[0])


def test_an_idle_connection_and_a_trickled_head_are_closed_after_the_timeout() -> None:
    with served(App(), timeout=1) as addr:
        idle = Client(addr)
        trickle = Client(addr)
        trickle.send(b"GET /inline/x HTTP/1.1\r\n")
        small = Client(addr)
        small.send(b"PUT /inline/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01")
        time.sleep(2.5)
        for client in (idle, trickle, small):
            assert client.closed()
            client.close()


@pytest.mark.parametrize("quick", [False, True], ids=["wsgi", "answer_quick"])
def test_a_client_that_sends_no_more_gets_its_answer(quick: bool) -> None:
    """A half-closed connection: what arrived is answered (a short body as short). A body
    cut short is never offered to ``answer_quick``: it goes the usual way."""
    app = QuickApp() if quick else App()
    with served(app) as addr:
        client = Client(addr)
        client.send(b"PUT /inline/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
        client.sock.shutdown(socket.SHUT_WR)
        status, _, body = client.answer()
        assert status == 200 and body == b"0123"
        assert client.closed()
        client.close()
    assert getattr(app, "offers", []) == []


def test_refusals_of_what_is_no_request() -> None:
    with served(App()) as addr:
        client = Client(addr)
        client.send(get("/threaded/slow") + b"NOT HTTP AT ALL\r\n\r\n")
        assert client.answer()[2] == b"slow"  # the request before it is answered first
        status, headers, _ = client.answer()
        assert status == 400 and headers["connection"] == "close"
        assert client.closed()
        client.close()
        client = Client(addr)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * MAX_HEAD + b"\r\n\r\n")
        assert client.answer()[0] == 431
        client.close()


@pytest.mark.parametrize(
    "header",
    [b"Authorization: Basic YTpi", b"Host: y", b"Depth: 0", b"Destination: /inline/d"],
)
@pytest.mark.parametrize("where", ["/quick/a", "/inline/a", "/threaded/a"])
def test_a_single_valued_header_sent_twice_is_refused(header: bytes, where: str) -> None:
    """Two Authorization, Host, Depth or Destination headers: 400 and the connection
    closed, the application never asked (joined with a comma as list headers are, two
    credentials made wsgidav answer 500)."""
    app = QuickApp()
    with served(app) as addr:
        client = Client(addr)
        client.send(
            b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n%s\r\n\r\n"
            % (where.encode(), header, header.replace(b"x", b"z"))
        )
        status, headers, _ = client.answer()
        assert (status, headers["connection"]) == (400, "close")
        assert client.closed()
        client.close()
    assert app.offers == [] and app.threads == {}


def test_an_application_error_is_500_and_the_server_goes_on() -> None:
    with served(App()) as addr:
        for where in ("inline", "threaded"):
            client = Client(addr)
            client.send(get(f"/{where}/crash"))
            status, headers, _ = client.answer()
            assert status == 500 and headers["connection"] == "close"
            client.close()
        client = Client(addr)
        client.send(get("/inline/fine"))
        assert client.answer()[2] == b"/inline/fine"
        client.close()


def test_an_upgrade_request_is_answered_as_http11_and_the_connection_closed() -> None:
    with served(App()) as addr:
        client = Client(addr)
        client.send(
            b"GET /threaded/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        status, _headers, body = client.answer()
        assert status == 200 and body == b"/threaded/up"
        assert client.closed()
        client.close()


def test_headers_reach_the_environ_as_pep3333_says() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    with served(app) as addr:
        client = Client(addr)
        client.send(
            b"GET /a%20b/c%2Fd?x=1#frag HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n"
            b"X_Spoofed: 1\r\nContent-Type: text/plain\r\n\r\n"
        )
        status, headers, _ = client.answer()
        assert status == 204 and "date" in headers
        client.close()
    assert seen["PATH_INFO"] == "/a b/c/d"
    assert seen["QUERY_STRING"] == "x=1"
    assert seen["HTTP_X_A"] == "1,2"
    assert seen["CONTENT_TYPE"] == "text/plain"
    assert "HTTP_X_SPOOFED" not in seen  # an underscore would pass for a dash
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1" and seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["wsgi.url_scheme"] == "http"


def test_stop_closes_idle_connections_and_lets_answers_finish() -> None:
    app = App()
    server = make_server(app, "127.0.0.1", 0, threads=2, timeout=30)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    idle = Client(server.bind_addr)
    busy = Client(server.bind_addr)
    busy.send(get("/threaded/slow"))
    time.sleep(0.1)
    server.stop()
    thread.join(10)
    _status, headers, body = busy.answer()
    assert body == b"slow" and headers["connection"] == "close"
    assert idle.closed()
    idle.close()
    busy.close()


@contextlib.contextmanager
def _serving_loop(app: Any, *, busy_poll: float) -> Iterator[tuple[tuple[str, int], float]]:
    """Serve ``app``; yield its address and the CPU clock of the loop's thread."""
    server = make_server(app, "127.0.0.1", 0, threads=2, timeout=30, busy_poll=busy_poll)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="serve-loop", daemon=True)
    thread.start()
    while thread.ident is None:
        time.sleep(0.01)
    try:
        yield server.bind_addr, time.pthread_getcpuclockid(thread.ident)
    finally:
        server.stop()
        thread.join(10)


def _cpu_over(clock: int, seconds: float) -> float:
    """The CPU seconds ``clock``'s thread uses in the next ``seconds``."""
    before = time.clock_gettime(clock)
    time.sleep(seconds)
    return time.clock_gettime(clock) - before


@pytest.mark.parametrize("path", ["/quick/a", "/inline/a", "/threaded/a"])
def test_the_loop_polls_for_a_while_after_an_answer_then_sleeps(path: str) -> None:
    """Answered by answer_quick, on the loop (runs_inline) or on a thread."""
    with _serving_loop(QuickApp(), busy_poll=0.6) as (addr, loop_cpu):
        client = Client(addr)
        client.send(get(path))
        assert client.answer()[2].endswith(path.encode())
        assert _cpu_over(loop_cpu, 0.2) > 0.04  # polling: all the CPU it gets
        time.sleep(0.5)
        assert _cpu_over(loop_cpu, 0.2) < 0.02  # the time is over: asleep
        client.close()


def test_the_loop_sleeps_at_once_without_busy_poll() -> None:
    with _serving_loop(App(), busy_poll=0) as (addr, loop_cpu):
        client = Client(addr)
        client.send(get("/inline/a"))
        assert client.answer()[0] == 200
        assert _cpu_over(loop_cpu, 0.2) < 0.02
        client.close()


def test_usable_cpus_follow_the_affinity_and_a_container_quota(tmp_path: Path) -> None:
    """Busy polling is on by default only where two CPUs or more may be used."""
    mine = float(len(os.sched_getaffinity(0)))
    assert http_server.usable_cpus(tmp_path / "none") == mine  # no control group files
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert http_server.usable_cpus(v2) == mine
    (v2 / "cpu.max").write_text("50000 100000\n")  # a limit of half a CPU
    assert http_server.usable_cpus(v2) == 0.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert http_server.usable_cpus(v1) == mine
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    assert http_server.usable_cpus(v1) == min(mine, 1.5)
    (v2 / "cpu.max").write_text("garbage")
    assert http_server.usable_cpus(v2) == mine
    assert (http_server.BUSY_POLL > 0) == (http_server.usable_cpus() >= 2)


def test_the_loop_does_not_poll_while_a_request_runs_on_a_thread() -> None:
    """The thread's Python would wait for the GIL the polling loop takes back and back."""
    app = App()
    with _serving_loop(app, busy_poll=5.0) as (addr, loop_cpu):
        quick, slow = Client(addr), Client(addr)
        quick.send(get("/inline/a"))
        assert quick.answer()[0] == 200
        assert _cpu_over(loop_cpu, 0.05) > 0.005  # polling
        slow.send(get("/threaded/slow"))  # runs 0.3 s on a thread
        deadline = time.monotonic() + 5
        while "/threaded/slow" not in app.threads and time.monotonic() < deadline:
            time.sleep(0.001)
        assert _cpu_over(loop_cpu, 0.15) < 0.03
        assert slow.answer()[2] == b"slow"
        quick.close()
        slow.close()


def test_the_share_answers_small_gets_and_puts_on_the_loop(tmp_path: Path) -> None:
    """davstore's app: small GETs and PUTs of a local store run inline, the rest (and
    everything on a store that may wait on a network) on threads."""
    names: list[str] = []
    real = http_server._Connection._run_inline
    real_quick = http_server._Connection._quick

    def spy(self: Any, request: Any) -> None:
        names.append(f"{request.environ['REQUEST_METHOD']} {request.environ['PATH_INFO']}")
        real(self, request)

    def quick_spy(self: Any, request: Any) -> bool:
        answered: bool = real_quick(self, request)
        if answered:
            names.append(f"at once {request.url.decode()}")
        return answered

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http_server._Connection, "_run_inline", spy)
        patch.setattr(http_server._Connection, "_quick", quick_spy)
        storage = FileSystemStorage(location=str(tmp_path / "media"))
        with serve_share(storage, tmp_path / "state") as share:
            assert share.request("PUT", "a.txt", data=b"x" * 1000).status_code == 201
            assert share.request("GET", "a.txt").content == b"x" * 1000
            assert share.request("PUT", "big.bin", data=b"y" * 200_000).status_code == 201
            assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
            assert share.request("GET", "").status_code == 200
        assert names == ["at once /a.txt", "at once /a.txt"]  # the PUT, then the GET
        names.clear()
        with serve_share(InMemoryStorage(), tmp_path / "state2", read_only=True) as share:
            assert share.request("PUT", "a.txt", data=b"x").status_code == 403
        assert names == ["PUT /a.txt"]


def test_a_client_that_does_not_read_its_answers_is_not_buffered_without_bound() -> None:
    """500 pipelined GETs of 100 kB answers, none read for a while: the server stops
    reading from the client (its answers wait in the socket and at most a few MiB of
    buffer), then answers all of them, in order, once the client reads."""
    server = make_server(App(), "127.0.0.1", 0, threads=2, timeout=30)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    count, size = 500, 100_000
    client = Client(server.bind_addr, timeout=30)
    sender = threading.Thread(
        target=client.send, args=(b"".join(get(f"/inline/{k}/big?{size}") for k in range(count)),)
    )
    sender.start()
    time.sleep(1.0)
    (conn,) = server.connections
    assert conn.reading_paused
    assert conn.transport is not None
    assert conn.transport.get_write_buffer_size() <= http_server._WRITE_HIGH + size
    # parsing stops within a slice of heads after the limit
    assert len(conn.requests) <= http_server._PIPELINE + http_server._SLICE // 16
    expected = b"".join(_blocks(size))
    for _ in range(count):
        status, _headers, body = client.answer()
        assert status == 200 and body == expected
    sender.join(10)
    client.close()
    server.stop()
    thread.join(10)


class QuickApp(App):
    """:class:`App` with an ``answer_quick`` that answers paths under ``/quick`` itself
    (``/quick/none...``: declines; ``/quick/fails``: raises) and notes every offer."""

    def __init__(self) -> None:
        super().__init__()
        self.offers: list[tuple[str, str, list[tuple[bytes, bytes]], str, bytes]] = []

    def answer_quick(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], client: str, body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        self.offers.append((method, path, list(headers), client, body))
        if not path.startswith("/quick") or path.startswith("/quick/none"):
            return None
        if path.endswith("/fails"):
            raise RuntimeError("answer_quick failed")
        body = f"quick {path}".encode("latin-1") + (f" {len(body)}".encode() if body else b"")
        return "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body


def test_answer_quick_answers_from_the_head_alone(caplog: pytest.LogCaptureFixture) -> None:
    """A request without a body, alone on a keep-alive HTTP/1.1 connection, is offered to
    ``answer_quick`` before any environ is made; its answer is framed as a WSGI answer's
    (Content-Length, Date; no body for HEAD). Declined or failed: the WSGI app answers."""
    app = QuickApp()
    with served(app) as addr:
        client = Client(addr)
        client.send(get("/quick/a"))
        status, headers, body = client.answer()
        assert (status, body) == (200, b"quick /quick/a")
        assert headers["content-length"] == str(len(body)) and "date" in headers
        assert app.offers[-1] == ("GET", "/quick/a", [(b"Host", b"x")], "127.0.0.1", b"")
        client.send(b"HEAD /quick/h HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = client.answer(head_only=True)
        assert status == 200 and headers["content-length"] == str(len(b"quick /quick/h"))
        with caplog.at_level(logging.ERROR, logger="davstore.http.server"):
            for path, answer in (
                ("/quick/%C3%BC", "quick /quick/ü".encode()),  # PATH_INFO as PEP 3333 has it
                ("/quick/none", b"/quick/none"),  # the WSGI app's answer
                ("/quick/fails", b"/quick/fails"),
            ):
                client.send(get(path))
                assert client.answer()[2] == answer
        assert "answer_quick failed" in caplog.text
        assert set(app.threads) == {"/quick/none", "/quick/fails"}, "no environ for the others"
        assert client.buffer == b""
        client.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /quick/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /quick/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /quick/b HTTP/1.0\r\nHost: x\r\n\r\n",
        b"PUT /quick/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
        b"PUT /quick/b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        % (http_server.QUICK_BODY + 1)
        + b"x" * (http_server.QUICK_BODY + 1),
    ],
    ids=["chunked", "close", "http-1.0", "expect", "too-big"],
)
def test_answer_quick_is_not_offered_an_unframed_body_or_a_closing_connection(
    request_bytes: bytes,
) -> None:
    app = QuickApp()
    with served(app) as addr:
        client = Client(addr)
        client.send(request_bytes)
        assert client.answer()[:1] == (200,)
        assert app.offers == [] and set(app.threads) == {"/quick/b"}
        client.close()


def test_answer_quick_waits_for_the_requests_ahead() -> None:
    """Pipelined behind a request still being answered, a request is not offered: answers
    go out in order."""
    app = QuickApp()
    with served(app) as addr:
        client = Client(addr)
        client.send(get("/threaded/slow") + get("/quick/x") + get("/quick/y"))
        assert [client.answer()[2] for _ in range(3)] == [b"slow", b"/quick/x", b"/quick/y"]
        assert [offer[1] for offer in app.offers] == ["/threaded/slow"]
        client.send(get("/quick/z"))  # alone again
        assert client.answer()[2] == b"quick /quick/z"
        client.close()


def test_answer_quick_is_offered_a_small_body_once_it_is_whole() -> None:
    app = QuickApp()
    with served(app) as addr:
        client = Client(addr)
        client.send(b"PUT /quick/p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.2)
        assert app.offers == [], "not before its body is whole"
        client.send(b"56789")
        assert client.answer()[::2] == (200, b"quick /quick/p 10")
        assert app.offers[-1][4] == b"0123456789"
        client.send(b"PUT /quick/none/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert client.answer()[2] == b"hello", "declined: the WSGI app reads the same body"
        client.close()


def test_a_trickled_head_is_cut_at_the_header_timeout() -> None:
    """Bytes that trickle in do not extend the deadline of a request head (408)."""
    app = App()
    with served(app, timeout=30, header_timeout=1) as addr:
        trickle = Client(addr)
        silent = Client(addr)
        trickle.send(b"GET /threaded/x HTTP/1.1\r\n")
        for _ in range(20):  # a header line's byte every 0.2 s, for longer than 1 s
            try:
                trickle.send(b"X")
            except OSError:
                break
            time.sleep(0.2)
        status, _, _ = trickle.answer()
        assert status == 408
        assert trickle.closed() and silent.closed()  # a new connection owes a head too
        trickle.close()
        silent.close()
        # A connection that sends its head in time is answered as usual.
        client = Client(addr)
        client.send(get("/threaded/in-time"))
        assert client.answer()[2] == b"/threaded/in-time"
        client.close()
    assert "/threaded/x" not in app.threads


def test_connections_per_client_address_are_capped() -> None:
    with served(App(), max_connections_per_client=3) as addr:
        kept = [Client(addr) for _ in range(3)]
        refused = Client(addr)
        status, headers, _ = refused.answer()
        assert status == 503 and headers["connection"] == "close"
        refused.close()
        for client in kept:  # the ones within the cap are served
            client.send(get("/threaded/kept"))
            assert client.answer()[0] == 200
        kept.pop().close()
        time.sleep(0.2)  # the server sees the close
        again = Client(addr)
        again.send(get("/threaded/again"))
        assert again.answer()[2] == b"/threaded/again"
        for client in [*kept, again]:
            client.close()


def test_a_body_that_holds_a_thread_must_keep_a_minimum_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body sent after 100 Continue (or past 1 MiB) holds a thread: arriving slower than
    MIN_BODY_RATE, it is cut with 408, and the thread is free again."""
    monkeypatch.setattr(http_server, "_RATE_WINDOW", 1.0)
    app = App()
    with served(app, timeout=30, threads=1) as addr:
        slow = Client(addr)
        slow.send(
            b"PUT /threaded/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert slow.head()[0] == 100
        for _ in range(40):
            try:
                slow.send(b"x")
            except OSError:
                break
            time.sleep(0.1)
        assert slow.answer()[0] == 408
        assert slow.closed()
        slow.close()
        other = Client(addr)
        other.send(get("/threaded/after"))
        assert other.answer()[2] == b"/threaded/after"
        other.close()
    assert len(app.errors) == 1


def test_one_client_holds_at_most_its_share_of_the_threads() -> None:
    """Requests of one address beyond ``threads_per_client`` wait on the loop; another
    address is served meanwhile."""
    app = Gate()
    with served(app, threads=4, threads_per_client=2) as addr:
        held = [Client(addr) for _ in range(3)]
        for client in held:
            client.send(get("/gate"))
        assert app.entered.acquire(timeout=10) and app.entered.acquire(timeout=10)
        assert not app.entered.acquire(timeout=0.5)  # the third waits for a thread
        other = Client(addr, source="127.0.0.2")  # another client address
        other.send(get("/other"))
        assert other.answer()[2] == b"/other"
        other.close()
        app.release.set()
        for client in held:
            assert client.answer()[2] == b"/gate"
            client.close()


class Gate:
    """A WSGI app whose ``/gate`` requests wait for ``release``."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/gate":
            self.entered.release()
            self.release.wait(30)
        body = path.encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]


def _pool_threads(server: Any) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(server.pool._thread_name_prefix)]


def test_released_threads_end_when_idle_and_new_ones_start_on_demand() -> None:
    app = App()
    server = make_server(app, "127.0.0.1", 0, threads=8, timeout=30)  # 4 per client
    server.prepare()
    loop_thread = threading.Thread(target=server.serve, name="serve-loop", daemon=True)
    loop_thread.start()
    try:
        clients = [Client(server.bind_addr) for _ in range(4)]
        for client in clients:  # four at once: four threads
            client.send(get("/slow"))
        assert [c.answer()[2] for c in clients] == [b"slow"] * 4
        first = server.pool
        assert len(_pool_threads(server)) == 4
        server.release_threads()
        deadline = time.monotonic() + 20
        while _pool_threads(server) or server.pool is first:
            assert time.monotonic() < deadline, _pool_threads(server)
            time.sleep(0.05)
        clients[0].send(get("/threaded/again"))  # on a connection kept alive
        assert clients[0].answer()[2] == b"/threaded/again"
        assert app.threads["/threaded/again"].startswith("davstore-http")
        assert len(_pool_threads(server)) == 1
        for client in clients:
            client.close()
    finally:
        server.stop()
        loop_thread.join(10)
