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
