"""The admin's "Files" pages through Django's test client: access, CSRF, paths, errors.

Two shares: ``media`` (FileSystemStorage in a temporary folder; group ``editors`` writes,
group ``readers`` reads) and ``docs`` (InMemoryStorage, read-only, staff read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.utils import override_settings

from davstore.admin_views import PAGE_SIZE
from davstore.shares import get_share
from davstore.signals import file_changed
from davstore.thumbnails import Thumbnails
from davstore.vfs import Action
from tests.hostile_links import DIR_LINKS, FILE_LINKS, OUTSIDE_BYTES, plant, snapshot

ADMIN = "/admin/"
FILES = "/admin/davstore/"
MEDIA = "/admin/davstore/media/"
DOCS = "/admin/davstore/docs/"


def storages(media: Path) -> dict[str, Any]:
    # Not on "default": Django 4.2's override_settings drops the OPTIONS of "default".
    return {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "uploads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media), "base_url": "/media/"},
        },
        "docs": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


DAVSTORE = {
    "SHARES": {
        "media": {"STORAGE": "uploads", "READ": ["group:readers"], "WRITE": ["group:editors"]},
        "docs": {"STORAGE": "docs", "READ_ONLY": True, "READ": ["staff"]},
    }
}


@pytest.fixture
def media(tmp_path: Path, migrated: None) -> Iterator[Path]:
    folder = tmp_path / "media"
    folder.mkdir()
    with override_settings(
        ROOT_URLCONF="tests.django.admin_urls",
        ALLOWED_HOSTS=["testserver"],
        STATIC_URL="/static/",
        STORAGES=storages(folder),
        DAVSTORE=DAVSTORE,
    ):
        yield folder


@pytest.fixture
def login(make_user: Callable[..., Any]) -> Callable[..., Client]:
    """``login("editor")``: a client logged in as a staff user in that group (``None``: no
    group); ``login(..., enforce_csrf=True)`` checks CSRF tokens as browsers do."""

    users: dict[str | None, Any] = {}

    def log_in(group: str | None, *, enforce_csrf: bool = False, **fields: Any) -> Client:
        fields.setdefault("is_staff", True)
        user = users.get(group)
        if user is None:
            user = users[group] = make_user(
                f"user-{group}", groups=[group + "s"] if group else [], password="pw", **fields
            )
        client = Client(enforce_csrf_checks=enforce_csrf)
        client.force_login(user)
        return client

    return log_in


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def upload(client: Client, name: str, data: bytes, *, folder: str = "", **extra: str) -> Any:
    return client.post(
        MEDIA + "upload/",
        {"folder": folder, "files": SimpleUploadedFile(name, data), **extra},
    )


# -- access ----------------------------------------------------------------------------


def test_anonymous_users_go_to_the_login_page(media: Path) -> None:
    client = Client()
    for url in (FILES, MEDIA, MEDIA + "download/?path=a.txt"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert client.post(MEDIA + "mkdir/", {"name": "x"}).status_code == 302
    assert not (media / "x").exists()


def test_staff_without_read_permission_get_403(media: Path, login: Callable[..., Client]) -> None:
    client = login(None)
    (media / "a.txt").write_bytes(b"secret")
    assert client.get(MEDIA).status_code == 403
    assert client.get(MEDIA + "download/?path=a.txt").status_code == 403
    assert client.post(MEDIA + "mkdir/", {"name": "x"}).status_code == 403
    assert not (media / "x").exists()
    # The read-only share is open to all staff.
    assert client.get(DOCS).status_code == 200


def test_the_admin_index_lists_the_shares_a_user_may_read(
    media: Path, login: Callable[..., Client]
) -> None:
    reader = login("reader").get(ADMIN)
    assert reader.status_code == 200
    content = reader.content.decode()
    assert 'href="/admin/davstore/"' in content
    assert f'href="{MEDIA}"' in content and f'href="{DOCS}"' in content

    outsider = login(None).get(ADMIN).content.decode()
    assert f'href="{MEDIA}"' not in outsider and f'href="{DOCS}"' in outsider

    index = login("reader").get(FILES).content.decode()
    assert f'href="{MEDIA}"' in index and "read-only share" in index


def test_users_who_may_not_reach_any_share_see_no_files_section(
    media: Path, make_user: Callable[..., Any]
) -> None:
    with override_settings(DAVSTORE={"SHARES": {"media": {"STORAGE": "uploads"}}}):
        client = Client()
        client.force_login(make_user("nobody", is_staff=True, is_active=True))
        # "staff" may write by default; a share of editors only hides the section.
        assert f'href="{MEDIA}"' in client.get(ADMIN).content.decode()
    with override_settings(
        DAVSTORE={"SHARES": {"media": {"STORAGE": "uploads", "WRITE": ["group:editors"]}}}
    ):
        assert "/admin/davstore/" not in client.get(ADMIN).content.decode()
        assert client.get(FILES).status_code == 403


def test_readers_see_no_write_actions_and_their_posts_are_refused(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "a.txt").write_bytes(b"old")
    client = login("reader")
    page = client.get(MEDIA).content.decode()
    assert "a.txt" in page
    assert "davstore-upload" not in page and "davstore-rename" not in page
    assert "davstore-delete" not in page and "davstore-mkdir" not in page
    assert upload(client, "b.txt", b"new").status_code == 403
    assert client.post(MEDIA + "mkdir/", {"name": "x"}).status_code == 403
    assert client.post(MEDIA + "rename/", {"path": "a.txt", "name": "c.txt"}).status_code == 403
    assert client.post(MEDIA + "delete/", {"path": "a.txt"}).status_code == 403
    assert client.get(MEDIA + "delete/?path=a.txt").status_code == 403
    assert sorted(p.name for p in media.iterdir()) == ["a.txt"]
    # Reading is allowed.
    assert b"".join(client.get(MEDIA + "download/?path=a.txt").streaming_content) == b"old"


def test_a_read_only_share_refuses_writes_even_to_superusers(
    media: Path, login: Callable[..., Client]
) -> None:
    get_share("docs").storage.save("readme.txt", SimpleUploadedFile("x", b"hello"))
    client = login(None, is_superuser=True)
    page = client.get(DOCS).content.decode()
    assert "readme.txt" in page and "This share is read-only." in page
    assert "davstore-upload" not in page and "davstore-delete" not in page
    response = client.post(DOCS + "upload/", {"files": SimpleUploadedFile("n.txt", b"x")})
    assert response.status_code == 403
    assert client.post(DOCS + "delete/", {"path": "readme.txt"}).status_code == 403
    assert get_share("docs").storage.exists("readme.txt")


def test_every_post_needs_a_csrf_token(media: Path, login: Callable[..., Client]) -> None:
    client = login("editor", enforce_csrf=True)
    (media / "a.txt").write_bytes(b"keep")
    assert client.post(MEDIA + "mkdir/", {"name": "x"}).status_code == 403
    assert upload(client, "b.txt", b"x").status_code == 403
    assert client.post(MEDIA + "delete/", {"path": "a.txt"}).status_code == 403
    assert client.post(MEDIA + "rename/", {"path": "a.txt", "name": "b"}).status_code == 403
    assert sorted(p.name for p in media.iterdir()) == ["a.txt"]
    client.get(MEDIA)  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(MEDIA + "mkdir/", {"name": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and (media / "x").is_dir()


def test_unknown_share_is_404(media: Path, login: Callable[..., Client]) -> None:
    assert login("editor").get("/admin/davstore/nope/").status_code == 404


def test_only_get_and_post_where_they_make_sense(media: Path, login: Callable[..., Client]) -> None:
    client = login("editor")
    assert client.get(MEDIA + "upload/").status_code == 405
    assert client.get(MEDIA + "mkdir/").status_code == 405
    assert client.post(MEDIA, {}).status_code == 405


# -- browsing and downloading ------------------------------------------------------------


def test_listing_folders_first_with_size_time_and_url(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "b.txt").write_bytes(b"12345")
    (media / "A.txt").write_bytes(b"")
    (media / "zeta").mkdir()
    (media / "zeta" / "inner.txt").write_bytes(b"i")
    (media / "alpha").mkdir()
    client = login("reader")
    response = client.get(MEDIA)
    assert response.status_code == 200
    page = response.content.decode()
    order = [page.index(f'data-path="{name}"') for name in ("alpha", "zeta", "A.txt", "b.txt")]
    assert order == sorted(order)
    assert "5\xa0bytes" in page
    assert 'href="/media/b.txt"' in page  # the storage's url()
    assert "<time datetime=" in page
    assert f'href="{MEDIA}?path=zeta"' in page

    inner = client.get(MEDIA + "?path=zeta").content.decode()
    assert 'data-path="zeta/inner.txt"' in inner
    assert 'href="/media/zeta/inner.txt"' in inner
    assert f'<a href="{MEDIA}">media</a>' in inner  # breadcrumbs up to the share
    assert "Parent folder" in inner


def test_big_folders_are_shown_a_page_at_a_time(media: Path, login: Callable[..., Client]) -> None:
    (media / "big").mkdir()
    for number in range(PAGE_SIZE + 5):
        (media / "big" / f"f{number:04d}.txt").write_bytes(b"")
    client = login("reader")
    first = client.get(MEDIA, {"path": "big"}).content.decode()
    assert first.count('class="davstore-file"') == PAGE_SIZE
    assert f"Page 1 of 2 ({PAGE_SIZE + 5} entries)" in first
    assert f'href="{MEDIA}?path=big&amp;page=2" rel="next"' in first
    second = client.get(MEDIA, {"path": "big", "page": "2"}).content.decode()
    assert second.count('class="davstore-file"') == 5
    assert f'data-path="big/f{PAGE_SIZE + 4:04d}.txt"' in second
    assert client.get(MEDIA, {"path": "big", "page": "x"}).status_code == 200


def test_no_url_column_when_the_storage_has_none(media: Path, login: Callable[..., Client]) -> None:
    with override_settings(
        STORAGES={
            **storages(media),
            "docs": {"BACKEND": "tests.minimal_storages.MinimalStorage"},
        }
    ):
        get_share("docs").storage.save("n.txt", SimpleUploadedFile("n.txt", b"x"))
        page = login(None).get(DOCS).content.decode()
    assert 'data-path="n.txt"' in page and "davstore-url" not in page


def test_download_streams_the_file_with_its_name(media: Path, login: Callable[..., Client]) -> None:
    name = 'naïve résumé; "q" 100%.txt'
    data = bytes(range(256)) * 5000
    (media / name).write_bytes(data)
    client = login("reader")
    response = client.get(MEDIA + "download/", {"path": name})
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == data
    assert int(response["Content-Length"]) == len(data)
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''na%C3%AFve%20r%C3%A9sum%C3%A9%3B%20%22q%22%20100%25.txt" in disposition


def test_download_of_a_folder_or_a_missing_file_is_a_message(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "sub").mkdir()
    client = login("reader")
    response = client.get(MEDIA + "download/", {"path": "sub/missing.txt"})
    assert response.status_code == 302 and response["Location"] == MEDIA + "?path=sub"
    assert any("No such file" in text for text in texts(response))
    response = client.get(MEDIA + "download/", {"path": "sub"})
    assert response.status_code == 302
    assert any("Is a directory" in text for text in texts(response))


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../etc/passwd", "..", "a\\..\\b", "a\x00b", ".davstore-keep"],
)
def test_paths_that_could_escape_are_refused(
    media: Path, login: Callable[..., Client], path: str
) -> None:
    (media / "a").mkdir()
    client = login("editor")
    for url in (MEDIA, MEDIA + "download/", MEDIA + "rename/", MEDIA + "delete/"):
        response = client.get(url, {"path": path})
        assert response.status_code == 302, url
        assert response["Location"].startswith(MEDIA), url
        assert texts(response), url
    response = client.post(MEDIA + "mkdir/", {"folder": path, "name": "x"})
    assert response.status_code == 302 and texts(response)
    response = client.post(MEDIA + "delete/", {"path": path})
    assert response.status_code == 302 and texts(response)
    assert sorted(p.name for p in media.iterdir()) == ["a"]


@pytest.mark.parametrize("name", ["..", "a/b", "", "   ", "x\\y", ".davstore-x"])
def test_bad_names_for_new_folders_and_renames_are_messages(
    media: Path, login: Callable[..., Client], name: str
) -> None:
    (media / "a.txt").write_bytes(b"a")
    client = login("editor")
    response = client.post(MEDIA + "mkdir/", {"folder": "", "name": name})
    assert response.status_code == 302 and response["Location"] == MEDIA
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["error"]
    response = client.post(MEDIA + "rename/", {"path": "a.txt", "name": name})
    assert response.status_code == 302 and texts(response)
    assert sorted(p.name for p in media.iterdir()) == ["a.txt"]


def test_a_missing_folder_sends_back_to_its_parent(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "a").mkdir()
    client = login("reader")
    response = client.get(MEDIA, {"path": "a/gone"})
    assert response.status_code == 302 and response["Location"] == MEDIA + "?path=a"
    assert any("No such file" in text for text in texts(response))
    (media / "f.txt").write_bytes(b"")
    response = client.get(MEDIA, {"path": "f.txt"})
    assert response.status_code == 302 and response["Location"] == MEDIA


def test_a_broken_store_is_a_message_not_a_server_error(
    media: Path, login: Callable[..., Client], tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    broken = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    broken["OPTIONS"] = {"location": str(not_a_folder)}  # type: ignore[assignment]
    with override_settings(STORAGES={**storages(media), "uploads": broken}):
        client = login("editor")
        response = client.get(MEDIA)
        assert response.status_code == 200
        page = response.content.decode()
        assert "location is not a folder." in page and "This folder is empty." in page
        assert str(not_a_folder) not in page
        response = client.post(MEDIA + "mkdir/", {"name": "x"})
        assert response.status_code == 302 and response["Location"] == MEDIA


# -- changes -----------------------------------------------------------------------------


@pytest.fixture
def changes() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    file_changed.connect(receiver)
    yield seen
    file_changed.disconnect(receiver)


def test_upload_refuses_to_overwrite_unless_asked(
    media: Path, login: Callable[..., Client], changes: list[dict[str, Any]]
) -> None:
    client = login("editor")
    response = upload(client, "new.txt", b"first")
    assert response.status_code == 302 and response["Location"] == MEDIA
    assert (media / "new.txt").read_bytes() == b"first"
    assert texts(response) == ["Uploaded “new.txt”."]

    response = upload(client, "new.txt", b"second")
    assert (media / "new.txt").read_bytes() == b"first"
    assert any("already exists" in text for text in texts(response))

    response = upload(client, "new.txt", b"third", replace="on")
    assert (media / "new.txt").read_bytes() == b"third"
    assert [(c["action"], c["path"], c["origin"]) for c in changes] == [
        (Action.CREATED, "new.txt", "admin"),
        (Action.MODIFIED, "new.txt", "admin"),
    ]
    assert all(c["user"].get_username() == "user-editor" for c in changes)


def test_upload_into_a_folder_several_files_and_big_ones(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "sub").mkdir()
    client = login("editor")
    big = b"x" * (5 << 20)  # past FILE_UPLOAD_MAX_MEMORY_SIZE: a temporary file
    response = client.post(
        MEDIA + "upload/",
        {
            "folder": "sub",
            "files": [SimpleUploadedFile("big.bin", big), SimpleUploadedFile("é.txt", b"e")],
        },
    )
    assert response.status_code == 302 and response["Location"] == MEDIA + "?path=sub"
    assert (media / "sub" / "big.bin").read_bytes() == big
    assert (media / "sub" / "é.txt").read_bytes() == b"e"
    response = client.post(MEDIA + "upload/", {"folder": "sub"})
    assert "Choose a file to upload." in texts(response)
    response = client.post(
        MEDIA + "upload/",
        {"files": [SimpleUploadedFile(".davstore-x", b"r"), SimpleUploadedFile("ok", b"k")]},
    )
    assert any("reserved" in text for text in texts(response))
    assert sorted(p.name for p in media.iterdir()) == ["ok", "sub"]


def test_mkdir_rename_and_delete_with_confirmation(
    media: Path, login: Callable[..., Client], changes: list[dict[str, Any]]
) -> None:
    client = login("editor")
    response = client.post(MEDIA + "mkdir/", {"folder": "", "name": "docs"})
    assert response.status_code == 302 and (media / "docs").is_dir()
    response = client.post(MEDIA + "mkdir/", {"folder": "", "name": "docs"})
    assert any("File exists" in text for text in texts(response))

    (media / "docs" / "a.txt").write_bytes(b"a")
    (media / "docs" / "b.txt").write_bytes(b"b")
    form = client.get(MEDIA + "rename/", {"path": "docs/a.txt"})
    assert form.status_code == 200 and 'value="a.txt"' in form.content.decode()
    response = client.post(MEDIA + "rename/", {"path": "docs/a.txt", "name": "b.txt"})
    assert any("File exists" in text for text in texts(response))
    assert (media / "docs" / "b.txt").read_bytes() == b"b"
    response = client.post(MEDIA + "rename/", {"path": "docs/a.txt", "name": "c.txt"})
    assert response["Location"] == MEDIA + "?path=docs"
    assert sorted(p.name for p in (media / "docs").iterdir()) == ["b.txt", "c.txt"]

    confirm = client.get(MEDIA + "delete/", {"path": "docs"})
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "everything in it (2 files and folders)" in page
    assert (media / "docs").is_dir()  # a GET deletes nothing
    response = client.post(MEDIA + "delete/", {"path": "docs"})
    assert response.status_code == 302 and not (media / "docs").exists()
    response = client.post(MEDIA + "delete/", {"path": "docs"})
    assert any("No such file" in text for text in texts(response))

    assert [(c["action"], c["path"], c["target"]) for c in changes] == [
        (Action.FOLDER_CREATED, "docs", None),
        (Action.MOVED, "docs/a.txt", "docs/c.txt"),
        (Action.FOLDER_DELETED, "docs", None),
    ]
    assert {(c["origin"], c["user"].get_username()) for c in changes} == {("admin", "user-editor")}


def test_a_folder_rename_that_cannot_copy_a_member_is_a_message_and_moves_nothing(
    media: Path,
    login: Callable[..., Client],
    changes: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On a store without rename a folder's rename is a copy then a delete: when a member
    cannot be copied the page says so, the folder stays whole and nothing is at the new
    name; the site is told of the copy and of its removal."""
    flat = {"BACKEND": "tests.fuse.storages.StuckCopyStorage"}
    shares = {"flat": {"STORAGE": "flat", "READ": ["group:editors"], "WRITE": ["group:editors"]}}
    with override_settings(STORAGES=storages(media) | {"flat": flat}, DAVSTORE={"SHARES": shares}):
        vfs = get_share("flat").vfs
        assert not vfs.capabilities.rename
        vfs.mkdir("d")
        vfs.write_file("d/stuck", b"S")
        vfs.write_file("d/g", b"G")
        client = login("editor")
        del changes[:]
        with caplog.at_level("INFO", logger="davstore"):
            response = client.post(FILES + "flat/rename/", {"path": "d", "name": "moved"})
        assert response.status_code == 302
        assert texts(response) == [
            "1 members of the folder could not be copied: nothing was moved: “d”."
        ]
        told = [r.getMessage() for r in caplog.records if "could not be copied" in r.getMessage()]
        assert len(told) == 1, told  # the VFS's line, not the admin's too
        assert [e.name for e in vfs.listdir("")] == ["d"]
        assert sorted(e.name for e in vfs.listdir("d")) == ["d/g", "d/stuck"]
    assert [(c["action"], c["path"], c["target"]) for c in changes] == [
        (Action.COPIED, "d", "moved"),
        (Action.FOLDER_DELETED, "moved", None),
    ]


def test_the_root_cannot_be_renamed_or_deleted(media: Path, login: Callable[..., Client]) -> None:
    client = login("editor", is_superuser=True)
    for url in (MEDIA + "rename/", MEDIA + "delete/"):
        response = client.post(url, {"path": "", "name": "x"})
        assert response.status_code == 302 and texts(response), url
    assert media.is_dir()


# -- symbolic links (issue 20) -----------------------------------------------------------


def test_links_in_the_share_never_lead_out_of_it(
    media: Path, tmp_path: Path, login: Callable[..., Client]
) -> None:
    """Browse, download, upload, mkdir, rename and delete on links to the outside."""
    planted = plant(tmp_path, root=media)
    before = snapshot(planted.outside)
    client = login("editor")
    bodies: list[bytes] = []
    page = client.get(MEDIA)
    assert page.status_code == 200
    bodies.append(page.content)
    for link in (*FILE_LINKS, *DIR_LINKS, "inlink"):
        assert f'data-path="{link}"' not in page.content.decode()
    for link in (*DIR_LINKS, "real/out", "real/loop"):
        for url, path in (
            (MEDIA, link),
            (MEDIA, f"{link}/deeper"),
            (MEDIA + "download/", f"{link}/inner.txt"),
            (MEDIA + "delete/", link),
            (MEDIA + "rename/", f"{link}/inner.txt"),
        ):
            response = client.get(url, {"path": path})
            assert response.status_code == 302, (url, path)
            assert any("No such file" in text for text in texts(response)), (url, path)
        for response in (
            upload(client, "new.txt", b"planted", folder=link),
            upload(client, "inner.txt", b"planted", folder=link, replace="on"),
            client.post(MEDIA + "mkdir/", {"folder": link, "name": "made"}),
            client.post(MEDIA + "rename/", {"path": f"{link}/inner.txt", "name": "stolen.txt"}),
            client.post(MEDIA + "delete/", {"path": f"{link}/inner.txt"}),
            client.post(MEDIA + "delete/", {"path": link}),
        ):
            assert response.status_code == 302
            assert texts(response)
    for link in (*FILE_LINKS, "inlink"):
        response = client.get(MEDIA + "download/", {"path": link})
        assert response.status_code == 302 and texts(response)
        response = client.post(MEDIA + "rename/", {"path": link, "name": f"{link}-moved"})
        assert any("No such file" in text for text in texts(response))
    # Deleting a folder that holds links takes the links, never what they lead to.
    response = client.post(MEDIA + "delete/", {"path": "real"})
    assert response.status_code == 302 and not (media / "real").exists()
    for body in bodies:
        assert OUTSIDE_BYTES not in body
    planted.unchanged(before)


# -- the file manager (issue 24): sort, filter, pages, thumbnails, previews, drops --------


def _names(page: str) -> list[str]:
    return [chunk.split('"', 1)[0] for chunk in page.split('data-path="')[1:]]


def test_sorted_by_name_size_or_date_folders_first(
    media: Path, login: Callable[..., Client]
) -> None:
    import os

    for name, size, when in (("b.txt", 30, 300), ("a.txt", 10, 200), ("C.txt", 20, 100)):
        (media / name).write_bytes(b"x" * size)
        os.utime(media / name, (when, when))
    (media / "zdir").mkdir()
    (media / "adir").mkdir()
    client = login("reader")
    orders = {
        "": ["adir", "zdir", "a.txt", "b.txt", "C.txt"],
        "-name": ["zdir", "adir", "C.txt", "b.txt", "a.txt"],
        "size": ["adir", "zdir", "a.txt", "C.txt", "b.txt"],
        "-size": ["adir", "zdir", "b.txt", "C.txt", "a.txt"],
        "modified": ["C.txt", "a.txt", "b.txt"],
        "-modified": ["b.txt", "a.txt", "C.txt"],
        "bogus": ["adir", "zdir", "a.txt", "b.txt", "C.txt"],
    }
    for order, expected in orders.items():
        page = client.get(MEDIA, {"o": order} if order else {}).content.decode()
        names = (
            [n for n in _names(page) if not n.endswith("dir")]
            if "modified" in order
            else _names(page)
        )
        assert names == expected, order
    # The header links flip the order of the column sorted by, and keep the folder.
    page = client.get(MEDIA, {"o": "size", "path": ""}).content.decode()
    assert f'href="{MEDIA}?o=-size" class="davstore-sort sorted"' in page
    assert 'aria-sort="ascending"' in page


def test_the_filter_box_narrows_the_listing_and_pages_keep_it(
    media: Path, login: Callable[..., Client]
) -> None:
    for number in range(PAGE_SIZE + 10):
        (media / f"report-{number:04d}.txt").write_bytes(b"")
    (media / "photo.jpg").write_bytes(b"")
    (media / "Reports").mkdir()
    client = login("reader")
    (media / "café.txt").write_bytes(b"")
    decomposed = client.get(MEDIA, {"q": "cafe\u0301"}).content.decode()  # as macOS types it
    assert _names(decomposed) == ["café.txt"]
    page = client.get(MEDIA, {"q": "REPORT"}).content.decode()
    assert 'value="REPORT"' in page and 'data-path="photo.jpg"' not in page
    assert _names(page)[0] == "Reports"  # folders match too, and come first
    assert f"Page 1 of 2 ({PAGE_SIZE + 11} entries of {PAGE_SIZE + 13})" in page
    assert f'href="{MEDIA}?q=REPORT&amp;page=2" rel="next"' in page
    nothing = client.get(MEDIA, {"q": "nothing-like-it"}).content.decode()
    assert "No name here holds “nothing-like-it”." in nothing
    assert f'href="{MEDIA}" class="davstore-button davstore-clear"' in nothing


def test_a_folder_of_10000_entries_is_one_listing_a_page(
    media: Path, login: Callable[..., Client]
) -> None:
    big = media / "big"
    big.mkdir()
    for number in range(10_000):
        (big / f"f{number:05d}.txt").write_bytes(b"")
    client = login("reader")
    client.get(MEDIA)  # the share built, the session warm
    vfs = get_share("media").vfs
    calls: list[str] = []
    store = vfs.store
    for method in ("list", "head"):
        real = getattr(store, method)

        def counted(*args: Any, _real: Any = real, _name: str = method, **kw: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kw)

        setattr(store, method, counted)
    pages = 10_000 // PAGE_SIZE
    for number in (1, 37, pages):
        vfs.invalidate()
        calls.clear()
        page = client.get(MEDIA, {"path": "big", "page": str(number), "o": "-name"})
        html = page.content.decode()
        assert calls.count("list") == 1 and calls.count("head") <= 2, calls
        names = _names(html)
        first = 10_000 - 1 - (number - 1) * PAGE_SIZE
        assert names == [f"big/f{n:05d}.txt" for n in range(first, first - PAGE_SIZE, -1)]
        assert f"Page {number} of {pages} (10000 entries)" in html
    assert 'rel="first"' in html and 'rel="last"' not in html


def _jpeg(
    size: tuple[int, int] = (800, 600), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def test_thumbnails_are_made_once_kept_outside_the_share_and_bounded(
    media: Path, login: Callable[..., Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from PIL import Image

    state = tmp_path / "state"
    (media / "photos").mkdir()
    for number in range(6):
        (media / "photos" / f"p{number}.jpg").write_bytes(_jpeg(colour=(number * 40, 10, 10)))
    (media / "photos" / "fake.png").write_bytes(b"not a picture")
    Image.new("1", (10_000, 7_000)).save(media / "photos" / "bomb.png")  # 70 Mpx in a few KB
    (media / "photos" / "notes.txt").write_bytes(b"text")
    settings = {**DAVSTORE, "STATE_DIR": str(state)}
    with override_settings(DAVSTORE=settings):
        client = login("reader")
        page = client.get(MEDIA, {"path": "photos"}).content.decode()
        assert page.count('class="davstore-thumb"') == 8  # by name: the fake PNG too
        assert 'data-path="photos/notes.txt"' in page
        response = client.get(MEDIA + "thumbnail/", {"path": "photos/p1.jpg"})
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as thumb:
            assert thumb.size == (96, 72)
        kept = state / "media" / "thumbnails"
        assert len(list(kept.iterdir())) == 1
        # Asked again: from the folder, the file is not read.
        vfs = get_share("media").vfs
        reads: list[str] = []
        real_open = vfs.open_read
        monkeypatch.setattr(vfs, "open_read", lambda p, **kw: reads.append(p) or real_open(p, **kw))
        again = client.get(MEDIA + "thumbnail/", {"path": "photos/p1.jpg"})
        assert again.content == response.content and reads == []
        # Not a picture, a folder, a missing file, a path out of the share: 404, no message.
        refusals = ("photos/fake.png", "photos/bomb.png", "photos/notes.txt", "photos/nope.jpg")
        for path in (*refusals, "photos", "../x"):
            refused = client.get(MEDIA + "thumbnail/", {"path": path})
            assert refused.status_code == 404 and not texts(refused), path
        # The listing names the version: a new picture, a new URL and a new thumbnail; the
        # browser may keep a versioned one for a day.
        import re

        def thumb_url() -> str:
            listing = client.get(MEDIA, {"path": "photos"}).content.decode()
            found = re.search(r'src="([^"]*thumbnail/\?path=photos/p2.jpg[^"]*)"', listing)
            assert found, listing
            return found.group(1).replace("&amp;", "&")

        first = thumb_url()
        assert "max-age=86400" in client.get(first)["Cache-Control"]
        old = client.get(first).content
        login("editor").post(
            MEDIA + "upload/",
            {
                "folder": "photos",
                "replace": "on",
                "files": SimpleUploadedFile("p2.jpg", _jpeg((400, 400))),
            },
        )
        second = thumb_url()
        assert second != first
        with Image.open(io.BytesIO(client.get(second).content)) as thumb:
            assert thumb.size == (96, 96)
        assert "max-age=60" in client.get(first)["Cache-Control"]  # an old URL: not for long
        assert old != client.get(second).content

        # Bounded: past the limit the oldest go, down to nine tenths of it.
        bounded = Thumbnails(vfs, tmp_path / "bounded", max_count=4)
        for number in range(6):
            bounded.get(f"photos/p{number}.jpg")
            assert bounded.count() <= 4
        assert bounded.count() == 4
    assert sorted(p.name for p in (media / "photos").iterdir()) == [
        "bomb.png",
        "fake.png",
        "notes.txt",
        *(f"p{n}.jpg" for n in range(6)),
    ]
    assert login(None).get(MEDIA + "thumbnail/", {"path": "photos/p1.jpg"}).status_code == 403


def test_previews_of_pictures_pdfs_and_text_and_nothing_that_runs(
    media: Path, login: Callable[..., Client]
) -> None:
    (media / "photo.jpg").write_bytes(_jpeg())
    (media / "paper.pdf").write_bytes(b"%PDF-1.4 a paper")
    (media / "notes.md").write_text("# Notes\n<script>alert(1)</script>\n" + "x" * (300 << 10))
    (media / "data.bin").write_bytes(bytes(range(256)))
    (media / "page.html").write_text("<script>alert(1)</script>")
    (media / "draw.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')
    client = login("reader")

    def preview(name: str) -> str:
        response = client.get(MEDIA + "preview/", {"path": name})
        assert response.status_code == 200, name
        return response.content.decode()

    assert f'<img src="{MEDIA}inline/?path=photo.jpg"' in preview("photo.jpg")
    assert f'<iframe src="{MEDIA}inline/?path=paper.pdf"' in preview("paper.pdf")
    text = preview("notes.md")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "The first 256.0\xa0KB are shown" in text
    assert 'data-kind="none"' in preview("data.bin")
    assert 'data-kind="text"' in preview("page.html")  # shown as text, escaped
    assert "&lt;svg" in preview("draw.svg")  # as text, never as a picture that runs

    picture = client.get(MEDIA + "inline/", {"path": "photo.jpg"})
    assert picture["Content-Type"] == "image/jpeg"
    assert picture["Content-Disposition"].startswith("inline")
    assert picture["X-Content-Type-Options"] == "nosniff"
    assert b"".join(picture.streaming_content) == (media / "photo.jpg").read_bytes()
    pdf = client.get(MEDIA + "inline/", {"path": "paper.pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf["X-Frame-Options"] == "SAMEORIGIN"
    for name in ("page.html", "draw.svg", "data.bin"):  # never a page of the admin
        sent = client.get(MEDIA + "inline/", {"path": name})
        assert sent["Content-Disposition"].startswith("attachment"), name
    # A folder's preview is the folder; a missing file is a message.
    (media / "sub").mkdir()
    assert client.get(MEDIA + "preview/", {"path": "sub"})["Location"] == MEDIA + "?path=sub"
    gone = client.get(MEDIA + "preview/", {"path": "gone.txt"})
    assert gone.status_code == 302 and any("No such file" in t for t in texts(gone))
    assert login(None).get(MEDIA + "preview/", {"path": "photo.jpg"}).status_code == 403
    assert login(None).get(MEDIA + "inline/", {"path": "photo.jpg"}).status_code == 403


def test_the_pages_script_uploads_one_file_a_request_into_dropped_folders(
    media: Path, login: Callable[..., Client], changes: list[dict[str, Any]]
) -> None:
    (media / "in").mkdir()
    client = login("editor", enforce_csrf=True)
    client.get(MEDIA)
    token = client.cookies["csrftoken"].value

    def send(name: str, data: bytes, **fields: str) -> Any:
        return client.post(
            MEDIA + "upload/",
            {"folder": "in", "files": SimpleUploadedFile(name, data), **fields},
            headers={"Accept": "application/json", "X-CSRFToken": token},
        )

    answer = send("a.txt", b"A", relative="trip/day 1")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"uploaded": ["in/trip/day 1/a.txt"], "errors": []}
    assert (media / "in" / "trip" / "day 1" / "a.txt").read_bytes() == b"A"
    assert send("b.txt", b"B", relative="trip").json()["uploaded"] == ["in/trip/b.txt"]
    again = send("a.txt", b"new", relative="trip/day 1")
    assert again.status_code == 400 and "already exists" in again.json()["errors"][0]
    assert (media / "in" / "trip" / "day 1" / "a.txt").read_bytes() == b"A"
    assert send("a.txt", b"new", relative="trip/day 1", replace="on").status_code == 200
    assert (media / "in" / "trip" / "day 1" / "a.txt").read_bytes() == b"new"
    for relative in ("../out", "trip/../../x", ".davstore-trash", "a\\b"):
        refused = send("x.txt", b"x", relative=relative)
        assert refused.status_code == 400 and refused.json()["errors"], relative
    assert not texts(refused)  # answers, not messages for the next page
    assert sorted(p.name for p in media.iterdir()) == [".davstore-trash", "in"]  # the old a.txt
    assert sorted(p.name for p in (media / "in").iterdir()) == ["trip"]
    assert {(c["action"], c["path"]) for c in changes} >= {
        (Action.FOLDER_CREATED, "in/trip"),
        (Action.FOLDER_CREATED, "in/trip/day 1"),
        (Action.CREATED, "in/trip/day 1/a.txt"),
    }
    # Without the token, or as a reader: refused, nothing written.
    no_token = client.post(
        MEDIA + "upload/",
        {"folder": "in", "files": SimpleUploadedFile("c.txt", b"c")},
        headers={"Accept": "application/json"},
    )
    assert no_token.status_code == 403
    reader = login("reader")
    refused = reader.post(
        MEDIA + "upload/",
        {"folder": "in", "files": SimpleUploadedFile("c.txt", b"c"), "relative": "r"},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403
    assert sorted(p.name for p in (media / "in").iterdir()) == ["trip"]


def test_the_files_section_in_a_custom_admin_site(
    media: Path, login: Callable[..., Client]
) -> None:
    """README's recipe: ``davstore.admin.install(my_site)`` on a project's own AdminSite."""
    (media / "sub").mkdir()
    (media / "sub" / "a.txt").write_bytes(b"a")
    with override_settings(ROOT_URLCONF="tests.django.custom_admin_urls"):
        client = login("editor")
        home = client.get("/back-office/").content.decode()
        assert 'href="/back-office/davstore/media/"' in home and "Back office" in home
        page = client.get("/back-office/davstore/media/", {"path": "sub"})
        html = page.content.decode()
        assert page.status_code == 200 and 'data-path="sub/a.txt"' in html
        assert '<a href="/back-office/">Home</a>' in html
        assert 'href="/back-office/davstore/media/preview/?path=sub/a.txt"' in html
        made = client.post("/back-office/davstore/media/mkdir/", {"folder": "sub", "name": "b"})
        assert made["Location"] == "/back-office/davstore/media/?path=sub"
        assert (media / "sub" / "b").is_dir()
