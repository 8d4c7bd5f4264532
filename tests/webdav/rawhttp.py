"""Raw HTTP over a socket, for requests no well-behaved client library would send."""

from __future__ import annotations

import base64
import socket
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
