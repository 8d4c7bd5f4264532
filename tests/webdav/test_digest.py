"""Digest authentication: nonces the server issued, not expired, each count used once."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from requests.auth import HTTPDigestAuth

from davstore.frontends.webdav.digest import (
    NONCE_LIFETIME,
    DigestNonces,
    NonceState,
    SqliteNonceCounts,
    _accept,
)
from tests.process import start_serve, wait_for_workers
from tests.webdav.serving import PASSWORD, USER, Share, serve_share

REALM = "davstore"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_header(
    method: str,
    uri: str,
    nonce: str,
    nc: int = 1,
    *,
    qop: str | None = "auth",
    user: str = USER,
    password: str = PASSWORD,
) -> str:
    """An ``Authorization: Digest`` header as a client computes it (RFC 7616, MD5)."""
    ha1 = md5(f"{user}:{REALM}:{password}")
    ha2 = md5(f"{method}:{uri}")
    cnonce = "0a4f113b"
    if qop is None:
        response = md5(f"{ha1}:{nonce}:{ha2}")
        return (
            f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5'
        )
    response = md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")
    return (
        f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
        f'qop={qop}, nc={nc:08x}, cnonce="{cnonce}", response="{response}", algorithm=MD5'
    )


def challenge_nonce(url: str) -> str:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 401
    found = re.search(r'nonce="([^"]+)"', answer.headers["WWW-Authenticate"])
    assert found is not None
    return found.group(1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Share]:
    storage = FileSystemStorage(tmp_path / "files")
    storage.save("file.txt", ContentFile(b"original"))
    with serve_share(storage, tmp_path / "state") as share:
        yield share


def nonces_of(share: Share) -> DigestNonces:
    nonces: DigestNonces = share.app.wsgidav.config["davstore"]["digest_nonces"]
    return nonces


def test_a_made_up_nonce_is_refused(served: Share) -> None:
    header = digest_header("PUT", "/file.txt", "made-up-by-the-client")
    answer = requests.put(
        served("file.txt"), data=b"evil", headers={"Authorization": header}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Digest ")
    assert "stale" not in answer.headers["WWW-Authenticate"]
    assert served.request("GET", "file.txt").content == b"original"


def test_a_replayed_header_is_refused_and_the_file_kept(served: Share) -> None:
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USER, PASSWORD)
        first = session.put(served("file.txt"), data=b"mine", timeout=10)
        assert first.status_code == 204
        captured = first.request.headers["Authorization"]
    assert "nc=" in captured
    again = requests.put(
        served("file.txt"), data=b"replayed", headers={"Authorization": captured}, timeout=10
    )
    assert again.status_code == 401
    assert served.request("GET", "file.txt").content == b"mine"


def test_an_expired_nonce_is_stale(served: Share) -> None:
    nonces = nonces_of(served)
    old = DigestNonces(nonces.secret, nonces.counts, clock=lambda: time.time() - 2 * NONCE_LIFETIME)
    header = digest_header("PUT", "/file.txt", old.issue(REALM))
    answer = requests.put(
        served("file.txt"), data=b"late", headers={"Authorization": header}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].endswith(", stale=true")
    assert served.request("GET", "file.txt").content == b"original"


def test_a_client_retries_a_stale_nonce_by_itself(
    served: Share, monkeypatch: pytest.MonkeyPatch
) -> None:
    nonces = nonces_of(served)
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USER, PASSWORD)
        assert session.put(served("a.txt"), data=b"1", timeout=10).status_code == 201
        later = time.time() + NONCE_LIFETIME + 10
        monkeypatch.setattr(nonces, "_clock", lambda: later)
        answer = session.put(served("a.txt"), data=b"2", timeout=10)
        assert answer.status_code == 204
        assert answer.history == [] or answer.history[0].status_code == 401
        assert session.get(served("a.txt"), timeout=10).content == b"2"


def test_a_client_session_with_many_requests(served: Share) -> None:
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USER, PASSWORD)
        for index in range(10):
            assert session.put(served(f"f{index}.txt"), data=b"x", timeout=10).ok
            assert session.get(served(f"f{index}.txt"), timeout=10).content == b"x"
        listing = session.request("PROPFIND", served(""), headers={"Depth": "1"}, timeout=10)
        assert listing.status_code == 207


def test_counts_out_of_order_are_accepted_once(served: Share) -> None:
    nonce = challenge_nonce(served(""))

    def get(nc: int) -> int:
        header = digest_header("GET", "/file.txt", nonce, nc)
        return requests.get(
            served("file.txt"), headers={"Authorization": header}, timeout=10
        ).status_code

    assert [get(3), get(1), get(2), get(3), get(1), get(4)] == [200, 200, 200, 401, 401, 200]


def test_qop_auth_int_and_no_qop_are_refused(
    served: Share, caplog: pytest.LogCaptureFixture
) -> None:
    for qop in ("auth-int", None):
        header = digest_header("PUT", "/file.txt", challenge_nonce(served("")), qop=qop)
        answer = requests.put(
            served("file.txt"), data=b"evil", headers={"Authorization": header}, timeout=10
        )
        assert answer.status_code == 401
        assert 'qop="auth"' in answer.headers["WWW-Authenticate"]
    assert "qop='auth-int' (only qop=auth is offered)" in caplog.text
    assert "qop=None (only qop=auth is offered)" in caplog.text
    assert served.request("GET", "file.txt").content == b"original"


def test_the_secret_file_is_private(served: Share, tmp_path: Path) -> None:
    assert (tmp_path / "state" / "digest-secret").stat().st_mode & 0o777 == 0o600


def test_the_window_of_counts() -> None:
    top, seen = 1, 1
    for count in (5, 3, 2, 70):
        accepted = _accept(top, seen, count)
        assert accepted is not None
        top, seen = accepted
    assert _accept(top, seen, 70) is None
    assert _accept(top, seen, 5) is None  # more than the window below the top: refused
    assert _accept(top, seen, 69) is not None


def test_the_counts_table_is_bounded_and_forgets_safely(tmp_path: Path) -> None:
    counts = SqliteNonceCounts(str(tmp_path / "n.sqlite3"), most=10)
    counts.PURGE_EVERY = 5
    now = int(time.time()) + 10
    try:
        for index in range(30):
            assert counts.use(f"n{index}", now + index, 1, now + index) is NonceState.OK
        (rows,) = counts._db.execute("SELECT count(*) FROM nonces").fetchone()
        assert rows <= 15
        # A forgotten nonce is never accepted again, not even with a new count.
        assert counts.use("n0", now, 2, now + 30) is NonceState.STALE
        assert counts.use("n29", now + 29, 2, now + 30) is NonceState.OK
        assert counts.use("n29", now + 29, 2, now + 30) is NonceState.INVALID
    finally:
        counts.close()


def test_workers_share_nonces_and_refuse_replays(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "file.txt").write_bytes(b"original")
    args = ["--user", f"{USER}:{PASSWORD}", "--workers", "2", str(folder)]
    with start_serve(args, cwd=tmp_path) as server:
        wait_for_workers(server, 2)
        url = server.url + "file.txt"
        nonce = challenge_nonce(url)
        # Each request on a new connection: the kernel spreads them over both workers.
        for nc in range(1, 21):
            header = digest_header("GET", "/file.txt", nonce, nc)
            answer = requests.get(
                url, headers={"Authorization": header, "Connection": "close"}, timeout=10
            )
            assert answer.status_code == 200, nc
        put = digest_header("PUT", "/file.txt", nonce, 21)
        headers = {"Authorization": put, "Connection": "close"}
        assert requests.put(url, data=b"mine", headers=headers, timeout=10).status_code == 204
        for _ in range(10):
            again = requests.put(url, data=b"replayed", headers=headers, timeout=10)
            assert again.status_code == 401
    assert (folder / "file.txt").read_bytes() == b"mine"
