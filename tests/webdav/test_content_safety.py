"""Uploaded content never acts as a page of the share: nosniff and a sandbox on every
answer carrying a file's content, whichever path serves it; davstore's own pages as before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from requests.auth import HTTPDigestAuth
from selenium.webdriver.remote.webdriver import WebDriver

from tests.webdav.rawhttp import basic_auth
from tests.webdav.serving import PASSWORD, USER, Share, serve_share
from tests.webdav.test_listing_browser import chromium  # noqa: F401 - a fixture

PAGE = (
    b"<!DOCTYPE html><html><head><title>uploaded</title></head><body>"
    b"<script>document.title = 'script ran';"
    b"fetch('/secret.txt').then(r => r.text()).then(t => { document.title = 'read ' + t; });"
    b"</script><p>hello</p></body></html>"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
SAFE = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def assert_safe(answer: requests.Response) -> None:
    for name, value in SAFE.items():
        assert answer.headers.get(name) == value, (name, dict(answer.headers))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Share]:
    storage = FileSystemStorage(tmp_path / "files")  # a local disk: the quick paths too
    with serve_share(storage, tmp_path / "state") as share:
        for name, data in [
            ("page.html", PAGE),
            ("image.svg", SVG),
            ("big.html", PAGE + b" " * (200 * 1024)),
            ("secret.txt", b"secret"),
        ]:
            assert share.request("PUT", name, data=data).status_code == 201
        yield share


@pytest.mark.parametrize("name", ["page.html", "image.svg", "big.html"])
@pytest.mark.parametrize(
    "how",
    ["plain", "head", "range", "conditional", "digest", "no-keep-alive"],
)
def test_file_content_is_sandboxed(served: Share, name: str, how: str) -> None:
    if how == "digest":
        answer = requests.get(served(name), auth=HTTPDigestAuth(USER, PASSWORD), timeout=10)
    elif how == "head":
        answer = served.request("HEAD", name)
    elif how == "range":
        answer = served.request("GET", name, headers={"Range": "bytes=0-9"})
        assert answer.status_code == 206
    elif how == "conditional":
        answer = served.request("GET", name, headers={"If-None-Match": '"other"'})
    elif how == "no-keep-alive":
        answer = served.request("GET", name, headers={"Connection": "close"})
    else:
        answer = served.request("GET", name)
    assert answer.ok
    assert answer.headers["Content-Type"].startswith(
        "image/svg+xml" if name.endswith(".svg") else "text/html"
    )
    assert_safe(answer)


def test_the_quick_answer_is_sandboxed(served: Share) -> None:
    """A plain GET of a small file on a local disk is answered from the request head
    (answer_quick, before any environ): the same headers."""
    assert served.app.inline
    answer = served.app.answer_quick(
        "GET", "/page.html", [(b"authorization", basic_auth().encode())], "127.0.0.1", b""
    )
    assert answer is not None
    status, headers, body = answer
    assert status == "200 OK"
    assert body == PAGE
    for name, value in SAFE.items():
        assert (name, value) in headers


def test_anonymous_and_in_memory_shares_too(tmp_path: Path) -> None:
    storage = InMemoryStorage()
    with serve_share(storage, tmp_path / "state", anonymous=True) as share:
        assert requests.put(share("page.html"), data=PAGE, timeout=10).status_code == 201
        assert_safe(requests.get(share("page.html"), timeout=10))


def test_macos_side_files_are_sandboxed(served: Share) -> None:
    assert served.request("PUT", "._page.html", data=PAGE).status_code == 201
    assert_safe(served.request("GET", "._page.html"))


def test_davstores_own_pages_are_not_sandboxed(served: Share) -> None:
    listing = served.request("GET", "")
    assert listing.status_code == 200
    assert "page.html" in listing.text
    assert "Content-Security-Policy" not in listing.headers
    propfind = served.request("PROPFIND", "", headers={"Depth": "1"})
    assert propfind.status_code == 207


def test_an_uploaded_page_runs_no_script_in_a_browser(
    chromium: WebDriver,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    storage = FileSystemStorage(tmp_path / "files")
    with serve_share(storage, tmp_path / "state", anonymous=True) as share:
        assert requests.put(share("page.html"), data=PAGE, timeout=10).status_code == 201
        assert requests.put(share("secret.txt"), data=b"secret", timeout=10).status_code == 201
        chromium.get(share("page.html"))
        time.sleep(0.5)  # what a script would do, it has had the time to do
        assert chromium.title == "uploaded"
        assert "hello" in chromium.page_source
        # The folder listing, davstore's own page, still works in the same browser.
        chromium.get(share(""))
        assert chromium.title.endswith(" — /")
