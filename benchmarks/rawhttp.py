"""A minimal HTTP/1.1 client on raw sockets, cheap enough to measure the server, not itself.

``http.client`` and ``requests`` spend tens to hundreds of microseconds of Python per request,
which on a 2-core machine shared with the server would show up in small-request rates. This
client builds each request as one ``bytes`` and parses only the status line and the headers that
frame the body (Content-Length, chunked, Connection). Big bodies move in 1 MiB blocks with
``recv_into``/``sendall`` into reused buffers.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MiB = 1 << 20


class HttpError(Exception):
    pass


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class ResponseParser:
    """Incremental parser of one response (``feed`` until it returns True)."""

    __slots__ = ("body_len", "buf", "chunked", "close", "done", "head_end", "headers", "status")

    def __init__(self, *, head: bool = False) -> None:
        self.buf = bytearray()
        self.head_end = -1
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body_len: int | None = 0 if head else None
        self.chunked = False
        self.close = False
        self.done = False

    def feed(self, data: bytes) -> bool:
        self.buf += data
        if self.head_end < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.head_end = end + 4
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.close = self.headers.get("connection", "").lower() == "close"
            if self.body_len is None:
                if self.status in (204, 304) or 100 <= self.status < 200:
                    self.body_len = 0
                elif "chunked" in self.headers.get("transfer-encoding", "").lower():
                    self.chunked = True
                elif "content-length" in self.headers:
                    self.body_len = int(self.headers["content-length"])
                else:
                    self.close = True  # body ends when the server closes
        if self.chunked:
            self.done = self.buf.endswith(b"0\r\n\r\n") and self._dechunk() is not None
        elif self.body_len is not None:
            self.done = len(self.buf) >= self.head_end + self.body_len
        return self.done

    def eof(self) -> None:
        if self.head_end >= 0 and self.body_len is None and not self.chunked:
            self.done = True
        if not self.done:
            raise HttpError("connection closed before the response was complete")

    def _dechunk(self) -> bytes | None:
        out, pos, buf = bytearray(), self.head_end, self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                return bytes(out)
            start = eol + 2
            if len(buf) < start + size + 2:
                return None
            out += buf[start : start + size]
            pos = start + size + 2

    def response(self) -> Response:
        if self.chunked:
            body = self._dechunk() or b""
        elif self.body_len is None:
            body = bytes(self.buf[self.head_end :])
        else:
            body = bytes(self.buf[self.head_end : self.head_end + self.body_len])
        return Response(self.status, self.headers, body)


def build_request(
    method: str, path: str, host: str, body_len: int | None, headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: davstore-bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body_len is not None:
        lines.append(f"Content-Length: {body_len}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection:
    """One keep-alive connection; reconnects when the server asked to close."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.hostport = f"{host}:{port}"
        self.sock: socket.socket | None = None
        self.reconnects = -1

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            self.reconnects += 1
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request with a small body and read the whole response."""
        sent_body = body if body is not None else (b"" if method in ("PUT", "POST") else None)
        data = build_request(
            method, path, self.hostport, None if sent_body is None else len(sent_body), headers
        )
        sock = self._connect()
        sock.sendall(data + sent_body if sent_body else data)
        parser = ResponseParser(head=method == "HEAD")
        while True:
            chunk = sock.recv(262144)
            if not chunk:
                parser.eof()
                break
            if parser.feed(chunk):
                break
        if parser.close:
            self.close()
        return parser.response()

    def get_stream(self, path: str, on_block: Callable[[int, memoryview], None]) -> int:
        """GET ``path`` reading the body in whole 1 MiB blocks; returns the body length.

        ``on_block(index, block)`` sees each block (the last one may be shorter).
        """
        sock = self._connect()
        sock.sendall(build_request("GET", path, self.hostport, None))
        buf = bytearray(MiB)
        view = memoryview(buf)
        parser = ResponseParser()
        while not parser.head_end >= 0:
            data = sock.recv(65536)
            if not data:
                parser.eof()
            parser.feed(data)
        if parser.status != 200 or parser.chunked or parser.body_len is None:
            raise HttpError(
                f"GET {path}: status {parser.status}, needs Content-Length: {parser.headers}"
            )
        total = parser.body_len
        early = bytes(parser.buf[parser.head_end :])
        filled = len(early)
        view[:filled] = early
        got, index = 0, 0
        while got < total:
            want = min(MiB, total - got)
            while filled < want:
                n = sock.recv_into(view[filled:want])
                if n == 0:
                    raise HttpError(f"GET {path}: connection closed at {got + filled} of {total}")
                filled += n
            on_block(index, view[:want])
            got += want
            index += 1
            filled = 0
        if parser.close:
            self.close()
        return got

    def put_stream(self, path: str, size: int, blocks: Iterable[bytes]) -> Response:
        """PUT ``size`` bytes from ``blocks`` with a Content-Length; returns the response."""
        sock = self._connect()
        sock.sendall(build_request("PUT", path, self.hostport, size))
        sent = 0
        for block in blocks:
            sock.sendall(block)
            sent += len(block)
        if sent != size:
            raise HttpError(f"PUT {path}: produced {sent} bytes, announced {size}")
        parser = ResponseParser()
        while True:
            data = sock.recv(65536)
            if not data:
                parser.eof()
                break
            if parser.feed(data):
                break
        if parser.close:
            self.close()
        return parser.response()


@dataclass(slots=True)
class RateResult:
    done: int
    errors: int
    seconds: float
    first_error: str = ""
    #: CPU seconds the client's thread used meanwhile (``time.thread_time``).
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_us(self) -> float | None:
        """The client's CPU per answered request (µs): a row whose client used about a
        core measures the client as much as the server, and a server that writes its
        answer so that it costs the receiver more shows here."""
        answered = self.done + self.errors
        return self.client_cpu / answered * 1e6 if answered else None


def run_concurrent(
    host: str,
    port: int,
    connections: int,
    requests: list[list[bytes]],
    *,
    max_seconds: float,
    expect: Callable[[str, ResponseParser], bool],
) -> RateResult:
    """Drive ``connections`` keep-alive connections from one thread, one request in flight each.

    ``requests[k]`` is connection k's list of raw requests (see :func:`build_request`).
    Stops when all lists are done or after ``max_seconds`` (requests in flight finish).
    ``expect(method, parser)`` decides whether a finished response counts as done or as error.
    """
    sel = selectors.DefaultSelector()

    def connect() -> socket.socket:
        sock = socket.create_connection((host, port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    done = errors = 0
    first_error = ""
    cpu_start = time.thread_time()
    socks: list[socket.socket | None] = [None] * connections
    cursor = [0] * connections
    parsers: list[ResponseParser | None] = [None] * connections
    start = time.monotonic()
    deadline = start + max_seconds

    def send_next(k: int) -> bool:
        if cursor[k] >= len(requests[k]) or time.monotonic() > deadline:
            return False
        raw = requests[k][cursor[k]]
        sock = socks[k]
        if sock is None:
            sock = socks[k] = connect()
            sel.register(sock, selectors.EVENT_READ, k)
        sock.sendall(raw)
        parsers[k] = ResponseParser(head=raw.startswith(b"HEAD "))
        return True

    try:
        active = sum(1 for k in range(connections) if send_next(k))
        while active:
            events = sel.select(timeout=max(0.0, min(30.0, deadline + 30 - time.monotonic())))
            if not events:
                raise HttpError("no response within 30 s")
            for key, _ in events:
                k = int(key.data)
                sock = socks[k]
                parser = parsers[k]
                assert sock is not None and parser is not None
                data = sock.recv(262144)
                if data:
                    if not parser.feed(data):
                        continue
                else:
                    parser.eof()
                method = requests[k][cursor[k]].split(b" ", 1)[0].decode()
                if expect(method, parser):
                    done += 1
                else:
                    errors += 1
                    if not first_error:
                        first_error = (
                            f"{method} -> {parser.status} {parser.response().body[:200]!r}"
                        )
                if parser.close or not data:
                    sel.unregister(sock)
                    sock.close()
                    socks[k] = None
                cursor[k] += 1
                if not send_next(k):
                    active -= 1
        seconds = time.monotonic() - start
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()
        sel.close()
    return RateResult(done, errors, seconds, first_error, time.thread_time() - cpu_start)
