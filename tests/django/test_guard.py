"""The site guard through the VFS, WebDAV (in-process) and the admin's Files page: a
person's delete of a file a row names is refused with the rows, a move rewrites them.

The site: tests.django.siteapp (Photo.image, Document.file and Document.attachment in
``STORAGES["site"]``, a FileSystemStorage in a temporary folder, shared as ``media``).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.test import Client
from django.test.utils import override_settings

from davstore.errors import PermissionDenied, StoreError
from davstore.models import IndexState, Reference
from davstore.shares import get_share
from davstore.shares_app import SharesApp
from davstore.site.checks import check_reference_index
from davstore.site.guard import index_for
from davstore.site.references import ReferenceIndex
from davstore.vfs import acting_as
from davstore.vfs.policy import Kind, Refused
from tests.django.siteapp.models import Document, Photo, Picture
from tests.webdav.serving import serve_in_thread

REPO = Path(__file__).resolve().parents[2]


def site_settings(media: Path, **share: Any) -> dict[str, Any]:
    return {
        "ROOT_URLCONF": "tests.django.admin_urls",
        "ALLOWED_HOSTS": ["testserver"],
        "STATIC_URL": "/static/",
        "STORAGES": {
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "site": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(media), "base_url": "/media/"},
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        "DAVSTORE": {
            "SHARES": {"media": {"STORAGE": "site", "WRITE": ["staff"], **share}},
            "STATE_DIR": str(media.parent / "state"),
        },
    }


def _clean() -> None:
    Photo.objects.all().delete()
    Document.objects.all().delete()
    Picture.objects.all().delete()
    Reference.objects.all().delete()
    IndexState.objects.all().delete()


@pytest.fixture
def media(tmp_path: Path, migrated: None) -> Iterator[Path]:
    folder = tmp_path / "media"
    (folder / "photos").mkdir(parents=True)
    (folder / "docs").mkdir()
    _clean()
    with override_settings(**site_settings(folder)):
        yield folder
    _clean()


def photo(media: Path, name: str, title: str = "") -> Photo:
    (media / name).parent.mkdir(parents=True, exist_ok=True)
    (media / name).write_bytes(b"\x89PNG not really")
    return Photo.objects.create(title=title or name, image=name)


def refused(call: Callable[[], object]) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    assert caught.value.errno == errno.EACCES
    assert isinstance(caught.value, PermissionDenied)
    return caught.value


# -- the VFS: one rule for every door ---------------------------------------------------


def test_delete_of_a_referenced_file_is_refused_with_the_rows(media: Path) -> None:
    kept = photo(media, "photos/a.jpg", "hero")
    (media / "photos" / "free.jpg").write_bytes(b"x")
    vfs = get_share("media").vfs
    with acting_as("alice", "webdav"):
        error = refused(lambda: vfs.remove("photos/a.jpg"))
    assert (media / "photos" / "a.jpg").exists()
    assert error.count == 1
    assert error.references == [
        {
            "model": "siteapp.Photo",
            "pk": str(kept.pk),
            "field": "image",
            "name": "photos/a.jpg",
            "url": f"/admin/siteapp/photo/{kept.pk}/change/",  # tests.django.siteapp.admin
        }
    ]
    assert "siteapp.Photo" in error.reason and "used by 1 row" in error.reason
    vfs.remove("photos/free.jpg")  # nobody names it
    assert not (media / "photos" / "free.jpg").exists()


def test_delete_of_a_folder_holding_referenced_files_names_20_and_counts(
    media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(25):
        photo(media, f"photos/deep/{number:02}.jpg")
    vfs = get_share("media").vfs
    with caplog.at_level(logging.WARNING, logger="davstore.site"):
        error = refused(lambda: vfs.remove_tree("photos"))
    assert error.count == 25 and len(error.references) == 20
    assert "and 5 more" in error.reason
    assert len(list((media / "photos" / "deep").iterdir())) == 25
    lines = [r for r in caplog.records if r.name == "davstore.site"]
    assert len(lines) == 1 and "refused to delete 'photos'" in lines[0].getMessage()


def test_a_folder_of_12000_entries_holding_one_referenced_file_is_refused_whole(
    media: Path,
) -> None:
    for folder in range(12):
        (media / "photos" / f"{folder:02}").mkdir()
        for number in range(1000):
            (media / "photos" / f"{folder:02}" / f"{number:04}.jpg").write_bytes(b"x")
    photo(media, "photos/07/used.jpg")
    vfs = get_share("media").vfs
    error = refused(lambda: vfs.remove_tree("photos"))
    assert error.count == 1
    assert sum(len(list(f.iterdir())) for f in (media / "photos").iterdir()) == 12_001
    (media / "photos" / "07" / "used.jpg").unlink()
    Photo.objects.all().delete()
    vfs.remove_tree("photos")  # nothing refers to it now: the whole tree goes
    assert not (media / "photos").exists()


def test_move_of_a_referenced_file_rewrites_the_rows(media: Path) -> None:
    one = photo(media, "photos/a.jpg")
    doc = Document.objects.create(file="docs/x.pdf", attachment="photos/a.jpg")
    vfs = get_share("media").vfs
    vfs.rename("photos/a.jpg", "photos/b.jpg")
    assert (media / "photos" / "b.jpg").exists()
    one.refresh_from_db()
    doc.refresh_from_db()
    assert one.image.name == "photos/b.jpg"
    assert doc.attachment.name == "photos/b.jpg" and doc.file.name == "docs/x.pdf"


def test_move_of_a_folder_rewrites_every_row_under_it(media: Path) -> None:
    rows = [photo(media, f"photos/{name}") for name in ("a.jpg", "sub/b.jpg")]
    other = photo(media, "photosX/c.jpg")  # a sibling whose name starts the same
    get_share("media").vfs.rename("photos", "pictures")
    assert [Photo.objects.get(pk=p.pk).image.name for p in rows] == [
        "pictures/a.jpg",
        "pictures/sub/b.jpg",
    ]
    assert Photo.objects.get(pk=other.pk).image.name == "photosX/c.jpg"
    assert (media / "pictures" / "sub" / "b.jpg").exists()


def test_move_to_a_name_longer_than_max_length_is_refused(media: Path) -> None:
    (media / "docs" / "x.pdf").write_bytes(b"%PDF")
    doc = Document.objects.create(file="docs/x.pdf")
    vfs = get_share("media").vfs
    error = refused(lambda: vfs.rename("docs/x.pdf", "docs/" + "y" * 40 + ".pdf"))
    assert "max_length (40)" in error.reason
    assert (media / "docs" / "x.pdf").exists()
    doc.refresh_from_db()
    assert doc.file.name == "docs/x.pdf"


def test_a_failed_store_move_leaves_the_rows(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = photo(media, "photos/a.jpg")
    vfs = get_share("media").vfs

    def broken(source: str, target: str) -> None:
        raise StoreError(source, "the store failed")

    monkeypatch.setattr(vfs.store, "rename", broken)
    with pytest.raises(StoreError):
        vfs.rename("photos/a.jpg", "photos/b.jpg")
    one.refresh_from_db()
    assert one.image.name == "photos/a.jpg"


def test_a_failed_commit_moves_the_file_back(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = photo(media, "photos/a.jpg")
    vfs = get_share("media").vfs
    from django.db import connections

    def failing(self: Any) -> None:
        raise DatabaseError("the commit failed")

    monkeypatch.setattr(type(connections["default"]), "commit", failing)
    with pytest.raises(DatabaseError):
        vfs.rename("photos/a.jpg", "photos/b.jpg")
    monkeypatch.undo()
    assert (media / "photos" / "a.jpg").exists()
    assert not (media / "photos" / "b.jpg").exists()
    one.refresh_from_db()
    assert one.image.name == "photos/a.jpg"


@pytest.mark.parametrize(
    ("options", "delete_ok", "move"),
    [
        ({"ON_DELETE_REFERENCED": "allow"}, True, "rewritten"),
        ({"ON_MOVE_REFERENCED": "refuse"}, False, "refused"),
        ({"ON_MOVE_REFERENCED": "allow"}, False, "left"),
    ],
)
def test_each_policy_per_share(
    media: Path, options: dict[str, str], delete_ok: bool, move: str
) -> None:
    with override_settings(**site_settings(media, **options)):
        one = photo(media, "photos/a.jpg")
        photo(media, "photos/gone.jpg")
        vfs = get_share("media").vfs
        if move == "refused":
            refused(lambda: vfs.rename("photos/a.jpg", "photos/b.jpg"))
            assert (media / "photos" / "a.jpg").exists()
        else:
            vfs.rename("photos/a.jpg", "photos/b.jpg")
            one.refresh_from_db()
            expected = "photos/b.jpg" if move == "rewritten" else "photos/a.jpg"
            assert one.image.name == expected
        if delete_ok:
            vfs.remove("photos/gone.jpg")
            assert not (media / "photos" / "gone.jpg").exists()
        else:
            refused(lambda: vfs.remove("photos/gone.jpg"))


def test_fields_match_by_alias_object_or_class_and_options(media: Path) -> None:
    settings = site_settings(media)
    settings["STORAGES"]["other"] = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
    settings["STORAGES"]["same"] = settings["STORAGES"]["site"]  # same class and options
    settings["DAVSTORE"]["SHARES"] = {
        "main": {"STORAGE": "default"},  # Document.elsewhere: default_storage
        "other": {"STORAGE": "other"},
        "same": {"STORAGE": "same"},
    }
    with override_settings(**settings):
        main = index_for(get_share("main"))
        assert main is not None and [f.label for f in main.fields] == ["siteapp.Document.elsewhere"]
        assert index_for(get_share("other")) is None
        # No guard: the trash (on by default, davstore.vfs.trash) is its only policy.
        policies = get_share("other").vfs._policies
        assert {kind: [type(p).__name__ for p in chain] for kind, chain in policies.items()} == {
            kind: ["Trash"] for kind in (Kind.DELETE, Kind.REPLACE, Kind.MOVE)
        }
        same = index_for(get_share("same"))
        assert same is not None and len(same.fields) == 4


# -- the index --------------------------------------------------------------------------


def test_the_index_follows_saves_and_deletes_once_built(media: Path) -> None:
    index = index_for(get_share("media"))
    assert index is not None
    assert {f.label for f in index.fields} == {
        "siteapp.Photo.image",
        "siteapp.Document.file",
        "siteapp.Document.attachment",
        "siteapp.Picture.image",
    }
    first = photo(media, "photos/a.jpg")
    assert not index.is_built()
    assert check_reference_index()[0].id == "davstore.W001"
    out = io.StringIO()
    call_command("davstore", "index", "media", stdout=out)
    assert out.getvalue() == "media: 1 references in 4 fields\n"
    assert index.is_built() and check_reference_index() == []
    assert index.find("photos/a.jpg").count == 1
    second = photo(media, "photos/b.jpg")  # post_save
    assert index.find("photos", folder=True).count == 2
    second.image = "photos/c.jpg"
    second.save()
    assert index.find("photos/b.jpg").count == 0 and index.find("photos/c.jpg").count == 1
    first.delete()  # post_delete
    assert index.find("photos/a.jpg").count == 0
    Photo.objects.bulk_create([Photo(image="photos/d.jpg")])  # no signal
    (warning,) = check_reference_index()
    assert "siteapp.Photo.image: 2 rows name files, the index holds 1" in warning.msg
    assert warning.id == "davstore.W001"


def test_the_index_table_answers_as_the_fields_do(media: Path) -> None:
    for name in ("photos/a.jpg", "photos/sub/b.jpg", "photosX/c.jpg"):
        photo(media, name)
    index = index_for(get_share("media"))
    assert index is not None
    direct = [index.find(n, folder=f).count for n, f in (("photos", True), ("photos/a.jpg", False))]
    index.rebuild()
    table = [index.find(n, folder=f).count for n, f in (("photos", True), ("photos/a.jpg", False))]
    assert direct == table == [2, 1]
    get_share("media").vfs.rename("photos", "pictures")
    assert index.find("pictures", folder=True).count == 2
    assert index.find("photos", folder=True).count == 0


# -- what no row names, remembered ------------------------------------------------------


@pytest.fixture
def built(media: Path, monkeypatch: pytest.MonkeyPatch) -> ReferenceIndex:
    """The share's index, built, its clock stopped: what it remembers expires never, so
    only the announcements of changes make it forget."""
    index = index_for(get_share("media"))
    assert index is not None
    index.rebuild()
    now = time.monotonic()
    monkeypatch.setattr(index, "_clock", lambda: now, raising=False)
    return index


@pytest.fixture
def index_queries() -> Iterator[list[str]]:
    """The statements run on the test database's connection that read the index table
    (the guard's check runs them on the driver's own cursor: traced there)."""
    statements: list[str] = []
    connection = connections["default"]
    connection.ensure_connection()
    raw = connection.connection

    def trace(sql: str) -> None:
        if Reference._meta.db_table in sql:
            statements.append(sql)

    raw.set_trace_callback(trace)
    try:
        yield statements
    finally:
        raw.set_trace_callback(None)


def test_puts_of_files_no_row_names_ask_the_index_once_per_folder(
    built: ReferenceIndex, media: Path, index_queries: list[str]
) -> None:
    photo(media, "photos/a.jpg")  # the index has rows, none under docs/
    vfs = get_share("media").vfs
    vfs.put_file("docs/first.txt", b"1")
    asked = len(index_queries)
    assert asked >= 1
    vfs.put_file("docs/second.txt", b"2")  # a new name, a folder known empty
    vfs.put_file("docs/first.txt", b"again")  # an overwrite
    vfs.rename("docs/second.txt", "docs/third.txt")
    vfs.remove("docs/third.txt")
    assert len(index_queries) == asked
    vfs.put_file("photos/b.jpg", b"3")  # a folder rows name files in: the name is asked
    vfs.put_file("photos/b.jpg", b"4")  # ... once
    assert len(index_queries) > asked
    asked = len(index_queries)
    vfs.put_file("photos/b.jpg", b"5")
    assert len(index_queries) == asked
    assert refused(lambda: vfs.remove("photos/a.jpg")).count == 1  # a used name: asked


def test_a_row_saved_here_after_a_no_is_seen_at_once(built: ReferenceIndex, media: Path) -> None:
    vfs = get_share("media").vfs
    vfs.put_file("docs/new.txt", b"x")
    assert built.known_unused("docs/new.txt") and built.known_unused("docs", folder=True)
    Document.objects.create(file="docs/new.txt")  # post_save
    assert not built.known_unused("docs/new.txt")
    assert refused(lambda: vfs.remove("docs/new.txt")).count == 1
    assert refused(lambda: vfs.remove_tree("docs")).count == 1
    vfs.rename("docs/new.txt", "docs/moved.txt")  # the rows follow; so does the memory
    assert Document.objects.get().file.name == "docs/moved.txt"
    assert refused(lambda: vfs.remove("docs/moved.txt")).count == 1


def test_an_answer_read_in_a_transaction_is_not_kept(built: ReferenceIndex, media: Path) -> None:
    with transaction.atomic():
        assert not built.used("docs/new.txt")
    assert not built.known_unused("docs/new.txt")
    assert not built.used("docs/new.txt")
    assert built.known_unused("docs/new.txt")


OTHER_PROCESS = """
import json, os, sys
import django
from django.conf import settings
site = json.loads(os.environ["SITE"])
settings.configure(
    USE_TZ=True,
    SECRET_KEY="another process",
    INSTALLED_APPS=[
        "django.contrib.auth", "django.contrib.contenttypes", "davstore", "tests.django.siteapp"
    ],
    **site,
)
django.setup()
from tests.django.siteapp.models import Document
Document.objects.create(file=sys.argv[1])
"""


def test_a_row_saved_by_another_process_after_a_no_is_seen_at_once(
    built: ReferenceIndex, media: Path
) -> None:
    """The site's own process (here: a ``python`` started for the purpose, with the same
    database and state folder) saves a row naming a file this process remembers no row
    naming: its announcement makes this one forget (the clock is stopped: no expiry)."""
    vfs = get_share("media").vfs
    vfs.put_file("docs/new.txt", b"x")
    assert built.known_unused("docs/new.txt")
    site = {
        "DATABASES": settings.DATABASES,
        "STORAGES": settings.STORAGES,
        "DAVSTORE": settings.DAVSTORE,
    }
    env = {**os.environ, "SITE": json.dumps(site), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, "docs/new.txt"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Document.objects.filter(file="docs/new.txt").exists()
    assert not built.known_unused("docs/new.txt")
    assert refused(lambda: vfs.remove("docs/new.txt")).count == 1


# -- WebDAV -----------------------------------------------------------------------------


@pytest.fixture
def served(media: Path, make_user: Callable[..., Any]) -> Iterator[str]:
    make_user("editor", password="pw", is_staff=True)
    app = SharesApp([get_share("media")], auth_cache_ttl=60, realm="davstore")
    try:
        with serve_in_thread(app) as (url, _stop):
            yield url
    finally:
        app.close()


def test_webdav_delete_of_a_referenced_file_is_403_with_the_rows(served: str, media: Path) -> None:
    one = photo(media, "photos/a.jpg")
    answer = requests.delete(f"{served}/media/photos/a.jpg", auth=("editor", "pw"), timeout=10)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/xml")
    body = ET.fromstring(answer.content)
    assert body.tag == "{DAV:}error"
    (referenced,) = body
    assert referenced.tag == "{urn:x-davstore:}referenced" and referenced.get("count") == "1"
    (row,) = referenced
    assert row.attrib == {
        "model": "siteapp.Photo",
        "pk": str(one.pk),
        "field": "image",
        "name": "photos/a.jpg",
        "url": f"/admin/siteapp/photo/{one.pk}/change/",
    }
    assert (media / "photos" / "a.jpg").exists()


def test_webdav_move_rewrites_the_rows(served: str, media: Path) -> None:
    one = photo(media, "photos/a.jpg")
    answer = requests.request(
        "MOVE",
        f"{served}/media/photos/a.jpg",
        headers={"Destination": f"{served}/media/photos/renamed.jpg"},
        auth=("editor", "pw"),
        timeout=10,
    )
    assert answer.status_code == 201
    one.refresh_from_db()
    assert one.image.name == "photos/renamed.jpg"
    assert (media / "photos" / "renamed.jpg").exists()


# -- the admin's Files page -------------------------------------------------------------


@pytest.fixture
def admin_client(media: Path, make_user: Callable[..., Any]) -> Client:
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def test_admin_delete_of_a_referenced_file_shows_the_rows(
    admin_client: Client, media: Path
) -> None:
    photo(media, "photos/a.jpg", "hero")
    answer = admin_client.post("/admin/davstore/media/delete/", {"path": "photos/a.jpg"})
    assert answer.status_code == 302
    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert "used by 1 row" in message and "siteapp.Photo" in message
    assert (media / "photos" / "a.jpg").exists()


def test_admin_rename_rewrites_the_rows(admin_client: Client, media: Path) -> None:
    one = photo(media, "photos/a.jpg")
    answer = admin_client.post(
        "/admin/davstore/media/rename/", {"path": "photos/a.jpg", "name": "b.jpg"}
    )
    assert answer.status_code == 302
    one.refresh_from_db()
    assert one.image.name == "photos/b.jpg"


def test_a_move_rewrites_the_index_of_its_storage_only(media: Path) -> None:
    settings = site_settings(media)
    settings["DAVSTORE"]["SHARES"]["main"] = {"STORAGE": "default"}  # Document.elsewhere
    with override_settings(**settings):
        (media / "docs" / "x.pdf").write_bytes(b"%PDF")
        doc = Document.objects.create(file="docs/x.pdf", elsewhere="docs/x.pdf")
        media_index, main_index = index_for(get_share("media")), index_for(get_share("main"))
        assert media_index is not None and main_index is not None
        media_index.rebuild()
        main_index.rebuild()
        get_share("media").vfs.rename("docs/x.pdf", "docs/y.pdf")
        doc.refresh_from_db()
        assert (doc.file.name, doc.elsewhere.name) == ("docs/y.pdf", "docs/x.pdf")
        assert main_index.find("docs/x.pdf").count == 1  # another Storage's file: untouched
        assert media_index.find("docs/y.pdf").count == 1


# -- with the trash ---------------------------------------------------------------------


def _trash_of_media() -> Any:
    from davstore.serving.trash_command import trash_of

    trash = trash_of(get_share("media").vfs)
    assert trash is not None
    return trash


def test_a_referenced_file_is_refused_before_it_is_trashed(media: Path) -> None:
    photo(media, "photos/a.jpg", "hero")
    (media / "photos" / "free.jpg").write_bytes(b"x")
    vfs = get_share("media").vfs
    refused(lambda: vfs.remove("photos/a.jpg"))
    refused(lambda: vfs.remove_tree("photos"))
    trash = _trash_of_media()
    assert trash.entries() == []  # the guard runs first: nothing reached the trash
    with acting_as("alice", "webdav"):
        vfs.remove("photos/free.jpg")
    assert [(e.path, e.user, e.origin) for e in trash.entries()] == [
        ("photos/free.jpg", "alice", "webdav")
    ]


def test_an_admin_delete_goes_to_the_trash_and_restores(admin_client: Client, media: Path) -> None:
    (media / "docs" / "note.txt").write_bytes(b"note")
    answer = admin_client.post("/admin/davstore/media/delete/", {"path": "docs/note.txt"})
    assert answer.status_code == 302
    assert not (media / "docs" / "note.txt").exists()
    (entry,) = _trash_of_media().entries()
    assert (entry.path, entry.user, entry.origin, entry.size) == (
        "docs/note.txt",
        "boss",
        "admin",
        4,
    )
    out = io.StringIO()
    call_command("davstore", "trash", "restore", entry.id, stdout=out)
    assert (media / "docs" / "note.txt").read_bytes() == b"note"
    assert entry.id in out.getvalue()
    listed = io.StringIO()
    call_command("davstore", "trash", "list", "--json", stdout=listed)
    assert json.loads(listed.getvalue()) == []
    shown = io.StringIO()
    call_command("davstore", "activity", "--json", stdout=shown)
    (record,) = [r for r in json.loads(shown.getvalue()) if r["action"] == "deleted"]
    assert (record["path"], record["user"], record["origin"], record["trash_id"]) == (
        "docs/note.txt",
        "boss",
        "admin",
        entry.id,
    )
