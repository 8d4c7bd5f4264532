"""A slow client costs a connection, not a thread: while more slow clients than the
server has threads hang (PUTs trickling a byte at a time, GETs of a big file never read),
another client's PROPFIND, LOCK, MOVE and big GET are answered."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav import create_app
from davstore.store import adapt
from davstore.vfs import VFS
from tests.webdav.rawhttp import SlowClients
from tests.webdav.serving import PASSWORD, USER, serve_in_thread

THREADS = 4
SLOW = 6  # of each kind, more than THREADS
BIG = 32 << 20  # far more than a connection buffers
LOCK_BODY = (
    '<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope>'
    "<locktype><write/></locktype></lockinfo>"
)


@pytest.mark.parametrize("kind", ["put", "get", "both"])
def test_slow_clients_hold_no_thread(tmp_path: Path, kind: str) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "big.bin").write_bytes(b"b" * BIG)
    (media / "locked.txt").write_bytes(b"locked")
    (media / "moved.txt").write_bytes(b"moved")
    app = create_app(
        VFS(adapt(FileSystemStorage(location=str(media)))),
        users={USER: PASSWORD},
        state_dir=tmp_path / "state",
    )
    try:
        with (
            serve_in_thread(app, threads=THREADS) as (url, _stop),
            SlowClients(url) as slow,
            requests.Session() as session,
        ):
            session.auth = (USER, PASSWORD)
            for k in range(SLOW):
                if kind in ("put", "both"):
                    slow.put(f"/slow-{k}.bin", 500_000)  # past what runs on the loop
                if kind in ("get", "both"):
                    slow.get("/big.bin")
            answered_while_they_hang(session, url)
            assert slow.all_pending()
    finally:
        app.close()
    assert not any(media.glob("slow-*"))


def answered_while_they_hang(session: requests.Session, url: str) -> None:
    """PROPFIND, LOCK, MOVE and a big GET, each answered (the timeout only bounds a
    failing test)."""
    propfind = session.request("PROPFIND", url + "/", headers={"Depth": "1"}, timeout=20)
    assert propfind.status_code == 207 and b"big.bin" in propfind.content
    lock = session.request("LOCK", url + "/locked.txt", data=LOCK_BODY, timeout=20)
    assert lock.status_code == 200, lock.text
    move = session.request(
        "MOVE", url + "/moved.txt", headers={"Destination": url + "/moved-2.txt"}, timeout=20
    )
    assert move.status_code == 201
    big = session.get(url + "/big.bin", timeout=20)
    assert big.status_code == 200 and len(big.content) == BIG
