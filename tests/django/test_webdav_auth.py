"""WebDAV with Django users: 401 for bad credentials, 403 without permission, shares
side by side, the credential cache, and file_changed for each change."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from davstore.signals import file_changed
from davstore.vfs.events import Action
from tests.django.sharing import serve_project
from tests.webdav.test_access import MALFORMED_BASIC


@pytest.fixture
def served(tmp_path: Path, migrated: None) -> Iterator[str]:
    with serve_project(tmp_path) as url:
        yield url


def call(method: str, url: str, auth: tuple[str, str] | None, **kwargs: Any) -> requests.Response:
    return requests.request(method, url, auth=auth, timeout=10, **kwargs)


@pytest.mark.parametrize(
    "who",
    ["nobody", "wrong-password", "unknown-user", "inactive-user"],
)
def test_bad_credentials_are_401_without_detail(
    served: str, make_user: Callable[..., Any], who: str, caplog: pytest.LogCaptureFixture
) -> None:
    make_user("staffer", password="right", is_staff=True)
    make_user("sleeper", password="right", is_staff=True, is_active=False)
    auth = {
        "nobody": None,
        "wrong-password": ("staffer", "wrong-pass-123"),
        "unknown-user": ("ghost", "right"),
        "inactive-user": ("sleeper", "right"),
    }[who]
    with caplog.at_level(logging.WARNING, logger="davstore.django_auth"):
        answer = call("GET", f"{served}/media/", auth)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Basic realm="davstore"')
    assert answer.text == "401 Unauthorized\n"
    assert "wrong-pass-123" not in caplog.text and "right" not in caplog.text.split("'")
    if auth is not None:
        assert f"login failed for user {auth[0]!r}" in caplog.text


@pytest.mark.parametrize("form", MALFORMED_BASIC)
@pytest.mark.parametrize("method", ["GET", "PUT", "PROPFIND"])
def test_malformed_basic_credentials_are_401(served: str, form: str, method: str) -> None:
    answer = requests.request(
        method,
        f"{served}/media/file.txt",
        data=b"x" if method == "PUT" else None,
        headers={"Authorization": MALFORMED_BASIC[form], "Depth": "0"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Basic realm="davstore"')


def test_uploaded_pages_are_sandboxed_and_the_share_list_is_not(
    served: str, make_user: Callable[..., Any]
) -> None:
    make_user("staffer", is_staff=True)
    auth = ("staffer", "secret")
    page = b"<html><script>document.title='ran'</script></html>"
    assert call("PUT", f"{served}/media/page.html", auth, data=page).status_code == 201
    answer = call("GET", f"{served}/media/page.html", auth)
    assert answer.content == page
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "sandbox"
    shares = call("GET", f"{served}/", auth)
    assert shares.status_code == 200 and "media/" in shares.text
    assert "Content-Security-Policy" not in shares.headers


def test_permissions_per_share(served: str, make_user: Callable[..., Any]) -> None:
    make_user("staffer", is_staff=True)
    make_user("plain")
    make_user("reader", groups=["readers"])
    make_user("writer", groups=["writers"])
    make_user("permitted", perms=["auth.change_user"])
    make_user("boss", is_superuser=True)
    ok = {}
    for name in ("staffer", "plain", "reader", "writer", "permitted", "boss"):
        auth = (name, "secret")
        ok[name] = (
            call("PROPFIND", f"{served}/media/", auth, headers={"Depth": "0"}).status_code,
            call("PUT", f"{served}/media/{name}.txt", auth, data=b"x").status_code,
            call("PROPFIND", f"{served}/files/", auth, headers={"Depth": "0"}).status_code,
            call("PUT", f"{served}/files/{name}.txt", auth, data=b"x").status_code,
            call("GET", f"{served}/static/", auth).status_code,
            call("PUT", f"{served}/static/{name}.txt", auth, data=b"x").status_code,
        )
    assert ok == {
        "staffer": (207, 201, 403, 403, 200, 403),
        "plain": (403, 403, 403, 403, 200, 403),
        "reader": (403, 403, 207, 403, 200, 403),
        "writer": (403, 403, 207, 201, 200, 403),
        "permitted": (403, 403, 207, 201, 200, 403),
        "boss": (207, 201, 207, 201, 200, 403),
    }


def test_read_only_share_refuses_every_writing_method(
    served: str, make_user: Callable[..., Any], tmp_path: Path
) -> None:
    make_user("boss", is_superuser=True)
    (tmp_path / "static" / "app.css").write_bytes(b"body{}")
    auth = ("boss", "secret")
    assert call("GET", f"{served}/static/app.css", auth).content == b"body{}"
    for method, extra in [
        ("PUT", {"data": b"y"}),
        ("DELETE", {}),
        ("MKCOL", {}),
        ("PROPPATCH", {}),
        ("MOVE", {"headers": {"Destination": f"{served}/static/moved.css"}}),
        ("COPY", {"headers": {"Destination": f"{served}/static/copy.css"}}),
        ("LOCK", {}),
    ]:
        assert call(method, f"{served}/static/app.css", auth, **extra).status_code == 403, method
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == ["app.css"]


def test_shares_side_by_side(served: str, make_user: Callable[..., Any], tmp_path: Path) -> None:
    make_user("boss", is_superuser=True)
    auth = ("boss", "secret")
    assert call("PUT", f"{served}/files/a.txt", auth, data=b"files").status_code == 201
    assert call("PUT", f"{served}/media/a.txt", auth, data=b"media").status_code == 201
    assert call("GET", f"{served}/files/a.txt", auth).content == b"files"
    assert call("GET", f"{served}/media/a.txt", auth).content == b"media"
    assert (tmp_path / "files" / "a.txt").read_bytes() == b"files"
    listing = call("PROPFIND", f"{served}/files/", auth, headers={"Depth": "1"})
    assert "<d:href>/files/a.txt</d:href>" in listing.text.lower()
    moved = call(
        "MOVE", f"{served}/files/a.txt", auth, headers={"Destination": f"{served}/files/b.txt"}
    )
    assert moved.status_code == 201
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["b.txt"]
    assert call("GET", f"{served}/nope/", auth).status_code == 404
    page = call("GET", f"{served}/", auth)
    assert page.status_code == 200
    for name in ("media", "files", "static"):
        assert f'href="/{name}/"' in page.text
    root = call("PROPFIND", f"{served}/", auth, headers={"Depth": "1"})
    assert root.status_code == 207
    assert root.text.count("<D:href>") == 4


def test_share_list_shows_only_readable_shares(served: str, make_user: Callable[..., Any]) -> None:
    make_user("reader", groups=["readers"])
    page = call("GET", f"{served}/", ("reader", "secret")).text
    assert 'href="/files/"' in page and 'href="/static/"' in page
    assert 'href="/media/"' not in page


def _style(page: str) -> str:
    found = re.search(r"<style>(.*?)</style>", page, re.S)
    assert found is not None, page
    return found.group(1)


def _crumbs(page: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav class="crumbs".*?</nav>', page, re.S)
    assert nav is not None, page
    return [
        (html.unescape(href), text)
        for href, text in re.findall(r'<a[^>]*href="([^"]*)"[^>]*>([^<]*)</a>', nav.group(0))
    ]


@pytest.mark.parametrize("prefix", ["", "/dav"])
def test_the_share_list_is_styled_as_a_listing_and_every_share_links_back_to_it(
    tmp_path: Path, migrated: None, make_user: Callable[..., Any], prefix: str
) -> None:
    make_user("boss", is_superuser=True)
    auth = ("boss", "secret")
    (tmp_path / "files" / "original_images").mkdir(parents=True)
    with serve_project(tmp_path, prefix=prefix) as url:
        shares = call("GET", f"{url}/", auth).text
        listing = call("GET", f"{url}/files/original_images/", auth).text
    assert "<title>Shares</title>" in shares and "<h1>Shares</h1>" in shares
    assert _style(shares) == _style(listing)  # one stylesheet
    assert shares.count('<tr class="folder">') == 3 and "read-only" in shares
    title = re.search(r"<title>(.*?)</title>", listing)
    assert title is not None and html.unescape(title.group(1)) == "files — /original_images/"
    assert _crumbs(listing) == [
        (f"{prefix}/", "Shares"),
        (f"{prefix}/files/", "files"),
        (f"{prefix}/files/original_images/", "original_images"),
    ]


def test_credentials_are_cached_until_the_password_changes(
    served: str, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import django.contrib.auth

    user = make_user("staffer", password="first", is_staff=True)
    calls: list[str] = []
    real = django.contrib.auth.authenticate

    def counting(request: Any = None, **credentials: Any) -> Any:
        calls.append(credentials["username"])
        return real(request, **credentials)

    monkeypatch.setattr(django.contrib.auth, "authenticate", counting)
    for _ in range(3):
        assert call("GET", f"{served}/media/", ("staffer", "first")).status_code == 200
    assert calls == ["staffer"]
    assert call("GET", f"{served}/media/", ("staffer", "other")).status_code == 401
    assert calls == ["staffer", "staffer"]

    user.set_password("second")
    user.save()
    assert call("GET", f"{served}/media/", ("staffer", "first")).status_code == 401
    assert call("GET", f"{served}/media/", ("staffer", "second")).status_code == 200
    assert calls == ["staffer"] * 4


def test_deactivation_applies_at_once(served: str, make_user: Callable[..., Any]) -> None:
    user = make_user("staffer", is_staff=True)
    assert call("GET", f"{served}/media/", ("staffer", "secret")).status_code == 200
    user.is_active = False
    user.save()
    assert call("GET", f"{served}/media/", ("staffer", "secret")).status_code == 401


def test_one_signal_per_change_with_the_user(served: str, make_user: Callable[..., Any]) -> None:
    user = make_user("boss", is_superuser=True)
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal")
        seen.append(kwargs)

    file_changed.connect(receiver)
    try:
        auth = ("boss", "secret")
        call("PUT", f"{served}/media/a.txt", auth, data=b"1")
        call("PUT", f"{served}/media/a.txt", auth, data=b"2")
        call("MKCOL", f"{served}/media/dir/", auth)
        call(
            "MOVE", f"{served}/media/a.txt", auth, headers={"Destination": f"{served}/media/dir/b"}
        )
        call("DELETE", f"{served}/media/dir/", auth)
        call("GET", f"{served}/media/", auth)
    finally:
        file_changed.disconnect(receiver)
    assert [(s["action"], s["path"], s["target"], s["is_dir"]) for s in seen] == [
        (Action.CREATED, "a.txt", None, False),
        (Action.MODIFIED, "a.txt", None, False),
        (Action.FOLDER_CREATED, "dir", None, True),
        (Action.MOVED, "a.txt", "dir/b", False),
        (Action.FOLDER_DELETED, "dir", None, True),
    ]
    assert [s["files"] for s in seen] == [None, None, None, None, ["dir/b"]]
    assert all(s["share"] == "media" and s["origin"] == "webdav" for s in seen)
    assert all(s["user"] == user for s in seen)


def test_options_answer_before_login(served: str) -> None:
    """Explorer and Office send OPTIONS before they log in; everything else still needs it."""
    answer = call("OPTIONS", f"{served}/media/some/file.docx", None)
    assert answer.status_code == 200
    assert answer.headers["DAV"] == "1,2"
    assert answer.headers["MS-Author-Via"] == "DAV"
    assert "PUT" in answer.headers["Allow"]
    assert call("PROPFIND", f"{served}/media/", None, headers={"Depth": "0"}).status_code == 401
    assert call("OPTIONS", f"{served}/", None).status_code == 200


def test_options_before_login_name_report_as_the_share_root_does(
    served: str, make_user: Callable[..., Any]
) -> None:
    """The site's shares follow the change journal: their root names ``REPORT`` (RFC 6578),
    and so does the answer given before login, whatever the path."""
    make_user("reader", password="right", is_staff=True)
    root = call("OPTIONS", f"{served}/media/", ("reader", "right"))
    assert root.status_code == 200 and "REPORT" in root.headers["Allow"]
    for path in ("/media/", "/media/some/file.docx"):
        answer = call("OPTIONS", f"{served}{path}", None)
        assert answer.status_code == 200
        assert answer.headers["Allow"].split(", ")[-1] == "REPORT", path


def test_options_before_login_on_a_read_only_share_offer_class_1(served: str) -> None:
    answer = call("OPTIONS", f"{served}/static/", None)
    assert answer.status_code == 200
    assert answer.headers["DAV"] == "1"
    assert "PUT" not in answer.headers["Allow"]
