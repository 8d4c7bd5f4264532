"""The site guard in the admin's Files page and ``manage.py davstore check``: "Used by: N"
per file, confirmations listing the objects, the integrity page and the command, on local
disk and on S3 (moto's server).

The site: tests.django.siteapp (Photo.image, Document.file in ``STORAGES["site"]``, shared
as ``media``), its models registered in the admin so rows link to their change pages.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from davstore.models import IndexState, Reference
from davstore.shares import get_share
from davstore.site.guard import index_for
from davstore.vfs.trash import trash_of
from tests.django.siteapp.models import Document, Photo
from tests.django.test_guard import site_settings
from tests.s3.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    new_bucket,
    running_moto,
)

STORES = ["filesystem", "s3"]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


def _clean() -> None:
    Photo.objects.all().delete()
    Document.objects.all().delete()
    Reference.objects.all().delete()
    IndexState.objects.all().delete()


@pytest.fixture(params=STORES)
def site(request: pytest.FixtureRequest, tmp_path: Path, migrated: None) -> Iterator[str]:
    """The site's settings with ``STORAGES["site"]`` on local disk or on S3."""
    values = site_settings(tmp_path / "media")
    if request.param == "s3":
        server: MotoServer = request.getfixturevalue("moto")
        values["STORAGES"]["site"] = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": new_bucket(server),
                "endpoint_url": server.url,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "region_name": "us-east-1",
                "location": "media",
                "file_overwrite": True,
            },
        }
    _clean()
    with override_settings(**values):
        yield str(request.param)
    _clean()


def save(name: str, data: bytes = b"\x89PNG not really") -> str:
    saved = storages["site"].save(name, ContentFile(data))
    assert saved == name
    return saved


def photo(name: str, title: str) -> Photo:
    return Photo.objects.create(title=title, image=save(name))


@pytest.fixture
def admin_client(site: str, make_user: Callable[..., Any]) -> Client:
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def used_by_cell(html: str, path: str) -> str:
    row = html.split(f'data-path="{path}"', 1)[1].split("</tr>", 1)[0]
    return row.split('class="davstore-used-by"', 1)[1].split("</td>", 1)[0]


# -- "Used by: N" on the listing --------------------------------------------------------


@pytest.mark.parametrize("built", [False, True], ids=["fields", "index"])
def test_listing_shows_used_by_with_links_in_one_query_per_page(
    admin_client: Client, built: bool
) -> None:
    hero = photo("photos/a.jpg", "hero")
    again = Photo.objects.create(title="again", image="photos/a.jpg")
    doc = Document.objects.create(file=save("photos/b.pdf", b"%PDF"))
    for number in range(30):
        save(f"photos/free{number:02}.jpg", b"x")
    index = index_for(get_share("media"))
    assert index is not None
    if built:
        index.rebuild()
    admin_client.get("/admin/davstore/media/?path=photos")  # warm: sessions, the listing
    with CaptureQueriesContext(connection) as queries:
        answer = admin_client.get("/admin/davstore/media/?path=photos")
    assert answer.status_code == 200
    html = answer.content.decode()
    cell = used_by_cell(html, "photos/a.jpg")
    assert "Used by: 2" in cell
    assert f'href="/admin/siteapp/photo/{hero.pk}/change/"' in cell
    assert f'href="/admin/siteapp/photo/{again.pk}/change/"' in cell
    cell = used_by_cell(html, "photos/b.pdf")
    assert "Used by: 1" in cell and f'href="/admin/siteapp/document/{doc.pk}/change/"' in cell
    assert "Used by: 0" in used_by_cell(html, "photos/free07.jpg")
    guard = [
        q["sql"]
        for q in queries.captured_queries
        if "davstore_reference" in q["sql"] or "siteapp_" in q["sql"]
    ]
    # One query for the page's 32 files with the index (the rows, ranked and counted; the
    # links need no object); without it a count and the rows for each guarded field.
    assert len(guard) == (1 if built else 2 * len(index.fields)), guard


def test_listing_without_the_index_table_still_shows(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo("photos/a.jpg", "hero")

    def unmigrated(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("no such table: davstore_reference")

    monkeypatch.setattr("davstore.admin_views.usage", unmigrated)
    answer = admin_client.get("/admin/davstore/media/?path=photos")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert 'data-path="photos/a.jpg"' in html and "davstore-used-by" not in html
    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert "run `manage.py migrate`" in message


def test_listing_links_to_the_integrity_page(admin_client: Client) -> None:
    photo("photos/a.jpg", "hero")
    html = admin_client.get("/admin/davstore/media/").content.decode()
    assert 'href="/admin/davstore/media/integrity/"' in html


# -- the confirmations ------------------------------------------------------------------


def test_delete_confirmation_lists_the_objects_and_offers_no_button(admin_client: Client) -> None:
    hero = photo("photos/a.jpg", "hero")
    answer = admin_client.get("/admin/davstore/media/delete/?path=photos/a.jpg")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "would leave the following objects naming a missing file" in html
    assert f'Photo: <a href="/admin/siteapp/photo/{hero.pk}/change/">hero</a>' in html
    assert 'id="davstore-delete"' not in html  # nothing to confirm: the share refuses
    # Posted anyway: refused with a message naming the row, the file kept.
    answer = admin_client.post("/admin/davstore/media/delete/", {"path": "photos/a.jpg"})
    assert answer.status_code == 302
    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert "used by 1 row" in message and f"siteapp.Photo {hero.pk} (image)" in message
    assert storages["site"].exists("photos/a.jpg")
    # A file nobody names: the plain confirmation.
    save("photos/free.jpg")
    html = admin_client.get("/admin/davstore/media/delete/?path=photos/free.jpg").content.decode()
    assert 'class="davstore-related"' not in html and 'id="davstore-delete"' in html


def test_delete_confirmation_of_a_folder_lists_20_and_counts(admin_client: Client) -> None:
    for number in range(23):
        photo(f"photos/deep/{number:02}.jpg", f"p{number:02}")
    html = admin_client.get("/admin/davstore/media/delete/?path=photos").content.decode()
    listed = html.split('class="davstore-related"', 1)[1].split("</ul>", 1)[0]
    assert listed.count('<a href="/admin/siteapp/photo/') == 20
    assert "and 3 more" in html


def test_delete_confirmation_when_the_share_allows_it_warns(admin_client: Client) -> None:
    davstore = settings.DAVSTORE
    media = {**davstore["SHARES"]["media"], "ON_DELETE_REFERENCED": "allow"}
    hero = photo("photos/a.jpg", "hero")
    with override_settings(DAVSTORE={**davstore, "SHARES": {"media": media}}):
        html = admin_client.get("/admin/davstore/media/delete/?path=photos/a.jpg")
    html = html.content.decode()
    assert "will name a missing file" in html
    assert f'href="/admin/siteapp/photo/{hero.pk}/change/"' in html
    assert 'id="davstore-delete"' in html


def test_rename_confirmation_lists_the_objects_it_rewrites(admin_client: Client) -> None:
    hero = photo("photos/a.jpg", "hero")
    html = admin_client.get("/admin/davstore/media/rename/?path=photos/a.jpg").content.decode()
    assert "will be changed to name the new name" in html
    assert f'Photo: <a href="/admin/siteapp/photo/{hero.pk}/change/">hero</a>' in html
    answer = admin_client.post(
        "/admin/davstore/media/rename/", {"path": "photos/a.jpg", "name": "b.jpg"}
    )
    assert answer.status_code == 302
    hero.refresh_from_db()
    assert hero.image.name == "photos/b.jpg" and storages["site"].exists("photos/b.jpg")


# -- the integrity page and the command -------------------------------------------------


def _broken_site() -> tuple[Photo, Photo]:
    kept = photo("photos/a.jpg", "kept")
    gone = Photo.objects.create(title="gone", image="photos/gone.jpg")  # no such file
    save("photos/orphan.jpg", b"nobody")
    save("other/deep/orphan2.txt", b"nobody either")
    return kept, gone


def test_integrity_page_lists_missing_files_and_orphans(admin_client: Client) -> None:
    _kept, gone = _broken_site()
    answer = admin_client.get("/admin/davstore/media/integrity/?min_age=0")
    assert answer.status_code == 200
    html = answer.content.decode()
    missing = html.split('id="davstore-missing"', 1)[1].split("</table>", 1)[0]
    assert 'data-path="photos/gone.jpg"' in missing
    assert f'href="/admin/siteapp/photo/{gone.pk}/change/" class="davstore-open"' in missing
    assert "photos/a.jpg" not in missing
    orphans = html.split('id="davstore-orphans"', 1)[1].split("</table>", 1)[0]
    assert 'data-path="photos/orphan.jpg"' in orphans
    assert 'data-path="other/deep/orphan2.txt"' in orphans
    assert "photos/a.jpg" not in orphans
    assert 'href="/admin/davstore/media/delete/?path=photos/orphan.jpg"' in orphans
    assert 'value="photos/orphan.jpg" checked' in orphans  # ticked to go to the trash
    assert 'id="davstore-trash-orphans-button"' in html


def test_integrity_page_leaves_young_files_alone(admin_client: Client) -> None:
    _broken_site()
    html = admin_client.get("/admin/davstore/media/integrity/").content.decode()  # one day
    assert 'id="davstore-orphans"' not in html and 'id="davstore-no-orphans"' in html
    assert 'data-path="photos/gone.jpg"' in html  # missing files have no age
    answer = admin_client.get("/admin/davstore/media/integrity/?min_age=soon")
    assert answer.status_code == 200
    assert "a number of seconds" in answer.content.decode()


def test_check_command_reports_and_exits_1(site: str) -> None:
    _kept, gone = _broken_site()
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("davstore", "check", "--share", "media", "--min-age", "0", stdout=out)
    assert caught.value.returncode == 1
    text = out.getvalue()
    assert "media: 1 missing, 2 orphans older than 0 s" in text
    assert f"missing photos/gone.jpg: named by siteapp.Photo {gone.pk} (image)" in text
    assert f"/admin/siteapp/photo/{gone.pk}/change/" in text
    assert "orphan  photos/orphan.jpg (6 bytes)" in text


def test_check_command_json(site: str) -> None:
    _kept, gone = _broken_site()
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("davstore", "check", "--min-age", "0", "--json", stdout=out)
    (report,) = json.loads(out.getvalue())["shares"]
    assert report["share"] == "media" and report["complete"] is True
    assert [o["path"] for o in report["orphans"]] == ["other/deep/orphan2.txt", "photos/orphan.jpg"]
    assert report["missing"] == [
        {
            "model": "siteapp.Photo",
            "pk": str(gone.pk),
            "field": "image",
            "name": "photos/gone.jpg",
            "url": f"/admin/siteapp/photo/{gone.pk}/change/",
        }
    ]


def test_check_command_is_bounded_by_limit(site: str) -> None:
    _broken_site()
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("davstore", "check", "--min-age", "0", "--limit", "2", "--json", stdout=out)
    (report,) = json.loads(out.getvalue())["shares"]
    assert report["complete"] is False and report["scanned"] == 2
    # The rows' own files are still looked up: the missing one is found, the kept one not.
    assert [m["name"] for m in report["missing"]] == ["photos/gone.jpg"]


def test_check_command_on_a_clean_share_exits_0(site: str) -> None:
    photo("photos/a.jpg", "kept")
    out = io.StringIO()
    call_command("davstore", "check", "--min-age", "0", stdout=out)
    assert "media: 0 missing, 0 orphans" in out.getvalue()


# -- orphans go to the trash, never away --------------------------------------------------


def _trashed() -> list[tuple[str, str, str | None, str | None]]:
    trash = trash_of(get_share("media").vfs)
    assert trash is not None
    return [(e.path, e.kind, e.user, e.origin) for e in trash.entries()]


def test_integrity_page_moves_the_ticked_orphans_to_the_trash(admin_client: Client) -> None:
    _broken_site()
    answer = admin_client.post(
        "/admin/davstore/media/integrity/trash-orphans/",
        # photos/a.jpg is no orphan (a row names it): posted anyway, it stays.
        {"min_age": "0", "path": ["photos/orphan.jpg", "photos/a.jpg"]},
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/admin/davstore/media/integrity/?min_age=0"
    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert message == "Moved 1 orphan to the trash: “photos/orphan.jpg”."
    assert not storages["site"].exists("photos/orphan.jpg")
    assert storages["site"].exists("photos/a.jpg")
    assert storages["site"].exists("other/deep/orphan2.txt")  # not ticked
    assert _trashed() == [("photos/orphan.jpg", "deleted", "boss", "admin")]
    html = admin_client.get("/admin/davstore/media/integrity/?min_age=0").content.decode()
    orphans = html.split('id="davstore-orphans"', 1)[1].split("</table>", 1)[0]
    assert 'data-path="photos/orphan.jpg"' not in orphans
    nothing = admin_client.post("/admin/davstore/media/integrity/trash-orphans/", {"min_age": "0"})
    assert [str(m) for m in get_messages(nothing.wsgi_request)] == [
        "Tick the orphans to move to the trash."
    ]


def test_check_command_trash_orphans_moves_them_into_the_trash(site: str) -> None:
    _kept, _gone = _broken_site()
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:  # the missing file is still missing
        call_command(
            "davstore", "check", "--min-age", "0", "--trash-orphans", stdout=out, stderr=out
        )
    assert caught.value.returncode == 1
    text = out.getvalue()
    assert "trashed photos/orphan.jpg" in text and "trashed other/deep/orphan2.txt" in text
    assert "media: 2 orphans moved to the trash" in text
    assert not storages["site"].exists("photos/orphan.jpg")
    assert sorted(_trashed()) == [
        ("other/deep/orphan2.txt", "deleted", None, "check"),
        ("photos/orphan.jpg", "deleted", None, "check"),
    ]
    again = io.StringIO()
    with pytest.raises(CommandError):
        call_command("davstore", "check", "--min-age", "0", "--json", stdout=again)
    (report,) = json.loads(again.getvalue())["shares"]
    assert report["orphans"] == [] and len(report["missing"]) == 1


def test_check_command_trash_orphans_json_and_a_clean_exit(site: str) -> None:
    photo("photos/a.jpg", "kept")
    save("photos/orphan.jpg", b"nobody")
    out = io.StringIO()
    call_command("davstore", "check", "--min-age", "0", "--trash-orphans", "--json", stdout=out)
    (report,) = json.loads(out.getvalue())["shares"]
    assert report["trashed"] == ["photos/orphan.jpg"] and report["not_trashed"] == []


def test_without_a_trash_orphans_are_never_deleted(admin_client: Client) -> None:
    _broken_site()
    davstore = settings.DAVSTORE
    media = {**davstore["SHARES"]["media"], "TRASH": False}
    with override_settings(DAVSTORE={**davstore, "SHARES": {"media": media}}):
        html = admin_client.get("/admin/davstore/media/integrity/?min_age=0").content.decode()
        assert "This share has no trash" in html
        assert 'id="davstore-trash-orphans-button"' not in html
        answer = admin_client.post(
            "/admin/davstore/media/integrity/trash-orphans/",
            {"min_age": "0", "path": ["photos/orphan.jpg"]},
        )
        (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
        assert "orphans are never deleted outright" in message
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError):
            call_command(
                "davstore", "check", "--min-age", "0", "--trash-orphans", stdout=out, stderr=err
            )
        assert "media: this share has no trash" in err.getvalue()
    assert storages["site"].exists("photos/orphan.jpg")
    assert storages["site"].exists("other/deep/orphan2.txt")
