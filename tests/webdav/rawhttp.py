"""Raw HTTP over a socket, for requests no well-behaved client library would send."""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import threading
from urllib.parse import urlsplit

from tests.webdav.serving import PASSWORD, USER


def basic_auth(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_request(
    base_url: str,
    method: str,
    target: bytes | str,
    *,
    headers: dict[str, str | None] | None = None,
    body: bytes = b"",
    auth: bool = True,
) -> tuple[int, bytes]:
    """Send one request exactly as given; return (status, response bytes after the line).

    A header whose value is ``None`` is not sent.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode()]
    all_headers: dict[str, str | None] = {"Connection": "close", "Content-Length": str(len(body))}
    if auth:
        all_headers["Authorization"] = basic_auth()
    all_headers.update(headers or {})
    # A header given as None is left out (a chunked body has no Content-Length).
    lines += [f"{k}: {v}".encode("latin-1") for k, v in all_headers.items() if v is not None]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest


class SlowClients:
    """Clients that hold connections open the slow way, for as long as the block runs:
    PUTs whose body trickles in a byte at a time, and GETs whose answers are never read.
    Every socket is closed at the end of the block."""

    def __init__(self, base_url: str, *, trickle_every: float = 0.5) -> None:
        parts = urlsplit(base_url)
        self.addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.puts: list[socket.socket] = []
        self.gets: list[socket.socket] = []
        self._every = trickle_every
        self._stop = threading.Event()
        self._trickler = threading.Thread(target=self._trickle, name="trickler", daemon=True)

    def put(self, target: str, length: int, *, auth: bool = True) -> None:
        """A PUT announcing ``length`` bytes that sends one byte now and then."""
        sock = socket.create_connection(self.addr, timeout=30)
        head = f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        if auth:
            head += f"Authorization: {basic_auth()}\r\n"
        sock.sendall(head.encode() + b"\r\nx")
        self.puts.append(sock)

    def get(self, target: str, *, auth: bool = True) -> None:
        """A GET whose answer is never read (a small receive buffer keeps it unread)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(self.addr)
        head = f"GET {target} HTTP/1.1\r\nHost: x\r\n"
        if auth:
            head += f"Authorization: {basic_auth()}\r\n"
        sock.sendall(head.encode() + b"\r\n")
        self.gets.append(sock)

    def all_pending(self) -> bool:
        """Whether every slow PUT is still unanswered and every slow GET still open."""
        for sock in self.puts:
            if _readable(sock):
                return False  # answered (or closed)
        return all(_open(sock) for sock in self.gets)

    def _trickle(self) -> None:
        while not self._stop.wait(self._every):
            for sock in self.puts:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    def __enter__(self) -> SlowClients:
        self._trickler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._trickler.join(10)
        for sock in self.puts + self.gets:
            sock.close()


def _readable(sock: socket.socket) -> bool:
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


def _open(sock: socket.socket) -> bool:
    """Not closed by the server: what is there to read is an answer, not an end."""
    if not _readable(sock):
        return True
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except OSError:
        return False
