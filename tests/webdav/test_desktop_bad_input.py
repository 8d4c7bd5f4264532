"""Bad input from desktop-style clients: foreign lock tokens, wrong Content-Length,
a client gone mid-upload. Each gets the status RFC 4918 / RFC 9110 prescribe and the
store keeps the old content."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.webdav.rawhttp import basic_auth, raw_request
from tests.webdav.serving import Share

LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def lock(share: Share, path: str) -> str:
    response = share.request("LOCK", path, data=LOCK_BODY, headers={"Depth": "0"})
    assert response.status_code == 200
    return str(response.headers["Lock-Token"].strip("<>"))


def test_put_without_the_lock_token_is_423(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    lock(share, "doc.txt")
    assert share.request("PUT", "doc.txt", data=b"new").status_code == 423
    assert share.request("DELETE", "doc.txt").status_code == 423
    assert share.request("GET", "doc.txt").content == b"old"


def test_a_token_of_another_resource_is_423_or_412(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    share.request("PUT", "other.txt", data=b"other")
    lock(share, "doc.txt")
    foreign = lock(share, "other.txt")
    response = share.request("PUT", "doc.txt", data=b"new", headers={"If": f"(<{foreign}>)"})
    # The If header's condition fails for doc.txt (412); had it held, the lock would (423).
    assert response.status_code in (412, 423)
    assert share.request("GET", "doc.txt").content == b"old"


def test_an_unknown_token_is_412(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    made_up = "opaquelocktoken:00000000-0000-0000-0000-000000000000"
    response = share.request("PUT", "doc.txt", data=b"new", headers={"If": f"(<{made_up}>)"})
    assert response.status_code == 412
    assert share.request("GET", "doc.txt").content == b"old"


def test_longer_content_length_claim_then_close_keeps_the_old_content(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    parts = urlsplit(share.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /doc.txt HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + basic_auth().encode()
            + b"\r\nContent-Length: 1000\r\n\r\n"
            + b"n" * 10
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
    deadline = time.monotonic() + 10
    while share.vfs._handles_within("") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert share.request("GET", "doc.txt").content == b"old"


def test_shorter_content_length_stores_what_was_announced(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    status, _ = raw_request(
        share.url, "PUT", "/doc.txt", headers={"Content-Length": "3"}, body=b"newXXXXXXX"
    )
    assert status == 204
    assert share.request("GET", "doc.txt").content == b"new"


def test_bad_content_length_is_400(share: Share) -> None:
    share.request("PUT", "doc.txt", data=b"old")
    status, _ = raw_request(
        share.url, "PUT", "/doc.txt", headers={"Content-Length": "-5"}, body=b"new"
    )
    assert status == 400
    assert share.request("GET", "doc.txt").content == b"old"
