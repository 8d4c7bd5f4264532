"""Symbolic links in a local share's root never lead out of it (issue 20, item 1).

Every method, on a link to a file and a link to a folder pointing outside (absolute and
relative), in-process and through the real ``davstore serve --workers 2``: nothing outside
is read into an answer, written, moved or removed (docs/SEMANTICS.md, *Symbolic links*).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav.limits import DavLimits
from tests.hostile_links import DIR_LINKS, FILE_LINKS, OUTSIDE_BYTES, Planted, plant, snapshot
from tests.process import start_serve, wait_for_workers
from tests.webdav.serving import serve_share

Request = Callable[..., requests.Response]


def _attack(request: Request, url: str, planted: Planted) -> None:
    """Every method on every link; asserts the answers and that the outside is untouched."""
    before = snapshot(planted.outside)
    answers: list[requests.Response] = []

    def send(method: str, path: str, **kwargs: Any) -> int:
        response = request(method, f"{url}/{path}", timeout=30, **kwargs)
        answers.append(response)
        return response.status_code

    for link in (*FILE_LINKS, "inlink"):
        assert send("GET", link) == 404
        assert send("HEAD", link) == 404
        assert send("PROPFIND", link, headers={"Depth": "0"}) == 404
        assert send("COPY", link, headers={"Destination": f"{url}/copied-{link}"}) == 404
        assert send("MOVE", link, headers={"Destination": f"{url}/moved-{link}"}) == 404
        assert send("DELETE", link) == 404
    for link in DIR_LINKS:
        assert send("GET", f"{link}/inner.txt") == 404
        assert send("GET", f"{link}/deeper/more.txt") == 404
        assert send("PROPFIND", f"{link}/", headers={"Depth": "1"}) == 404
        assert send("PROPFIND", f"{link}/deeper/", headers={"Depth": "0"}) == 404
        assert send("PUT", f"{link}/new.txt", data=b"planted") == 409
        assert send("PUT", f"{link}/inner.txt", data=b"planted") == 409
        assert send("MKCOL", f"{link}/made") == 409
        assert send("MKCOL", link) == 405  # the name is taken (by a link davstore does not show)
        destination = {"Destination": f"{url}/{link}/x.txt"}
        assert send("COPY", "a.txt", headers=destination) == 409
        assert send("MOVE", "a.txt", headers=destination) == 409
        assert send("COPY", link, headers={"Destination": f"{url}/copied-{link}"}) == 404
        assert send("MOVE", link, headers={"Destination": f"{url}/moved-{link}"}) == 404
        assert send("DELETE", f"{link}/") == 404
        assert send("DELETE", f"{link}/inner.txt") == 404
        assert send("DELETE", link) == 404
    assert send("MOVE", f"{FILE_LINKS[0]}", headers={"Destination": f"{url}/a.txt"}) == 404
    # Listings show no link, and a loop under Depth: infinity is no error.
    for depth in ("1", "infinity"):
        listed = request("PROPFIND", f"{url}/", headers={"Depth": depth}, timeout=30)
        assert listed.status_code == 207, listed.text
        answers.append(listed)
        for name in (*FILE_LINKS, *DIR_LINKS, "inlink", "loop", "inner.txt"):
            assert f"/{name}<".encode() not in listed.content
            assert f"/{name}/<".encode() not in listed.content
        assert b"/a.txt<" in listed.content
    page = request("GET", f"{url}/", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200
    assert b"dirlink" not in page.content
    answers.append(page)
    # A PUT on a link's name replaces the link with a file; its target stays as it was.
    assert send("PUT", "link", data=b"replaced") in (201, 204)
    assert (planted.root / "link").read_bytes() == b"replaced"
    assert not (planted.root / "link").is_symlink()
    # Deleting a folder that holds links (one to the outside, a loop) removes the links
    # with it, never what they lead to.
    assert send("DELETE", "real/") == 204
    assert not (planted.root / "real").exists()
    assert (planted.root / "a.txt").read_bytes() == b"inside"
    for response in answers:
        assert OUTSIDE_BYTES not in response.content, (response.request.method, response.url)
    planted.unchanged(before)
    assert not list(planted.outside.glob("**/new.txt")) and not list(
        planted.outside.glob("**/x.txt")
    )


def test_links_never_lead_out_in_process(tmp_path: Path) -> None:
    planted = plant(tmp_path)
    storage = FileSystemStorage(location=str(planted.root))
    limits = DavLimits(depth_infinity=True)  # answered, streamed: a loop must not be a 500
    with serve_share(storage, tmp_path / "state", cache_ttl=0, limits=limits) as share:
        _attack(share.session.request, share.url, planted)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_links_never_lead_out_of_davstore_serve(tmp_path: Path, workers: str) -> None:
    planted = plant(tmp_path)
    args = ["--anonymous", "--workers", workers, "--propfind-depth-infinity", "stream"]
    args.append(str(planted.root))
    with start_serve(args, cwd=tmp_path) as server:
        if workers != "1":
            wait_for_workers(server, int(workers))
        with requests.Session() as session:
            _attack(session.request, server.url.rstrip("/"), planted)
        assert "Traceback" not in server.stderr
