"""``DavstoreApp.answer_quick``: a plain GET of a small file answered from the request's
head, before any environ, exactly as the WSGI stack answers it; everything else declined."""

from __future__ import annotations

import concurrent.futures
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav.app import QuickAnswer
from davstore.frontends.webdav.fast import get as plain_get
from davstore.serving.observability import flush_access_log, instrument
from tests.webdav.serving import PASSWORD, USER, Share, serve_share

SMALL = b"0123456789" * 100


@pytest.fixture(params=[False, True], ids=["users", "anonymous"])
def share(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Share]:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state", anonymous=request.param) as served:
        assert served.app.inline, "a local disk: small requests are answered on the loop"
        served.vfs.mkdir("folder")
        served.vfs.mkdir("d")
        for name, data in (
            ("f.txt", SMALL),
            ("empty", b""),
            ("d/Ünï cødé&.HTML", SMALL),
            ("big.bin", b"b" * (plain_get.WHOLE + 1)),
            ("folder/.hidden", b"h"),
        ):
            served.vfs.write_file(name, data)
        yield served


def raw_get(share: Share, target: str, headers: str = "", *, put: bytes | None = None) -> bytes:
    """The raw answer to one GET of ``target`` as sent (no client-side normalising); with
    ``put``, to a PUT of those bytes."""
    host, port = share.url.removeprefix("http://").split(":")
    if put is None:
        request = f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1")
    else:
        request = (
            f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(put)}\r\n{headers}\r\n"
        ).encode("latin-1") + put
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
        length = next(
            (
                int(line.split(":")[1])
                for line in head.split("\r\n")
                if line.startswith("content-length:")
            ),
            None,
        )
        if length is not None:
            while len(answer.partition(b"\r\n\r\n")[2]) < length:
                answer += sock.recv(65536)
        return answer


def without_date(answer: bytes) -> bytes:
    """``answer`` without its Date and ETag headers, Digest nonce and the clock times of
    status pages."""
    head, _, body = re.sub(rb'nonce="[^"]*"', b"nonce", answer).partition(b"\r\n\r\n")
    lines = [
        line for line in head.split(b"\r\n") if not line.lower().startswith((b"date:", b"etag:"))
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + re.sub(rb"[\d-]+ \d\d:\d\d:\d\d(\.\d+)?", b"T", body)


def path_info(target: str) -> str:
    """``PATH_INFO`` of a request target, as PEP 3333 has it."""
    return unquote_to_bytes(target.partition("?")[0]).decode("latin-1")


CASES = [
    ("/f.txt", "", True),
    ("/f.txt?x=1", "", True),  # the query plays no part in a file's GET
    ("/empty", "", True),
    ("/d/%C3%9Cn%C3%AF%20c%C3%B8d%C3%A9%26.HTML", "", True),
    ("/big.bin", "", True),  # a FileBody: sent with sendfile from the loop
    ("/folder", "", False),  # the HTML listing
    ("/missing.txt", "", False),
    ("/folder/.hidden", "", False),  # names with a dot first: wsgidav's
    ("/d/%2e%2e/f.txt", "", False),  # refused by PathGuard
    ("/f.txt", "Range: bytes=0-9\r\n", True),  # a FileBody of that range
    ("/big.bin", "Range: bytes=-10\r\n", True),
    ("/f.txt", 'Range: bytes=0-9\r\nIf-Range: "x"\r\n', True),  # not met: the whole file
    ("/f.txt", "Range: bytes=99999-\r\n", False),  # wsgidav's 416
    ("/f.txt", 'If-Range: "x"\r\n', False),  # without a Range
    ("/f.txt", 'If-None-Match: "x"\r\n', False),
    ("/f.txt", "Depth: 1\r\n", False),
    ("/f.txt", "Destination: /other.txt\r\n", False),
]


@pytest.mark.parametrize(("target", "headers", "quick"), CASES)
def test_the_same_answer_as_the_stack(share: Share, target: str, headers: str, quick: bool) -> None:
    answered: list[str] = []
    share.app._quick_observers.append(lambda answer: answered.append(answer.path))
    auth = "" if share.app.users is None else f"Authorization: {basic(USER, PASSWORD)}\r\n"
    at_once = raw_get(share, target, auth + headers)
    assert answered == ([path_info(target)] if quick else [])
    share.app._quick_blind = True  # as if a middleware were wrapped around the app
    through_the_stack = raw_get(share, target, auth + headers)
    assert without_date(at_once) == without_date(through_the_stack)
    assert answered == ([path_info(target)] if quick else []), "nothing more at once"


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_are_checked_as_the_stack_checks_them(share: Share) -> None:
    """Missing, wrong and unknown credentials: declined (the stack answers 401); a
    repeated Authorization header: never offered, the server refuses it (400). An
    anonymous share answers whatever the credentials, as PlainGet does."""
    answered: list[QuickAnswer] = []
    share.app._quick_observers.append(answered.append)
    good = f"Authorization: {basic(USER, PASSWORD)}\r\n"
    for header in (
        "",
        f"Authorization: {basic(USER, 'wrong')}\r\n",
        f"Authorization: {basic('nobody', PASSWORD)}\r\n",
        good + good,
        good,
    ):
        share.app._quick_blind = False
        at_once = raw_get(share, "/f.txt", header)
        share.app._quick_blind = True
        assert without_date(at_once) == without_date(raw_get(share, "/f.txt", header))
    assert raw_get(share, "/f.txt", good + good).startswith(b"HTTP/1.1 400 ")
    if share.app.users is None:
        assert [answer.authorization != "" for answer in answered] == [False, True, True, True]
    else:
        assert [answer.authorization for answer in answered] == [basic(USER, PASSWORD)]


def test_observed_as_the_stack_would_count_and_log_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``instrument`` the metrics and the access log see an answer made at once as
    they see one made by the stack; a middleware wrapped without an observer turns
    answering at once off."""
    caplog.set_level(logging.INFO, logger="davstore.access")
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as share:
        observability = instrument(share.app, share.vfs)
        share.vfs.write_file("f.txt", SMALL)
        answered: list[QuickAnswer] = []
        share.app._quick_observers.append(answered.append)
        for quick in (True, False):
            share.app._quick_blind = not quick
            got = requests.get(share("f.txt"), auth=(USER, PASSWORD), timeout=10)
            assert got.content == SMALL
            assert len(answered) == 1
        flush_access_log()
        assert observability.metrics.requests.value(("GET", "200")) == 2
        assert observability.metrics.sent.value(("GET",)) == 2 * len(SMALL)
        assert observability.metrics.in_progress.value() == 0
        lines = [r.getMessage() for r in caplog.records if r.name == "davstore.access"]
        assert len(lines) == 2
        assert [line.split(" in=")[0] for line in lines] == [f"127.0.0.1 {USER} GET /f.txt 200"] * 2
        share.app._quick_blind = False
        share.app.wrap(lambda app: app)  # a middleware that would not see such answers
        assert share.app._quick_blind


PUT_CASES = [
    ("/new-{}.txt", "", "201"),
    ("/f-{}.txt", "", "204"),  # replaces
    ("/d/n%C3%BC-{}.txt", "", "201"),
    ("/folder", "", None),  # wsgidav's 405
    ("/missing/x-{}.txt", "", None),  # wsgidav's 409
    ("/._mac-{}", "", None),  # a hidden macOS name: the side store
    ("/new-{}.txt", 'If-Match: "x"\r\n', None),
    ("/new-{}.txt", "Content-Range: bytes 0-3/4\r\n", None),
    ("/d/%2e%2e/new-{}.txt", "", None),  # refused by PathGuard
]


@pytest.mark.parametrize(("target", "headers", "quick"), PUT_CASES)
def test_the_same_put_answer_as_the_stack(
    share: Share, target: str, headers: str, quick: str | None
) -> None:
    """Each answer compared with the stack's, to a PUT of a fresh name (or of a file made
    for each), and what is stored."""
    answered: list[QuickAnswer] = []
    share.app._quick_observers.append(answered.append)
    auth = "" if share.app.users is None else f"Authorization: {basic(USER, PASSWORD)}\r\n"
    answers = []
    for run in ("a", "b"):
        share.app._quick_blind = run == "b"
        if target.startswith("/f-"):
            share.vfs.write_file(f"f-{run}.txt", b"old")
        answers.append(raw_get(share, target.format(run), auth + headers, put=b"data"))
    same = [re.sub(rb"-[ab]\b", b"-X", without_date(answer)) for answer in answers]
    assert same[0] == same[1]  # the names differ by their run's letter
    assert [(a.method, a.code, a.sizes) for a in answered] == (
        [("PUT", quick, (4, len(answers[0].partition(b"\r\n\r\n")[2])))] if quick else []
    )
    if quick:
        for run in ("a", "b"):
            with share.vfs.open_read(path_info(target.format(run)).encode("latin-1").decode()) as h:
                assert h.read() == b"data"


def test_a_put_with_wrong_credentials_is_the_stacks(share: Share) -> None:
    answered: list[QuickAnswer] = []
    share.app._quick_observers.append(answered.append)
    header = f"Authorization: {basic(USER, 'wrong')}\r\n"
    mine = raw_get(share, "/w-a.txt", header, put=b"x")
    share.app._quick_blind = True
    assert without_date(mine) == without_date(raw_get(share, "/w-b.txt", header, put=b"x"))
    assert len(answered) == (1 if share.app.users is None else 0)


class _ColdDisk:
    """The share's store with ``cold*`` names off the kernel's caches: ``read_small``
    declines them (as FileSystemStore does for bytes not cached), and looking one up or
    opening it takes ``delay`` seconds."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner = inner
        self.delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _wait(self, name: str) -> None:
        if name.rpartition("/")[2].startswith("cold"):
            time.sleep(self.delay)

    def read_small(self, name: str, limit: int) -> Any:
        if name.rpartition("/")[2].startswith("cold"):
            return None
        return self._inner.read_small(name, limit)

    def find(self, name: str) -> Any:
        self._wait(name)
        return self._inner.find(name)

    def head(self, name: str) -> Any:
        self._wait(name)
        return self._inner.head(name)

    def open_read(self, name: str, offset: int = 0) -> Any:
        self._wait(name)
        return self._inner.open_read(name, offset)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_from_a_cold_disk_does_not_hold_up_other_connections(
    share: Share, method: str
) -> None:
    """Only GETs the quick lane answers from the page cache run on the event loop; a GET or
    HEAD that must wait for the disk runs on a thread while the loop answers others."""
    share.vfs.write_file("cold.txt", SMALL)
    share.vfs.store = _ColdDisk(share.vfs.store, delay=1.5)
    share.vfs.cache.clear()
    auth = "" if share.app.users is None else f"Authorization: {basic(USER, PASSWORD)}\r\n"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        cold = pool.submit(share.request, method, "cold.txt", timeout=10)
        time.sleep(0.3)  # the cold request is waiting for the disk now
        started = time.monotonic()
        warm = raw_get(share, "/f.txt", auth)
        waited = time.monotonic() - started
        assert warm.startswith(b"HTTP/1.1 200 ") and warm.endswith(SMALL)
        assert waited < 0.8, f"the loop was held up {waited:.2f} s by a read from the disk"
        answer = cold.result()
    assert answer.status_code == 200
    if method == "GET":
        assert answer.content == SMALL
