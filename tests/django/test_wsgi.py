"""with_davstore: the site and its shares in one process, on the same InMemoryStorage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

from davstore.wsgi import with_davstore
from tests.django.sharing import project_settings
from tests.webdav.serving import serve_in_thread


@pytest.fixture
def site(tmp_path: Path, make_user: Callable[..., Any]) -> Iterator[str]:
    make_user("alice", is_staff=True)
    settings = project_settings(tmp_path, CACHE_TTL=5)
    with override_settings(**settings, ROOT_URLCONF="tests.django.wsgi_urls", ALLOWED_HOSTS=["*"]):
        app = with_davstore(WSGIHandler(), prefix="/dav/")
        try:
            with serve_in_thread(app) as (url, _stop):
                yield url
        finally:
            app.close()


def test_site_and_shares_share_one_in_memory_storage(site: str) -> None:
    auth = ("alice", "secret")
    saved = requests.post(f"{site}/save/docs/a.txt", data=b"from the site", timeout=10)
    assert saved.text == "docs/a.txt"
    again = requests.post(f"{site}/save/docs/a.txt", data=b"second", timeout=10).text
    assert again != "docs/a.txt" and again.startswith("docs/a_")
    # The cache TTL is 5 s, but the share's folder was never listed: it shows at once.
    listing = requests.request(
        "PROPFIND", f"{site}/dav/media/docs/", auth=auth, headers={"Depth": "1"}, timeout=10
    )
    assert listing.status_code == 207
    assert "/dav/media/docs/a.txt" in listing.text and f"/dav/media/{again}" in listing.text
    got = requests.get(f"{site}/dav/media/docs/a.txt", auth=auth, timeout=10)
    assert got.content == b"from the site"

    put = requests.put(f"{site}/dav/media/docs/a.txt", data=b"\x00edited", auth=auth, timeout=10)
    assert put.status_code == 204
    assert requests.get(f"{site}/read/docs/a.txt", timeout=10).content == b"\x00edited"
    gone = requests.delete(f"{site}/dav/media/{again}", auth=auth, timeout=10)
    assert gone.status_code == 204
    assert requests.get(f"{site}/read/{again}", timeout=10).status_code == 404


def test_prefix_and_site_routes(site: str) -> None:
    assert requests.get(f"{site}/dav/media/", timeout=10).status_code == 401
    assert requests.get(f"{site}/dav/", auth=("alice", "secret"), timeout=10).status_code == 200
    assert requests.get(f"{site}/read/nothing", timeout=10).status_code == 404
    assert requests.get(f"{site}/elsewhere", timeout=10).status_code == 404


def test_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        with_davstore(WSGIHandler(), prefix="/")
