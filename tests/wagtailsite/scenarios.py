"""The rows of issue 21's table, each run on the Wagtail test site in a process of its own:
``python -m tests.wagtailsite.scenarios NAME`` (settings: see the package docstring; the
database must be migrated). Exit status 0 when the scenario holds, else an AssertionError.

Every scenario builds the same site (an image, its rendition on an article page, a
document the page links, the reference index built), makes one change as a staff user
through davstore's WebDAV share (in-process server), a FUSE mount of the share (``manage.py
davstore mount``, a process of its own, as a site runs it) or the admin's Files page, then checks
that the page answers 200 with an image that loads and a document link that answers 200,
and that Wagtail's admin (image list, image and page edit views, document list) answers
200 -- or that the change was refused naming the rows.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django

RED = (200, 30, 30)
BLUE = (30, 30, 200)


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


class Site:
    """The site as a scenario sees it: its objects, a browser, an admin, a WebDAV client."""

    def __init__(self, dav: str) -> None:
        from django.contrib.auth.models import User
        from django.core.files.base import ContentFile
        from django.core.files.images import ImageFile
        from django.core.management import call_command
        from django.test import Client
        from wagtail.documents.models import Document
        from wagtail.images.models import Image
        from wagtail.models import Page

        from tests.wagtailsite.home.models import ArticlePage

        self.dav = dav
        self.user = User.objects.create_superuser("boss", password="pw")
        self.image = Image.objects.create(
            title="hero", file=ImageFile(io.BytesIO(jpeg(RED)), name="hero.jpg")
        )
        self.document = Document.objects.create(
            title="report", file=ContentFile(b"%PDF-1.4 a report", name="report.pdf")
        )
        home = Page.objects.get(depth=2)
        self.page = home.add_child(
            instance=ArticlePage(
                title="Article", slug="article", hero=self.image, document=self.document
            )
        )
        self.page.save_revision().publish()
        self.browser = Client()
        self.admin = Client()
        self.admin.force_login(self.user)
        self.check_page(RED)  # renders the rendition (and caches it)
        call_command("davstore", "index", stdout=io.StringIO())
        self.image.refresh_from_db()
        assert self.image.file.name == "original_images/hero.jpg", self.image.file.name
        assert self.document.file.name == "documents/report.pdf", self.document.file.name

    # -- the changes -----------------------------------------------------------------

    def webdav(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        return requests.request(
            method, f"{self.dav}/media/{path}", auth=("boss", "pw"), timeout=30, **kwargs
        )

    def move(self, source: str, target: str) -> Any:
        return self.webdav("MOVE", source, headers={"Destination": f"{self.dav}/media/{target}"})

    # -- the checks ------------------------------------------------------------------

    def fetch(self, url: str) -> bytes:
        if url.startswith("/"):
            answer = self.browser.get(url)
            assert answer.status_code == 200, f"{url}: {answer.status_code}"
            return b"".join(answer.streaming_content) if answer.streaming else answer.content
        import requests

        got = requests.get(url, timeout=30)
        assert got.status_code == 200, f"{url}: {got.status_code}"
        return got.content

    def check_page(self, colour: tuple[int, int, int] | None = None) -> str:
        """The page answers 200, its image loads (of ``colour``), its document link works."""
        from PIL import Image as PILImage

        answer = self.browser.get("/article/")
        assert answer.status_code == 200, f"the page: {answer.status_code}"
        html = answer.content.decode()
        found = re.search(r'<img[^>]*src="([^"]+)"', html)
        assert found, f"no image on the page: {html}"
        src = found.group(1).replace("&amp;", "&")
        assert "not-found" not in src, f"a broken image: {src}"
        picture = PILImage.open(io.BytesIO(self.fetch(src)))
        picture.load()
        if colour is not None:
            pixel = picture.convert("RGB").getpixel((picture.width // 2, picture.height // 2))
            assert all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True)), (
                f"the page shows {pixel}, not {colour}"
            )
        link = re.search(r'<a class="document" href="([^"]+)"', html)
        assert link, f"no document link on the page: {html}"
        assert self.fetch(link.group(1)) == b"%PDF-1.4 a report"
        return src

    def check_admin(self) -> None:
        """Wagtail's admin answers 200 on the image list, the image, the page, the documents."""
        for url in (
            "/cms/images/",
            f"/cms/images/{self.image.pk}/",
            f"/cms/pages/{self.page.pk}/edit/",
            "/cms/documents/",
            f"/cms/documents/edit/{self.document.pk}/",
        ):
            answer = self.admin.get(url)
            assert answer.status_code == 200, f"{url}: {answer.status_code}"

    def check_all(self, colour: tuple[int, int, int] | None = RED) -> None:
        self.check_page(colour)
        self.check_admin()


def refused_naming(answer: Any, label: str) -> list[dict[str, str]]:
    assert answer.status_code == 403, f"{answer.status_code}: {answer.text[:300]}"
    body = ET.fromstring(answer.content)
    (referenced,) = body
    rows = [dict(row.attrib) for row in referenced]
    assert rows and all(r["model"] == label for r in rows), rows
    return rows


# -- the scenarios ----------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Site], None]] = {}


def scenario(function: Callable[[Site], None]) -> Callable[[Site], None]:
    SCENARIOS[function.__name__] = function
    return function


@scenario
def move_image(site: Site) -> None:
    answer = site.move("original_images/hero.jpg", "original_images/hero-2.jpg")
    assert answer.status_code == 201, answer.status_code
    site.image.refresh_from_db()
    assert site.image.file.name == "original_images/hero-2.jpg", site.image.file.name
    site.check_all()


@scenario
def move_renditions_folder(site: Site) -> None:
    before = site.check_page()
    answer = site.move("images", "renditions")
    assert answer.status_code == 201, answer.status_code
    rendition = site.image.renditions.get()
    assert rendition.file.name.startswith("renditions/"), rendition.file.name
    after = site.check_page(RED)  # not the cached rendition naming the old folder
    assert after != before and "renditions/" in after, (before, after)
    site.check_admin()


@scenario
def delete_image(site: Site) -> None:
    rows = refused_naming(site.webdav("DELETE", "original_images/hero.jpg"), "wagtailimages.Image")
    assert rows[0]["pk"] == str(site.image.pk), rows
    site.check_all()


@scenario
def delete_document(site: Site) -> None:
    rows = refused_naming(site.webdav("DELETE", "documents/report.pdf"), "wagtaildocs.Document")
    assert rows[0]["pk"] == str(site.document.pk), rows
    site.check_all()


@scenario
def delete_renditions_folder(site: Site) -> None:
    refused_naming(site.webdav("DELETE", "images"), "wagtailimages.Rendition")
    site.check_all()


@scenario
def admin_rename_image(site: Site) -> None:
    answer = site.admin.post(
        "/django-admin/davstore/media/rename/",
        {"path": "original_images/hero.jpg", "name": "renamed.jpg"},
    )
    assert answer.status_code == 302, answer.status_code
    site.image.refresh_from_db()
    assert site.image.file.name == "original_images/renamed.jpg", site.image.file.name
    site.check_all()


@scenario
def admin_delete_image(site: Site) -> None:
    page = site.admin.get("/django-admin/davstore/media/delete/?path=original_images/hero.jpg")
    assert page.status_code == 200
    html = page.content.decode()
    assert "would leave the following objects naming a missing file" in html, html
    assert ">hero</a>" in html, html
    answer = site.admin.post(
        "/django-admin/davstore/media/delete/", {"path": "original_images/hero.jpg"}
    )
    assert answer.status_code == 302
    from django.contrib.messages import get_messages

    (message,) = [str(m) for m in get_messages(answer.wsgi_request)]
    assert f"wagtailimages.Image {site.image.pk} (file)" in message, message
    site.check_all()


@scenario
def replaced_signal_deletes_renditions(site: Site) -> None:
    """The receiver alone: new content at the image's name (written through the Storage,
    which no guard sees) and ``file_replaced`` as the guard sends it after a PUT: the page
    shows the new picture."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from davstore.shares import get_share
    from davstore.signals import file_replaced
    from davstore.site.guard import index_for

    share = get_share("media")
    before = site.image.renditions.get()
    default_storage.delete("original_images/hero.jpg")
    saved = default_storage.save("original_images/hero.jpg", ContentFile(jpeg(BLUE)))
    assert saved == "original_images/hero.jpg", saved
    site.check_page(RED)  # stale: what issue 21 saw, until the signal
    index = index_for(share)
    assert index is not None
    refs = index.all_under("original_images/hero.jpg", folder=False)
    file_replaced.send(
        sender=share,
        share="media",
        path="original_images/hero.jpg",
        references=refs,
        user=site.user,
        origin="webdav",
    )
    assert not site.image.renditions.filter(pk=before.pk).exists()
    site.check_all(BLUE)


@scenario
def put_text_over_image(site: Site) -> None:
    """Needs the replace policy (guardplus): text over a referenced image is refused."""
    answer = site.webdav("PUT", "original_images/hero.jpg", data=b"not a picture at all")
    assert answer.status_code == 415, answer.status_code
    site.check_all()


@scenario
def put_jpeg_over_image(site: Site) -> None:
    """Needs the replace policy (guardplus), which sends file_replaced: the page shows the
    new picture, its renditions made again."""
    answer = site.webdav("PUT", "original_images/hero.jpg", data=jpeg(BLUE, (400, 300)))
    assert answer.status_code in (200, 204), answer.status_code
    site.image.refresh_from_db()
    assert (site.image.width, site.image.height) == (400, 300), (site.image.width,)
    site.check_all(BLUE)


@contextlib.contextmanager
def fuse_mount() -> Iterator[str]:
    """The share mounted by ``manage.py davstore mount media`` in a process of its own (the
    site's settings, so the guard and the Wagtail receiver run there); yields the folder."""
    from django.conf import settings

    from davstore.testing.fuse import force_unmount, is_mounted

    mountpoint = os.path.join(os.path.dirname(settings.MEDIA_ROOT), "mnt")
    os.makedirs(mountpoint, exist_ok=True)
    log = open(mountpoint + ".log", "wb")  # noqa: SIM115 (closed below)
    command = [sys.executable, "-m", "django", "davstore", "mount", "media", mountpoint]
    process = subprocess.Popen(
        [*command, "--foreground"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not is_mounted(Path(mountpoint)):
            assert process.poll() is None, Path(mountpoint + ".log").read_text()
            assert time.monotonic() < deadline, "the mount did not show in 60 s"
            time.sleep(0.1)
        yield mountpoint
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        force_unmount(Path(mountpoint))  # also a mount whose process died
        log.close()


def refused_by_the_mount(error: OSError, code: int = errno.EACCES) -> None:
    assert error.errno == code, error


@scenario
def fuse_move_image(site: Site) -> None:
    with fuse_mount() as mnt:
        os.rename(f"{mnt}/original_images/hero.jpg", f"{mnt}/original_images/hero-2.jpg")
    site.image.refresh_from_db()
    assert site.image.file.name == "original_images/hero-2.jpg", site.image.file.name
    site.check_all()


@scenario
def fuse_delete_image(site: Site) -> None:
    with fuse_mount() as mnt:
        try:
            os.remove(f"{mnt}/original_images/hero.jpg")
        except OSError as error:
            refused_by_the_mount(error)
        else:
            raise AssertionError("rm of a referenced image was not refused")
        assert os.path.exists(f"{mnt}/original_images/hero.jpg")
    site.check_all()


@scenario
def fuse_delete_renditions_folder(site: Site) -> None:
    with fuse_mount() as mnt:
        try:
            shutil.rmtree(f"{mnt}/images")
        except OSError as error:
            refused_by_the_mount(error)
        else:
            raise AssertionError("rm -r of the renditions folder was not refused")
    site.check_all()


@scenario
def fuse_text_over_image(site: Site) -> None:
    with fuse_mount() as mnt:
        try:
            with open(f"{mnt}/original_images/hero.jpg", "wb") as file:
                file.write(b"not a picture at all")
        except OSError as error:
            refused_by_the_mount(error, errno.EINVAL)
        else:
            raise AssertionError("text over a referenced image was not refused")
    site.check_all()


@scenario
def fuse_jpeg_over_image(site: Site) -> None:
    """The mount's process deletes the renditions (the receiver); the site's process sees
    the new picture through the renditions cache they share (a file cache here, Redis or
    memcached on a production site)."""
    with fuse_mount() as mnt, open(f"{mnt}/original_images/hero.jpg", "wb") as file:
        file.write(jpeg(BLUE, (400, 300)))
    site.image.refresh_from_db()
    assert (site.image.width, site.image.height) == (400, 300), (site.image.width,)
    site.check_all(BLUE)


# -- the Files section in Wagtail's admin (issue 24, item 2) -------------------------------


def wagtail_user(name: str, *, staff: bool = False) -> Any:
    """A user of Wagtail's admin (the "Editors" group: ``wagtailadmin.access_admin``)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user(name, password="pw", is_staff=staff)
    user.groups.add(Group.objects.get(name="Editors"))
    client = Client()
    client.force_login(user)
    return client


def sidebar_items(html: str) -> list[dict[str, Any]]:
    """The menu items of Wagtail's sidebar (rendered by its script from this JSON)."""
    import html as entities
    import json

    found = re.search(r'<script[^>]*id="wagtail-sidebar-props"[^>]*>(.*?)</script>', html, re.S)
    assert found, "no sidebar in the page"
    props = json.loads(entities.unescape(found.group(1)))
    items: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("_type") == "wagtail.sidebar.LinkMenuItem":
                items.append(value["_args"][0])
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(props)
    return items


@scenario
def wagtail_files_menu(site: Site) -> None:
    """The menu item shows for users who may read a share, and only for them."""
    from django.test import Client

    for client in (site.admin, wagtail_user("staffer", staff=True)):
        home = client.get("/cms/")
        assert home.status_code == 200, home.status_code
        files = [i for i in sidebar_items(home.content.decode()) if i["name"] == "davstore-files"]
        assert files and files[0]["label"] == "Files", sidebar_items(home.content.decode())
        assert files[0]["url"] == "/cms/davstore/", files
        assert client.get(files[0]["url"]).status_code == 200
    # A Wagtail editor the share's rules do not name: no item, and no pages.
    editor = wagtail_user("editor")
    home = editor.get("/cms/")
    assert home.status_code == 200
    names = [i["name"] for i in sidebar_items(home.content.decode())]
    assert "davstore-files" not in names and "images" in names, names
    # Refused as Wagtail refuses (back to its home page, with its message); the page's
    # script, which says it is one, gets a 403.
    for url in ("/cms/davstore/", "/cms/davstore/media/", "/cms/davstore/media/preview/?path=x"):
        answer = editor.get(url)
        assert answer.status_code == 302 and answer["Location"] == "/cms/", url
        assert "permission" in editor.get("/cms/").content.decode(), url
    answer = editor.post("/cms/davstore/media/mkdir/", {"name": "x"})
    assert answer.status_code == 302 and answer["Location"] == "/cms/"
    script = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
    answer = editor.post("/cms/davstore/media/upload/", {"relative": "x"}, headers=script)
    assert answer.status_code == 403
    # Nobody logged in: Wagtail's login page.
    answer = Client().get("/cms/davstore/media/")
    assert answer.status_code == 302 and answer["Location"].startswith("/cms/login/"), answer
    assert not site.image.file.storage.exists("x")


@scenario
def wagtail_files_pages(site: Site) -> None:
    """The Files pages inside Wagtail's admin: the same views and rules as Django's."""
    from django.contrib.auth.models import User
    from django.contrib.messages import get_messages
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="boss"))
    index = client.get("/cms/davstore/")
    html = index.content.decode()
    assert index.status_code == 200 and 'id="davstore-shares"' in html
    assert 'id="wagtail-sidebar"' in html and "admin/davstore/" not in html.split("<main")[1]
    page = client.get("/cms/davstore/media/", {"path": "original_images"})
    html = page.content.decode()
    assert page.status_code == 200, page.status_code
    assert 'id="wagtail-sidebar"' in html and "davstore-in-wagtail" in html
    assert '<a href="/cms/">Home</a>' in html and 'href="/cms/davstore/"' in html
    assert 'data-path="original_images/hero.jpg"' in html
    assert 'src="/cms/davstore/media/thumbnail/?path=original_images/hero.jpg&amp;v=' in html
    assert "Used by: 1" in html  # the guard's column, as in Django's admin
    assert 'src="/static/davstore/files.js"' in html
    thumb = client.get("/cms/davstore/media/thumbnail/", {"path": "original_images/hero.jpg"})
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    preview = client.get("/cms/davstore/media/preview/", {"path": "original_images/hero.jpg"})
    assert preview.status_code == 200
    assert (
        'src="/cms/davstore/media/inline/?path=original_images/hero.jpg"'
        in preview.content.decode()
    )

    # Every other page of the section, in Wagtail's furniture too.
    for url, says in (
        ("/cms/davstore/media/rename/?path=original_images/hero.jpg", "davstore-new-name"),
        ("/cms/davstore/media/delete/?path=original_images/hero.jpg", "would leave"),
        ("/cms/davstore/media/integrity/", "Missing files"),
    ):
        other = client.get(url)
        html = other.content.decode()
        assert other.status_code == 200 and says in html and 'id="wagtail-sidebar"' in html, url
        assert ">hero</a>" in html or "integrity" in url, url  # the rows, linked
    # The trash, a file's versions and the activity log too.
    for url, says in (
        ("/cms/davstore/media/trash/", 'id="davstore-trash-summary"'),
        ("/cms/davstore/media/versions/?path=original_images/hero.jpg", 'id="davstore-versions"'),
        ("/cms/davstore/media/activity/", 'id="davstore-activity"'),
    ):
        other = client.get(url)
        html = other.content.decode()
        assert other.status_code == 200 and says in html and 'id="wagtail-sidebar"' in html, url

    token = client.cookies["csrftoken"].value
    assert client.post("/cms/davstore/media/mkdir/", {"name": "no-token"}).status_code == 403
    made = client.post(
        "/cms/davstore/media/mkdir/", {"name": "notes", "csrfmiddlewaretoken": token}
    )
    assert made.status_code == 302 and made["Location"] == "/cms/davstore/media/", made
    sent = client.post(
        "/cms/davstore/media/upload/",
        {
            "folder": "notes",
            "files": SimpleUploadedFile("a.txt", b"A"),
            "csrfmiddlewaretoken": token,
        },
    )
    assert sent["Location"] == "/cms/davstore/media/?path=notes"
    listed = client.get(sent["Location"]).content.decode()
    assert "Uploaded “a.txt”." in listed and 'data-path="notes/a.txt"' in listed  # its message
    dropped = client.post(
        "/cms/davstore/media/upload/",
        {"folder": "notes", "relative": "trip", "files": SimpleUploadedFile("b.txt", b"B")},
        headers={"Accept": "application/json", "X-CSRFToken": token},
    )
    assert dropped.json() == {"uploaded": ["notes/trip/b.txt"], "errors": []}
    storage = site.image.file.storage
    assert storage.open("notes/trip/b.txt").read() == b"B"

    # The site guard's rules, as in Django's admin: a rename rewrites the image's row, a
    # delete of a referenced file is refused naming it.
    renamed = client.post(
        "/cms/davstore/media/rename/",
        {"path": "original_images/hero.jpg", "name": "renamed.jpg", "csrfmiddlewaretoken": token},
    )
    assert renamed.status_code == 302
    site.image.refresh_from_db()
    assert site.image.file.name == "original_images/renamed.jpg", site.image.file.name
    refused = client.post(
        "/cms/davstore/media/delete/",
        {"path": "original_images/renamed.jpg", "csrfmiddlewaretoken": token},
    )
    said = [str(m) for m in get_messages(refused.wsgi_request)]
    assert "Renamed “hero.jpg” to “renamed.jpg”." in said, said
    assert any(f"wagtailimages.Image {site.image.pk} (file)" in m for m in said), said
    assert storage.exists("original_images/renamed.jpg")
    site.check_all()


@contextlib.contextmanager
def dav_server() -> Iterator[str]:
    from davstore.shares import get_share
    from davstore.shares_app import SharesApp
    from tests.webdav.serving import serve_in_thread

    app = SharesApp([get_share("media")], auth_cache_ttl=60, realm="davstore")
    try:
        with serve_in_thread(app) as (url, _stop):
            yield url
    finally:
        app.close()


def main(name: str) -> None:
    django.setup()
    with dav_server() as url:
        SCENARIOS[name](Site(url))
    print(f"{name}: ok")


if __name__ == "__main__":
    main(sys.argv[1])
