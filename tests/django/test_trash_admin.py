"""The admin's Trash, Versions and Activity pages of a share, through the Django test
client: the trash listed with filters (path, user, kind, day), restore (here or elsewhere)
and purge (one entry, all) for users who may write, as CSRF-protected POSTs; the previous
versions of a file, restorable; a restored file the site's rows name makes them valid
again; the activity log filtered and paged.

The site: tests.django.siteapp (Photo.image in ``STORAGES["site"]``, shared as ``media``),
on local disk and on S3 (moto's server): tests/django/test_guard_admin.py's ``site``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.storage import storages
from django.test import Client
from django.test.utils import override_settings

from davstore.shares import get_share
from davstore.vfs import acting_as
from davstore.vfs.trash import TrashEntry, trash_of
from tests.django.siteapp.models import Photo
from tests.django.test_guard_admin import moto, save, site  # noqa: F401 - fixtures
from tests.django.test_guard_replace import png

TRASH = "/admin/davstore/media/trash/"


@contextlib.contextmanager
def share_settings(**changes: Any) -> Iterator[None]:
    """The ``media`` share with ``changes`` to its ``DAVSTORE`` entry."""
    davstore = settings.DAVSTORE
    media = {**davstore["SHARES"]["media"], **changes}
    with override_settings(DAVSTORE={**davstore, "SHARES": {"media": media}}):
        yield


def read(name: str) -> bytes:
    with storages["site"].open(name, "rb") as stream:
        data: bytes = stream.read()
    return data


def exists(name: str) -> bool:
    return bool(storages["site"].exists(name))


@pytest.fixture
def boss(site: str, make_user: Callable[..., Any]) -> Client:  # noqa: F811 - the fixture
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def _entries() -> list[TrashEntry]:
    trash = trash_of(get_share("media").vfs)
    assert trash is not None
    return trash.entries()


def _csrf(client: Client, url: str) -> str:
    """The CSRF token of the form on the page at ``url`` (the browser's way)."""
    html = client.get(url).content.decode()
    return html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]


def _post(client: Client, url: str, data: dict[str, str], page: str = TRASH) -> Any:
    return client.post(url, {**data, "csrfmiddlewaretoken": _csrf(client, page)})


def _messages(answer: Any) -> list[str]:
    return [str(m) for m in get_messages(answer.wsgi_request)]


def _rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [part.split('"', 1)[0] for part in body.split('data-path="')[1:]]


def _deleted_by_two() -> None:
    save("docs/a.txt", b"aaaa")
    save("photos/b.jpg", b"bb")
    save("docs/c.txt", b"c")
    vfs = get_share("media").vfs
    with acting_as("ann", "webdav"):
        vfs.remove("docs/a.txt")
        vfs.remove("photos/b.jpg")
    with acting_as("bob", "fuse"):
        vfs.remove("docs/c.txt")


def test_the_trash_page_lists_entries_with_filters(boss: Client) -> None:
    _deleted_by_two()
    answer = boss.get(TRASH)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert _rows(html, "davstore-trash") == ["docs/c.txt", "photos/b.jpg", "docs/a.txt"]
    assert "3 entries, 7 bytes in the trash" in html
    assert 'id="davstore-empty-trash"' in html and 'class="davstore-restore"' in html
    by = {
        "?path=DOCS": ["docs/c.txt", "docs/a.txt"],
        "?user=ann": ["photos/b.jpg", "docs/a.txt"],
        "?user=bob&path=docs": ["docs/c.txt"],
        "?kind=replaced": [],
    }
    today = datetime.datetime.now(datetime.UTC).date()
    by[f"?since={today}&until={today}"] = ["docs/c.txt", "photos/b.jpg", "docs/a.txt"]
    by[f"?since={today + datetime.timedelta(days=1)}"] = []
    by[f"?until={today - datetime.timedelta(days=1)}"] = []
    for query, expected in by.items():
        shown = boss.get(TRASH + query).content.decode()
        assert _rows(shown, "davstore-trash") == expected, query
    bad = boss.get(TRASH + "?since=yesterday")
    assert bad.status_code == 200 and "is not a day (use YYYY-MM-DD)" in bad.content.decode()


def test_restore_from_the_trash_page_here_or_elsewhere(boss: Client) -> None:
    _deleted_by_two()
    by_path = {e.path: e for e in _entries()}
    answer = _post(boss, TRASH + "restore/", {"id": by_path["docs/a.txt"].id})
    assert answer.status_code == 302 and answer["Location"] == TRASH
    assert read("docs/a.txt") == b"aaaa"
    assert _messages(answer) == ["Restored the file “docs/a.txt”."]
    elsewhere = {"id": by_path["photos/b.jpg"].id, "to": "back/again/b.jpg"}
    answer = _post(boss, TRASH + "restore/", elsewhere)
    assert read("back/again/b.jpg") == b"bb"
    assert not exists("photos/b.jpg")
    assert [e.path for e in _entries()] == ["docs/c.txt"]
    # Onto a folder: refused with a message, nothing changed.
    save("back/inside.txt", b"i")  # a folder on every store
    answer = _post(boss, TRASH + "restore/", {"id": by_path["docs/c.txt"].id, "to": "back"})
    assert "restore it elsewhere" in _messages(answer)[0]
    assert [e.path for e in _entries()] == ["docs/c.txt"]
    # An unknown id is a message, not an error page.
    answer = _post(boss, TRASH + "restore/", {"id": "nope"})
    assert answer.status_code == 302 and "No such entry in the trash" in _messages(answer)[0]


def test_restore_and_purge_are_posts_with_csrf(boss: Client) -> None:
    _deleted_by_two()
    entry = _entries()[0]
    assert boss.get(TRASH + f"restore/?id={entry.id}").status_code == 405
    assert boss.post(TRASH + "restore/", {"id": entry.id}).status_code == 403  # no token
    assert boss.post(TRASH + "purge/", {"all": "1"}).status_code == 403
    assert len(_entries()) == 3 and not exists("docs/a.txt")


def test_purge_one_entry_then_all(boss: Client) -> None:
    _deleted_by_two()
    first, *rest = _entries()
    confirm = boss.get(TRASH + f"purge/?id={first.id}")
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "purge the deleted file “docs/a.txt”" in html and 'id="davstore-trash-purge"' in html
    answer = _post(boss, TRASH + "purge/", {"id": first.id})
    assert answer.status_code == 302 and _messages(answer) == [
        "Purged “docs/a.txt” from the trash."
    ]
    assert [e.id for e in _entries()] == [e.id for e in rest]
    confirm = boss.get(TRASH + "purge/?all=1").content.decode()
    assert "empty the trash of “media”: 2 entries" in confirm
    answer = _post(boss, TRASH + "purge/", {"all": "1"})
    assert _messages(answer) == ["Purged 2 entries (3 bytes) from the trash."]
    assert _entries() == []
    assert "The trash is empty." in boss.get(TRASH).content.decode()


def test_a_reader_sees_the_trash_but_cannot_restore_or_purge(
    site: str,  # noqa: F811 - the fixture
    make_user: Callable[..., Any],
) -> None:
    _deleted_by_two()
    reader = Client()
    reader.force_login(make_user("reader", is_staff=True))
    # Readable by staff, writable only with a permission nobody here holds.
    with share_settings(READ=["staff"], WRITE=["siteapp.change_photo"]):
        answer = reader.get(TRASH)
        assert answer.status_code == 200
        html = answer.content.decode()
        assert _rows(html, "davstore-trash") == ["docs/c.txt", "photos/b.jpg", "docs/a.txt"]
        assert 'class="davstore-restore"' not in html and 'id="davstore-empty-trash"' not in html
        entry = _entries()[0]
        assert reader.post(TRASH + "restore/", {"id": entry.id}).status_code == 403
        assert reader.post(TRASH + "purge/", {"id": entry.id}).status_code == 403
        assert reader.get(TRASH + f"purge/?id={entry.id}").status_code == 403
        assert len(_entries()) == 3 and not exists("docs/a.txt")
        outsider = Client()
        outsider.force_login(make_user("outsider", is_staff=False))
        assert outsider.get(TRASH).status_code == 302  # the admin's login page


def test_each_file_lists_its_versions_and_one_restores(boss: Client) -> None:
    vfs = get_share("media").vfs
    vfs.mkdir("docs")
    with acting_as("ann", "webdav"):
        for body in (b"one", b"two!", b"three"):
            vfs.write_file("docs/note.txt", body)
    # The file's own page (its preview, where the Files page's name leads) links to them.
    listing = boss.get("/admin/davstore/media/?path=docs").content.decode()
    assert 'href="/admin/davstore/media/preview/?path=docs/note.txt"' in listing
    page = boss.get("/admin/davstore/media/preview/?path=docs/note.txt").content.decode()
    versions_url = "/admin/davstore/media/versions/?path=docs/note.txt"
    assert f'href="{versions_url}" class="davstore-action davstore-versions"' in page
    answer = boss.get(versions_url)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Now: " in html and "5\xa0bytes" in html
    table = html.split('id="davstore-versions"', 1)[1].split("</table>", 1)[0]
    assert table.count('class="davstore-restore"') == 2
    assert table.index('title="4 bytes"') < table.index('title="3 bytes"')  # newest first
    oldest = next(e for e in _entries() if e.size == 3)
    download = f"/admin/davstore/media/trash/download/?id={oldest.id}"
    assert f'href="{download}" class="davstore-trash-download"' in table
    got = boss.get(download)
    assert got.status_code == 200 and got.getvalue() == b"one"
    assert got["Content-Disposition"] == 'attachment; filename="note.txt"'
    restore = {"id": oldest.id, "back": "versions", "path": "docs/note.txt"}
    answer = _post(boss, "/admin/davstore/media/trash/restore/", restore, page=versions_url)
    assert answer.status_code == 302
    assert answer["Location"] == "/admin/davstore/media/versions/?path=docs%2Fnote.txt"
    assert read("docs/note.txt") == b"one"
    # What was there ("three") is a version now, beside "two!".
    sizes = sorted(e.size for e in _entries() if e.path == "docs/note.txt")
    assert sizes == [4, 5]
    empty = boss.get("/admin/davstore/media/versions/?path=docs/other.txt").content.decode()
    assert "No previous version is kept." in empty and "There is no file at" in empty


def test_restoring_a_referenced_file_makes_its_rows_valid_again(boss: Client) -> None:
    hero = Photo.objects.create(title="hero", image=save("photos/a.jpg", b"\x89PNG not really"))
    delete = "/admin/davstore/media/delete/?path=photos/a.jpg"
    integrity = "/admin/davstore/media/integrity/?min_age=0"
    with share_settings(ON_DELETE_REFERENCED="allow"):  # the delete goes to the trash
        answer = _post(boss, "/admin/davstore/media/delete/", {"path": "photos/a.jpg"}, delete)
        assert answer.status_code == 302 and not exists("photos/a.jpg")
        missing = boss.get(integrity).content.decode().split('id="davstore-missing"', 1)[1]
        assert 'data-path="photos/a.jpg"' in missing.split("</table>", 1)[0]
        (entry,) = _entries()
        answer = _post(boss, TRASH + "restore/", {"id": entry.id})
        assert _messages(answer) == ["Restored the file “photos/a.jpg”."]
        assert 'id="davstore-no-missing"' in boss.get(integrity).content.decode()
    hero.refresh_from_db()
    with hero.image.open("rb") as image:
        assert image.read() == b"\x89PNG not really"


def test_a_restore_that_would_break_an_image_row_is_a_message(boss: Client) -> None:
    """A restore over a file an ``ImageField`` row names obeys ``ON_REPLACE_REFERENCED``
    as any overwrite: from the Trash page and from the file's versions, content that is
    not an image is refused with a message naming the rows, nothing changed; an image is
    restored."""
    hero = Photo.objects.create(title="hero", image=save("photos/a.jpg", png(4, 3)))
    save("docs/n.txt", b"text")
    vfs = get_share("media").vfs
    with acting_as("ann", "webdav"):
        vfs.remove("docs/n.txt")
    (deleted,) = _entries()
    answer = _post(boss, TRASH + "restore/", {"id": deleted.id, "to": "photos/a.jpg"})
    assert answer.status_code == 302 and answer["Location"] == TRASH
    (message,) = _messages(answer)
    assert "not an image" in message and f"siteapp.Photo {hero.pk}" in message, message
    assert read("photos/a.jpg") == png(4, 3)
    assert _entries() == [deleted]
    # A version of the file, kept before any row named it.
    save("photos/b.jpg", b"not yet an image")
    with acting_as("ann", "webdav"):
        vfs.write_file("photos/b.jpg", png(5, 5))
    Photo.objects.create(title="second", image="photos/b.jpg")
    (version,) = [e for e in _entries() if e.path == "photos/b.jpg"]
    versions_url = "/admin/davstore/media/versions/?path=photos/b.jpg"
    restore = {"id": version.id, "back": "versions", "path": "photos/b.jpg"}
    answer = _post(boss, TRASH + "restore/", restore, page=versions_url)
    assert answer["Location"] == "/admin/davstore/media/versions/?path=photos%2Fb.jpg"
    (message,) = _messages(answer)
    assert "not an image" in message and "siteapp.Photo" in message, message
    assert read("photos/b.jpg") == png(5, 5)
    # An image version is restored over it.
    with acting_as("ann", "webdav"):
        vfs.write_file("photos/b.jpg", png(6, 2))
    image = next(e for e in _entries() if e.path == "photos/b.jpg" and e.size == len(png(5, 5)))
    restore = {"id": image.id, "back": "versions", "path": "photos/b.jpg"}
    answer = _post(boss, TRASH + "restore/", restore, page=versions_url)
    assert _messages(answer) == ["Restored the file “photos/b.jpg”."]
    assert read("photos/b.jpg") == png(5, 5)


def test_the_activity_page_filters_and_pages(boss: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    vfs = get_share("media").vfs
    vfs.mkdir("docs")
    vfs.mkdir("photos")
    with acting_as("ann", "webdav"):
        vfs.write_file("docs/a.txt", b"a")
        vfs.write_file("docs/a.txt", b"aa")
    with acting_as("bob", "fuse"):
        vfs.write_file("photos/b.jpg", b"b")
        vfs.rename("photos/b.jpg", "photos/c.jpg")
        vfs.remove("docs/a.txt")
    url = "/admin/davstore/media/activity/"
    html = boss.get(url).content.decode()
    records = html.split('id="davstore-activity"', 1)[1].split("</table>", 1)[0]
    shown = [part.split('"', 1)[0] for part in records.split('data-action="')[1:]]
    # Newest first.
    assert shown == ["deleted", "moved", "created", "modified", "created", *["folder_created"] * 2]
    assert "photos/b.jpg &rarr; photos/c.jpg" in records
    assert records.count('class="davstore-trash-entry"') == 2  # the version, the delete

    def actions(query: str) -> list[str]:
        page = boss.get(url + query).content.decode()
        body = page.split('id="davstore-activity"', 1)[1].split("</table>", 1)[0]
        return [part.split('"', 1)[0] for part in body.split('data-action="')[1:]]

    assert actions("?user=ann") == ["modified", "created"]
    assert actions("?action=created") == ["created", "created"]
    assert actions("?path=c.jpg") == ["moved"]  # the target counts
    assert actions("?user=bob&path=docs") == ["deleted"]
    monkeypatch.setattr("davstore.admin_views.PAGE_SIZE", 2)
    first = boss.get(url + "?user=bob").content.decode()
    assert "Page 1 of 2 (3 records)" in first
    assert 'href="/admin/davstore/media/activity/?user=bob&amp;page=2"' in first
    assert actions("?user=bob&page=2") == ["created"]


def test_the_files_page_links_to_the_trash_and_the_activity(boss: Client) -> None:
    html = boss.get("/admin/davstore/media/").content.decode()
    assert f'href="{TRASH}" class="davstore-button" id="davstore-trash-link"' in html
    activity = "/admin/davstore/media/activity/"
    assert f'href="{activity}" class="davstore-button" id="davstore-activity-link"' in html
    save("docs/x.txt", b"x")
    confirm = boss.get("/admin/davstore/media/delete/?path=docs/x.txt").content.decode()
    assert "It goes to the share's" in confirm and "This cannot be undone." not in confirm


def test_a_deleted_folder_is_not_downloaded_but_restored(boss: Client) -> None:
    save("docs/deep/one.txt", b"1")
    vfs = get_share("media").vfs
    with acting_as("ann", "webdav"):
        vfs.remove_tree("docs")
    (entry,) = _entries()
    html = boss.get(TRASH).content.decode()
    assert 'class="davstore-trash-download"' not in html and "docs/</td>" in html
    answer = boss.get(f"{TRASH}download/?id={entry.id}")
    assert answer.status_code == 302 and "restore it to see what it holds" in _messages(answer)[0]
    assert boss.get(f"{TRASH}download/?id=nope").status_code == 302
