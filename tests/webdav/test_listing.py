"""davstore's HTML folder page (davstore/frontends/webdav/listing.py), in-process."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote, unquote

import requests
from django.core.files.storage import FileSystemStorage

from tests.webdav.serving import Share, serve_share

AWKWARD = [
    "sp ace.txt",
    "hash#1.txt",
    "pct%41.txt",
    "q?uery.txt",
    "plus+amp&.txt",
    "quote'\".txt",
    "<b>tag<b>.txt",
    "Ελληνικά.txt",
    "日本語.txt",
    "emoji-\U0001f600.txt",
]


def hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]


def test_folders_first_sorted_with_sizes_dates_and_breadcrumbs(share: Share) -> None:
    share.request("MKCOL", "a")
    share.request("MKCOL", "a/b")
    share.request("MKCOL", "a/b/Zeta")
    share.request("MKCOL", "a/b/alpha")
    share.request("PUT", "a/b/beta.txt", data=b"x" * 2048)
    share.request("PUT", "a/b/Aardvark.bin", data=b"y" * 10)
    response = share.request("GET", "a/b/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<script" not in page.lower()
    order = [m for m in re.findall(r">(alpha/|Zeta/|Aardvark\.bin|beta\.txt)<", page)]
    assert order == ["alpha/", "Zeta/", "Aardvark.bin", "beta.txt"]
    assert "2.0 KiB" in page and "10 B" in page
    assert re.search(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", page)
    crumbs = re.search(r'<nav class="crumbs".*?</nav>', page, re.S)
    assert crumbs is not None
    assert hrefs(crumbs.group(0)) == ["/", "/a/", "/a/b/"]
    assert 'download="beta.txt"' in page
    assert share.request("HEAD", "a/b/").content == b""


def test_awkward_names_are_escaped_and_link_to_themselves(share: Share) -> None:
    for name in AWKWARD:
        assert share.request("PUT", quote(name), data=name.encode()).status_code == 201
    page = share.request("GET", "").text
    assert "<b>tag<b>" not in page
    links = {unquote(h) for h in hrefs(page)}
    for name in AWKWARD:
        assert html.escape(name) in page
        assert "/" + name in links
        href = next(h for h in hrefs(page) if unquote(h) == "/" + name)
        assert "#" not in href and "?" not in href and " " not in href
        assert share.session.get(share.url + href, timeout=10).content == name.encode()


def test_open_in_desktop_app_links_for_documents(share: Share) -> None:
    for name in ("report.docx", "sheet.xlsx", "deck.pptx", "text.odt", "photo.jpg"):
        share.request("PUT", name, data=b"doc")
    share.request("PUT", quote("my report #2.docx"), data=b"doc")
    page = share.request("GET", "").text
    links = hrefs(page)
    assert f"ms-word:ofe|u|{share.url}/report.docx" in links
    assert f"ms-excel:ofe|u|{share.url}/sheet.xlsx" in links
    assert f"ms-powerpoint:ofe|u|{share.url}/deck.pptx" in links
    dav = share.url.replace("http://", "vnd.sun.star.webdav://")
    assert f"{dav}/text.odt" in links and f"{dav}/report.docx" in links
    assert f"ms-word:ofe|u|{share.url}/my%20report%20%232.docx" in links
    assert not any("photo.jpg" in link and not link.startswith("/") for link in links)


def test_the_listing_costs_one_store_listing(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state", cache_ttl=0) as share:
        for i in range(50):
            share.request("PUT", f"f{i}.txt", data=b"x")
        calls: list[str] = []
        store = share.vfs.store
        original_list, original_head = store.list, store.head
        store.list = lambda path: calls.append("list") or original_list(path)  # type: ignore[method-assign]
        store.head = lambda path: calls.append("head") or original_head(path)  # type: ignore[method-assign]
        assert "f49.txt" in share.request("GET", "").text
        assert calls.count("list") == 1
        assert calls.count("head") <= 3  # the folder itself, never one per file


def test_a_listing_needs_credentials(share: Share) -> None:
    assert requests.get(share(""), timeout=10).status_code == 401


def test_an_empty_folder_says_so(share: Share) -> None:
    share.request("MKCOL", "empty")
    page = share.request("GET", "empty/").text
    assert "This folder is empty." in page
    assert "Parent folder" in page


def test_the_title_and_the_root_crumb_name_the_share(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    (tmp_path / "media" / "original_images").mkdir(parents=True)
    with serve_share(storage, tmp_path / "state", share_name="media") as share:
        page = share.request("GET", "original_images/").text
    title = re.search(r"<title>(.*?)</title>", page)
    assert title is not None and html.unescape(title.group(1)) == "media — /original_images/"
    assert "Index of" not in page
    crumbs = re.search(r'<nav class="crumbs".*?</nav>', page, re.S)
    assert crumbs is not None
    # One share served alone: no list of shares to link to, the root crumb is the share.
    assert re.findall(r"<a[^>]*>([^<]*)</a>", crumbs.group(0)) == ["media", "original_images"]
    assert hrefs(crumbs.group(0)) == ["/", "/original_images/"]
    assert "Shares" not in crumbs.group(0)


def test_the_icons_are_pictures_not_controls(share: Share) -> None:
    share.request("MKCOL", "folder")
    share.request("MKCOL", "folder/inner")
    share.request("PUT", "folder/a.txt", data=b"a")
    page = share.request("GET", "folder/").text
    rows = re.findall(r"<tr class=\"(up|folder|file)\">(.*?)</tr>", page, re.S)
    assert [kind for kind, _ in rows] == ["up", "folder", "file"]
    for _kind, row in rows:
        icons = re.findall(r"<svg [^>]*>", row)
        assert len(icons) == 1, row
        assert 'class="icon"' in icons[0] and 'aria-hidden="true"' in icons[0]
    # Nothing that looks like a checkbox and does nothing: no inputs, no empty boxes.
    assert "<input" not in page and 'role="checkbox"' not in page
    assert '<span class="icon' not in page and "border: 1.5px" not in page
    # No outside resource (the page may be served under a sandbox CSP).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "url(" not in page


def test_a_missing_folder_is_davstore_s_404(share: Share) -> None:
    response = share.request("GET", "no/such/folder/")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert "There is nothing at this address." in page
    assert "wsgidav" not in page.lower() and "Source exception" not in page
    assert "does not exist yet" not in page  # the share's own folder is there
