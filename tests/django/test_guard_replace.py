"""The site guard's replace policy (``ON_REPLACE_REFERENCED``): new content at a name an
``ImageField`` row names must be an image (else refused, the old content kept), the row's
``width_field``/``height_field`` follow it, and every replacement of a referenced file sends
``davstore.signals.file_replaced`` with the rows. Through the VFS, WebDAV (in-process) and
the admin's Files page; the mount's side is in test_guard_mount.py.
"""

from __future__ import annotations

import asyncio
import errno
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.messages import get_messages
from django.test import Client
from django.test.utils import override_settings
from PIL import Image

from davstore.frontends.webdav import create_app
from davstore.shares import get_share
from davstore.shares_app import SharesApp
from davstore.signals import file_replaced
from davstore.site.references import FileRef
from davstore.vfs import acting_as
from davstore.vfs.policy import RefusedContent
from davstore.vfs.trash import trash_of
from tests.django.siteapp.models import Document, Picture
from tests.django.test_guard import _clean, site_settings
from tests.webdav.serving import serve_in_thread


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def media(tmp_path: Path, migrated: None) -> Iterator[Path]:
    folder = tmp_path / "media"
    (folder / "pictures").mkdir(parents=True)
    (folder / "docs").mkdir()
    _clean()
    with override_settings(**site_settings(folder)):
        yield folder
    _clean()


def picture(media: Path, name: str = "pictures/a.png") -> Picture:
    (media / name).write_bytes(png(4, 3))
    return Picture.objects.create(image=name)


@pytest.fixture
def replaced() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    file_replaced.connect(receiver, dispatch_uid="test-replaced")
    try:
        yield calls
    finally:
        file_replaced.disconnect(dispatch_uid="test-replaced")


def refused_content(call: Callable[[], object]) -> RefusedContent:
    with pytest.raises(RefusedContent) as caught:
        call()
    assert caught.value.errno == errno.EINVAL
    return caught.value


# -- the VFS ----------------------------------------------------------------------------


def test_text_over_a_referenced_image_is_refused_and_the_old_content_stays(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    row = picture(media)
    before = (media / "pictures" / "a.png").read_bytes()
    vfs = get_share("media").vfs
    with acting_as("alice", "webdav"):
        error = refused_content(lambda: vfs.put_file("pictures/a.png", b"not an image"))
    assert error.count == 1
    assert error.references == [
        {"model": "siteapp.Picture", "pk": str(row.pk), "field": "image", "name": "pictures/a.png"}
    ]
    assert "not an image" in error.reason
    assert (media / "pictures" / "a.png").read_bytes() == before
    assert replaced == []
    # A write handle's commit (what a mount's close does) is refused the same way.
    handle = vfs.open_write("pictures/a.png")
    handle.write(b"still not an image")
    refused_content(handle.close)
    assert (media / "pictures" / "a.png").read_bytes() == before
    assert vfs.read_small("pictures/a.png", 1 << 16)[1] == before  # type: ignore[index]
    assert list((media / "pictures").iterdir()) == [media / "pictures" / "a.png"]


def test_an_image_over_a_referenced_image_updates_the_size_and_signals(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    row = picture(media)
    assert (row.width, row.height) == (4, 3)
    share = get_share("media")
    with acting_as("alice", "webdav"):
        share.vfs.put_file("pictures/a.png", png(10, 7))
    row.refresh_from_db()
    assert (row.width, row.height) == (10, 7)
    assert (media / "pictures" / "a.png").read_bytes() == png(10, 7)
    (call,) = replaced
    assert call["sender"] is share
    assert call["share"] == "media" and call["path"] == "pictures/a.png"
    assert call["references"] == [
        FileRef("siteapp.Picture", str(row.pk), "image", "pictures/a.png")
    ]
    assert call["user"] == "alice" and call["origin"] == "webdav"


def test_a_copy_or_move_over_a_referenced_image_is_checked_too(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    row = picture(media)
    (media / "docs" / "notes.txt").write_bytes(b"text")
    (media / "pictures" / "big.png").write_bytes(png(20, 5))
    vfs = get_share("media").vfs
    refused_content(lambda: vfs.copy("docs/notes.txt", "pictures/a.png"))
    refused_content(lambda: vfs.rename("docs/notes.txt", "pictures/a.png"))
    assert (media / "docs" / "notes.txt").exists()
    vfs.rename("pictures/big.png", "pictures/a.png")
    row.refresh_from_db()
    assert (row.image.name, row.width, row.height) == ("pictures/a.png", 20, 5)
    assert [c["path"] for c in replaced] == ["pictures/a.png"]


def test_a_new_file_where_the_row_names_a_missing_one_is_checked(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    row = Picture.objects.create(image="pictures/gone.png", width=1, height=1)
    vfs = get_share("media").vfs
    refused_content(lambda: vfs.put_file("pictures/gone.png", b"text"))
    assert not (media / "pictures" / "gone.png").exists()
    vfs.put_file("pictures/gone.png", png(2, 9))
    row.refresh_from_db()
    assert (row.width, row.height) == (2, 9)
    assert len(replaced) == 1


def test_any_overwrite_of_a_referenced_file_signals_and_plain_files_take_anything(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    (media / "docs" / "x.pdf").write_bytes(b"%PDF-1")
    doc = Document.objects.create(file="docs/x.pdf")
    (media / "docs" / "free.txt").write_bytes(b"nobody's")
    vfs = get_share("media").vfs
    vfs.put_file("docs/x.pdf", b"%PDF-2")
    vfs.put_file("docs/free.txt", b"still nobody's")  # no row: no signal
    (call,) = replaced
    assert call["path"] == "docs/x.pdf"
    assert call["references"] == [FileRef("siteapp.Document", str(doc.pk), "file", "docs/x.pdf")]
    assert (media / "docs" / "x.pdf").read_bytes() == b"%PDF-2"


def test_allow_takes_any_content_and_still_signals(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    with override_settings(**site_settings(media, ON_REPLACE_REFERENCED="allow")):
        row = picture(media)
        get_share("media").vfs.put_file("pictures/a.png", b"text, allowed")
        assert (media / "pictures" / "a.png").read_bytes() == b"text, allowed"
        assert Picture.objects.filter(pk=row.pk, width=4, height=3).exists()  # size untouched
        assert [c["path"] for c in replaced] == ["pictures/a.png"]


# -- WebDAV and the admin ---------------------------------------------------------------


@pytest.fixture
def served(media: Path, make_user: Callable[..., Any]) -> Iterator[str]:
    make_user("editor", password="pw", is_staff=True)
    app = SharesApp([get_share("media")], auth_cache_ttl=60, realm="davstore")
    try:
        with serve_in_thread(app) as (url, _stop):
            yield url
    finally:
        app.close()


def test_webdav_put_of_text_over_a_referenced_image_is_415(
    served: str, media: Path, replaced: list[dict[str, Any]]
) -> None:
    row = picture(media)
    before = (media / "pictures" / "a.png").read_bytes()
    url = f"{served}/media/pictures/a.png"
    for body in (b"text", b"x" * (1 << 20)):  # the small-PUT path and the streamed one
        answer = requests.put(url, data=body, auth=("editor", "pw"), timeout=10)
        assert answer.status_code == 415, answer.text
        (referenced,) = ET.fromstring(answer.content)
        assert referenced.tag == "{urn:x-davstore:}referenced"
        assert (media / "pictures" / "a.png").read_bytes() == before
    answer = requests.put(url, data=png(6, 6), auth=("editor", "pw"), timeout=10)
    assert answer.status_code in (200, 204)
    row.refresh_from_db()
    assert (row.width, row.height) == (6, 6)
    (call,) = replaced
    assert call["user"].get_username() == "editor" and call["origin"] == "webdav"


def test_admin_upload_of_text_over_a_referenced_image_shows_a_message(
    media: Path, make_user: Callable[..., Any]
) -> None:
    picture(media)
    before = (media / "pictures" / "a.png").read_bytes()
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    upload = io.BytesIO(b"text")
    upload.name = "a.png"
    answer = client.post(
        "/admin/davstore/media/upload/",
        {"folder": "pictures", "replace": "on", "files": [upload]},
    )
    assert answer.status_code == 302
    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert "not an image" in message and "siteapp.Picture" in message
    assert (media / "pictures" / "a.png").read_bytes() == before


def test_the_guard_works_from_an_event_loops_thread(media: Path) -> None:
    """The HTTP server runs small PUTs on its event loop's thread, where Django refuses
    synchronous queries: the guard's work goes to its own thread from there."""
    picture(media)
    vfs = get_share("media").vfs

    async def put() -> None:
        vfs.put_file("pictures/a.png", b"text")

    with pytest.raises(RefusedContent):
        asyncio.run(put())
    assert (media / "pictures" / "a.png").read_bytes() == png(4, 3)


def test_small_puts_answered_on_the_event_loop_obey_the_guard_and_the_trash(
    media: Path, tmp_path: Path
) -> None:
    """A review said the server's inline small PUTs (answered on its event loop's thread,
    davstore/frontends/webdav/fast/put.py) skip the policies: they go through
    ``VFS.put_file`` like the others, so the guard refuses text over a referenced image
    (the guard's work on its own thread) and the trash keeps what an overwrite replaced."""
    picture(media)
    (media / "pictures" / "plain.txt").write_bytes(b"old")
    vfs = get_share("media").vfs
    app = create_app(vfs, users={"editor": "pw"}, state_dir=tmp_path / "served")
    assert app.inline and app.plain_put.enabled  # small PUTs are answered on the loop
    try:
        with serve_in_thread(app) as (url, _stop):
            answer = requests.put(
                f"{url}/pictures/a.png", data=b"text", auth=("editor", "pw"), timeout=10
            )
            assert answer.status_code == 415, answer.text
            answer = requests.put(
                f"{url}/pictures/plain.txt", data=b"new", auth=("editor", "pw"), timeout=10
            )
            assert answer.status_code == 204, answer.text
    finally:
        app.close()
    assert (media / "pictures" / "a.png").read_bytes() == png(4, 3)
    trash = trash_of(vfs)
    assert trash is not None
    (kept,) = trash.versions("pictures/plain.txt")
    got = trash.store.read_small(trash._content(kept.id), 100)
    assert got is not None and got[1] == b"old"


# -- a restore from the trash -----------------------------------------------------------


def test_a_restore_over_a_referenced_image_obeys_the_replace_policy(
    media: Path, replaced: list[dict[str, Any]]
) -> None:
    """A review found ``Trash.restore`` moving content over a file with the trash's own
    store calls, past the guard: a deleted text file restored onto a referenced image
    replaced it. A restore over a file is an overwrite like any other: refused (the rows
    named, nothing changed, the entry still in the trash) when it would break the row;
    accepted with the row's size following the content and ``file_replaced`` sent. A
    restore to a new name is not a replacement."""
    row = picture(media)
    (media / "docs" / "notes.txt").write_bytes(b"text")
    vfs = get_share("media").vfs
    trash = trash_of(vfs)
    assert trash is not None
    with acting_as("ann", "webdav"):
        vfs.remove("docs/notes.txt")
    (deleted,) = trash.entries()
    with acting_as("bob", "admin"):
        error = refused_content(lambda: trash.restore(deleted.id, to="pictures/a.png"))
    assert error.references == [
        {"model": "siteapp.Picture", "pk": str(row.pk), "field": "image", "name": "pictures/a.png"}
    ]
    assert "not an image" in error.reason
    assert (media / "pictures" / "a.png").read_bytes() == png(4, 3)
    assert trash.entries() == [deleted] and replaced == []
    assert Picture.objects.filter(pk=row.pk, width=4, height=3).exists()
    # An image is accepted: the row follows it, the signal is sent, and what it replaced
    # is kept as a version.
    with acting_as("ann", "webdav"):
        vfs.put_file("pictures/a.png", png(10, 7))
    (version,) = trash.versions("pictures/a.png")
    replaced.clear()
    with acting_as("bob", "admin"):
        restored = trash.restore(version.id)
    assert restored.path == "pictures/a.png"
    assert (media / "pictures" / "a.png").read_bytes() == png(4, 3)
    row.refresh_from_db()
    assert (row.width, row.height) == (4, 3)
    (call,) = replaced
    assert call["path"] == "pictures/a.png" and call["user"] == "bob"
    assert call["references"] == [
        FileRef("siteapp.Picture", str(row.pk), "image", "pictures/a.png")
    ]
    (kept,) = trash.versions("pictures/a.png")
    got = trash.store.read_small(trash._content(kept.id), 1 << 16)
    assert got is not None and got[1] == png(10, 7)
    assert (kept.user, kept.state) == ("bob", "done")
    # To a new name: nothing is replaced, nothing refused.
    trash.restore(deleted.id, to="docs/again.txt")
    assert (media / "docs" / "again.txt").read_bytes() == b"text"
    assert [e.kind for e in trash.entries()] == ["replaced"]


def test_webdav_copy_of_a_folder_onto_one_names_each_member_the_guard_refused(
    served: str, media: Path
) -> None:
    picture(media)
    kept = picture(media, "pictures/kept.png")
    before = (media / "pictures" / "a.png").read_bytes()
    (media / "pictures" / "extra.txt").write_bytes(b"no row names it")
    (media / "upload").mkdir()
    (media / "upload" / "a.png").write_bytes(b"text, not an image")
    (media / "upload" / "c.txt").write_bytes(b"c")
    answer = requests.request(
        "COPY",
        f"{served}/media/upload",
        headers={"Destination": f"{served}/media/pictures", "Overwrite": "T"},
        auth=("editor", "pw"),
        timeout=30,
    )
    assert answer.status_code == 207, answer.text
    failed = {
        r.findtext("{DAV:}href"): r.findtext("{DAV:}status", "").split()[1]
        for r in ET.fromstring(answer.content).iter("{DAV:}response")
    }
    assert failed == {"/media/upload/a.png": "415", "/media/pictures/kept.png": "403"}
    assert (media / "pictures" / "a.png").read_bytes() == before  # refused: kept
    assert (media / "pictures" / "kept.png").exists()  # a row names it: not removed
    assert Picture.objects.filter(pk=kept.pk).exists()
    assert (media / "pictures" / "c.txt").read_bytes() == b"c"  # the rest was copied
    assert not (media / "pictures" / "extra.txt").exists()
