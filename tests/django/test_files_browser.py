"""The admin's Files page as a file manager, in headless Chromium at a laptop's size (1280x800)
and a phone's (390x844), on the example project (tests/django/test_admin_browser.py's
``site`` and ``browser``): nothing scrolls sideways, every action is on screen and is the
element a click there lands on, pictures have thumbnails, dates hold on one line, and each
page looks like its reference picture.

Reference pictures: ``tests/django/screenshots/*.png``, and for Django 4.2 (whose admin
looks otherwise) ``tests/django/screenshots/django-4.2/*.png``. A page that differs from its
picture by more than :data:`TOLERANCE` fails, and the new screenshot is left beside the
test's temporary folder (its path is in the message). After a change to the page that is
meant, look at the new screenshots and store them as the references::

    DAVSTORE_UPDATE_SCREENSHOTS=1 pytest tests/django/test_files_browser.py
    DAVSTORE_UPDATE_SCREENSHOTS=1 nox -s django-4.2 -- tests/django/test_files_browser.py

(``DAVSTORE_SCREENSHOT_DIR=/some/folder`` keeps a copy of every screenshot to look at.)
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from PIL import Image, ImageChops, ImageDraw
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.django.project import REPO
from tests.django.test_admin_browser import PASSWORD, USER, _free_port, _replaced, browser, site
from tests.django.wagtail import env as wagtail_env
from tests.django.wagtail import migrate

__all__ = ["browser", "site"]  # the fixtures, used by name

pytestmark = pytest.mark.slow

REFERENCES = Path(__file__).parent / "screenshots"
#: Django 4.2's admin draws its own pictures (other fonts, spacing and colours): the
#: references of that release are its own, beside the ones of the current release.
RELEASE_REFERENCES = REFERENCES / f"django-{django.VERSION[0]}.{django.VERSION[1]}"
SIZES = {"desktop": (1280, 800, False), "phone": (390, 844, True)}
#: A screenshot matches its reference when at most this share of its pixels differ by more
#: than :data:`PIXEL_DELTA` in a colour channel (anti-aliasing and font hinting move a few).
TOLERANCE = 0.01
PIXEL_DELTA = 48
#: Every file of the folder shown gets this time, so the pictures do not change with the day.
WHEN = 1_780_000_000  # 2026-05-28

_LAYOUT = """
const box = e => { const r = e.getBoundingClientRect();
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width,
          height: r.height}; };
const hit = e => { e.scrollIntoView({block: "center", inline: "nearest", behavior: "instant"});
  const r = e.getBoundingClientRect();
  const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {box: box(e), clickable: !!at && (at === e || e.contains(at) || at.contains(e)),
          text: (e.textContent || e.value || e.id || e.className).trim().slice(0, 40)}; };
const shown = e => !e.closest("form") || getComputedStyle(e.closest("form")).display !== "none";
const all = [...document.querySelectorAll(arguments[0] ||
  ".davstore td.actions a, .davstore-tools a, .davstore-toolbar input, .davstore-forms input," +
  ".davstore-forms label.davstore-choose, .davstore-table thead a, .davstore-pages a," +
  ".davstore-preview-actions a, .davstore-buttons a, .davstore-buttons input")]
  .filter(e => e.type !== "hidden" && e.id !== "davstore-folder-input");
const actions = all.filter(shown);
const measured = actions.map(hit);
window.scrollTo({top: 0, left: 0, behavior: "instant"});
const times = [...document.querySelectorAll(".davstore td.modified time")].map(t => {
  const r = t.getBoundingClientRect(); const lh = parseFloat(getComputedStyle(t).lineHeight)
    || parseFloat(getComputedStyle(t).fontSize) * 1.3;
  return {height: r.height, line: lh}; });
return {width: window.innerWidth, height: window.innerHeight,
        scrollWidth: document.documentElement.scrollWidth,
        bodyScrollWidth: document.body.scrollWidth, actions: measured, times: times,
        folded: all.length - actions.length};
"""


def _picture(colour: tuple[int, int, int], size: tuple[int, int], fmt: str) -> bytes:
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill="white")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _fill(media: Path) -> None:
    """The folder the pictures show: folders, pictures, a PDF, text, a long name."""
    gallery = media / "gallery"
    (gallery / "2026 spring").mkdir(parents=True)
    (gallery / "drafts").mkdir()
    (gallery / "beach.jpg").write_bytes(_picture((40, 110, 200), (640, 480), "JPEG"))
    (gallery / "forest.png").write_bytes(_picture((30, 140, 60), (300, 400), "PNG"))
    (gallery / "sunset.webp").write_bytes(_picture((230, 120, 40), (500, 300), "WEBP"))
    (gallery / "notes.txt").write_text("Shot list\n- beach at dawn\n- forest path\n" * 20)
    (gallery / "contract.pdf").write_bytes(_pdf())
    (
        gallery / "a-very-long-file-name-that-people-give-to-exports-2026-05-28-final-v2.csv"
    ).write_text("a,b\n1,2\n")
    for path in gallery.rglob("*"):
        os.utime(path, (WHEN, WHEN))
    os.utime(gallery, (WHEN, WHEN))


def _pdf() -> bytes:
    """A one-page PDF (Pillow writes it)."""
    out = io.BytesIO()
    Image.new("RGB", (200, 100), (250, 250, 250)).save(out, "PDF")
    return out.getvalue()


def _log_in(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/admin/login/?next=/admin/")
    driver.find_element(By.ID, "id_username").send_keys(USER)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: "/login/" not in d.current_url)


def _at(driver: WebDriver, size: str) -> None:
    width, height, mobile = SIZES[size]
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def _settle(driver: WebDriver) -> None:
    """Wait for the page's pictures (the thumbnails are made on their first request; the
    ones the browser would load when scrolled to are loaded now)."""
    driver.execute_script(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })"
    )
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return [...document.images].every(i => i.complete) && document.fonts.status"
            " === 'loaded'"
        )
    )


def _compare(shot: Path, name: str) -> None:
    """``shot`` against ``screenshots/NAME.png`` (see the module docstring)."""
    folder = RELEASE_REFERENCES if django.VERSION < (5, 0) else REFERENCES
    reference = folder / f"{name}.png"
    keep = os.environ.get("DAVSTORE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / f"{name}.png")
    if os.environ.get("DAVSTORE_UPDATE_SCREENSHOTS"):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, reference)
        return
    assert reference.exists(), f"no reference picture {reference}: see the module docstring"
    with Image.open(shot) as new, Image.open(reference) as old:
        assert new.size == old.size, (name, new.size, old.size)
        difference = ImageChops.difference(new.convert("RGB"), old.convert("RGB"))
        channels = difference.split()
        worst = ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2])
        histogram = worst.histogram()
    changed = sum(histogram[PIXEL_DELTA + 1 :])
    share = changed / (new.size[0] * new.size[1])
    assert share <= TOLERANCE, (
        f"{name}: {share:.2%} of the pixels differ from {reference} (new picture: {shot})"
    )


def _check_layout(driver: WebDriver, size: str, scope: str = "") -> dict[str, Any]:
    """The page at ``size`` (every action in ``scope``, a CSS selector, by default all of
    them): see the module docstring. ``folded``: how many are in a form shown only when
    its toolbar button is followed (on phones)."""
    width, height, _ = SIZES[size]
    layout: dict[str, Any] = driver.execute_script(_LAYOUT, scope)
    assert (layout["width"], layout["height"]) == (width, height)
    assert layout["scrollWidth"] <= width and layout["bodyScrollWidth"] <= width, layout
    assert layout["actions"], "no action found"
    for action in layout["actions"]:
        assert action["box"]["width"] > 0 and action["box"]["height"] > 0, action
        assert action["box"]["left"] >= 0 and action["box"]["right"] <= width + 0.5, action
        assert action["clickable"], action
    for time_box in layout["times"]:  # one line each
        assert time_box["height"] < 1.6 * time_box["line"], layout["times"]
    return layout


def _screenshot(driver: WebDriver, tmp_path: Path, name: str, *, top: bool = True) -> None:
    if top:  # every scrolled box back to its top (Wagtail's page scrolls in its <main>)
        driver.execute_script(
            "for (const e of [document.scrollingElement, ...document.querySelectorAll('*')])"
            " { if (e.scrollTop) e.scrollTo({top: 0, behavior: 'instant'}); }"
        )
    driver.execute_script("document.activeElement.blur()")
    _settle(driver)
    shot = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(shot))
    _compare(shot, name)


def test_the_files_page_fits_a_laptop_and_a_phone(
    browser: tuple[WebDriver, Path], site: tuple[str, Path], tmp_path: Path
) -> None:
    driver, _ = browser
    base, media = site
    _fill(media)
    _log_in(driver, base)
    for size in SIZES:
        _at(driver, size)
        driver.get(f"{base}/admin/davstore/media/?path=gallery")
        _settle(driver)
        layout = _check_layout(driver, size)
        texts = " ".join(a["text"] for a in layout["actions"])
        for action in ("Preview", "Download", "URL", "Rename", "Delete", "Upload", "Filter"):
            assert action in texts, (action, texts)
        # On a phone the two forms fold behind their toolbar buttons; following one
        # shows its form with every control on screen.
        assert (layout["folded"] > 0) == (size == "phone"), layout["folded"]
        for link, form in (("upload", "#davstore-upload"), ("mkdir", "#davstore-mkdir")):
            driver.find_element(By.ID, f"davstore-{link}-link").click()
            opened = _check_layout(driver, size, f"{form} input, {form} label.davstore-choose")
            assert len(opened["actions"]) >= 2 and opened["folded"] == 0, opened
            if size == "phone":
                _screenshot(driver, tmp_path, f"files-{link}-{size}", top=False)
        driver.get(f"{base}/admin/davstore/media/?path=gallery")
        _settle(driver)
        # Every picture has a thumbnail, made from the file, none of them in the share.
        thumbs = driver.execute_script(
            "return [...document.querySelectorAll('img.davstore-thumb')].map(i =>"
            " [i.closest('tr').dataset.path, i.naturalWidth, i.naturalHeight])"
        )
        assert sorted(t[0] for t in thumbs) == [
            "gallery/beach.jpg",
            "gallery/forest.png",
            "gallery/sunset.webp",
        ]
        assert all(0 < w <= 96 and 0 < h <= 96 for _, w, h in thumbs), thumbs
        _screenshot(driver, tmp_path, f"files-{size}")

        # The preview of a picture and of text, and the rename form.
        for page, path in (("preview-image", "beach.jpg"), ("preview-text", "notes.txt")):
            driver.get(f"{base}/admin/davstore/media/preview/?path=gallery/{path}")
            _settle(driver)
            _check_layout(driver, size)
            _screenshot(driver, tmp_path, f"{page}-{size}")
        image = driver.find_elements(By.CSS_SELECTOR, ".davstore-preview-image")
        assert not image  # the text page
        driver.get(f"{base}/admin/davstore/media/preview/?path=gallery/beach.jpg")
        _settle(driver)
        assert (
            driver.execute_script(
                "return document.querySelector('.davstore-preview-image').naturalWidth"
            )
            == 640
        )
        # A PDF in a frame of the page: the browser's viewer gets the PDF itself.
        driver.get(f"{base}/admin/davstore/media/preview/?path=gallery/contract.pdf")
        WebDriverWait(driver, 30).until(
            lambda d: (
                d.execute_script(
                    "const f = document.querySelector('iframe.davstore-preview-pdf');"
                    "return f.contentDocument && f.contentDocument.contentType"
                )
                == "application/pdf"
            )
        )
        _check_layout(driver, size)
        if os.environ.get("DAVSTORE_SCREENSHOT_DIR"):  # to look at; the viewer is Chromium's
            driver.save_screenshot(
                str(Path(os.environ["DAVSTORE_SCREENSHOT_DIR"]) / f"preview-pdf-{size}.png")
            )
        driver.get(f"{base}/admin/davstore/media/rename/?path=gallery/{_LONG}")
        _settle(driver)
        _check_layout(driver, size)
        rename = driver.find_element(By.CSS_SELECTOR, "#davstore-rename [type=submit]").rect
        cancel = driver.find_element(By.CSS_SELECTOR, "#davstore-rename .davstore-cancel").rect
        assert rename["y"] == cancel["y"] and rename["height"] == cancel["height"]
        _screenshot(driver, tmp_path, f"rename-{size}")
    # The thumbnails were kept outside the share: it holds what it held.
    assert {p.name for p in (media / "gallery").iterdir()} == {
        *("2026 spring", "drafts", _LONG, "beach.jpg", "contract.pdf", "forest.png"),
        *("notes.txt", "sunset.webp"),
    }
    assert [p.name for p in media.iterdir()] == ["gallery"]


_LONG = "a-very-long-file-name-that-people-give-to-exports-2026-05-28-final-v2.csv"

_DROP = """
const [names, done] = [arguments[0], arguments[arguments.length - 1]];
const transfer = new DataTransfer();
for (const name of names) {
  transfer.items.add(new File(["x".repeat(200000) + name], name, {type: "text/plain"}));
}
const target = document.querySelector("#davstore-listing");
for (const type of ["dragenter", "dragover", "drop"]) {
  target.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true,
                                            cancelable: true}));
}
done(true);
"""


def test_drag_and_drop_upload_of_files_and_folders_with_progress(
    browser: tuple[WebDriver, Path], site: tuple[str, Path], tmp_path: Path
) -> None:
    driver, _ = browser
    base, media = site
    (media / "inbox").mkdir(parents=True)
    (media / "inbox" / "kept.txt").write_bytes(b"old")
    _log_in(driver, base)
    _at(driver, "desktop")
    driver.get(f"{base}/admin/davstore/media/?path=inbox")
    wait = WebDriverWait(driver, 60)

    def finished(state: str = "done") -> Callable[[WebDriver], bool]:
        return lambda d: (
            d.find_element(By.CSS_SELECTOR, ".davstore").get_attribute("data-uploads") == state
        )

    def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = driver.execute_script(
            "return [...document.querySelectorAll('#davstore-progress li')].map(li =>"
            " ({name: li.dataset.name, state: li.dataset.state,"
            "   value: li.querySelector('progress').value,"
            "   status: li.querySelector('.davstore-status').textContent}))"
        )
        return found

    # Two files dropped on the listing: one bar each, both full, the listing shows them.
    driver.execute_async_script(_DROP, ["one.txt", "two é.txt"])
    wait.until(finished())
    assert [(r["name"], r["state"], r["value"]) for r in rows()] == [
        ("one.txt", "done", 100),
        ("two é.txt", "done", 100),
    ]
    assert (media / "inbox" / "one.txt").read_bytes().endswith(b"one.txt")
    assert (media / "inbox" / "two é.txt").stat().st_size == 200000 + len("two é.txt".encode())
    listed = driver.find_element(By.ID, "davstore-listing").text
    assert "one.txt" in listed and "two é.txt" in listed

    # A folder chosen (as a dropped one is walked): its tree is made in the share.
    tree = tmp_path / "holiday"
    (tree / "day 1").mkdir(parents=True)
    (tree / "day 1" / "a.txt").write_bytes(b"A")
    (tree / "b.txt").write_bytes(b"B")
    driver.execute_script("document.querySelector('.davstore').removeAttribute('data-uploads')")
    driver.find_element(By.ID, "davstore-folder-input").send_keys(str(tree))
    wait.until(finished())
    done = {r["name"]: r["state"] for r in rows()}
    assert done["holiday/b.txt"] == done["holiday/day 1/a.txt"] == "done", done
    assert (media / "inbox" / "holiday" / "day 1" / "a.txt").read_bytes() == b"A"
    assert (media / "inbox" / "holiday" / "b.txt").read_bytes() == b"B"

    # An existing name is refused (the replace box unticked): its bar says why.
    driver.execute_script("document.querySelector('.davstore').removeAttribute('data-uploads')")
    driver.execute_async_script(_DROP, ["kept.txt"])
    wait.until(finished("failed"))
    last = rows()[-1]
    assert last["state"] == "error" and "already exists" in last["status"], last
    assert (media / "inbox" / "kept.txt").read_bytes() == b"old"

    # Without scripts the form uploads as it always did: a POST, a redirect, a message.
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    driver.get(f"{base}/admin/davstore/media/?path=inbox")
    local = tmp_path / "plain form.txt"
    local.write_bytes(b"no script")
    driver.find_element(By.ID, "davstore-files").send_keys(str(local))
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "#davstore-upload [type=submit]").click()
    wait.until(lambda _: _replaced(old))
    assert "Uploaded “plain form.txt”." in driver.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert (media / "inbox" / "plain form.txt").read_bytes() == b"no script"
    assert not driver.find_elements(By.CSS_SELECTOR, "#davstore-progress li")


# -- inside Wagtail's admin (davstore.wagtail_hooks) --------------------------------------


@pytest.fixture
def wagtail_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """tests.wagtailsite served by ``runserver`` on a free port: (base URL, media folder)."""
    root = tmp_path / "wagtail"
    migrate(root)
    environment = {
        **wagtail_env(root),
        "DJANGO_SUPERUSER_USERNAME": USER,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
    }
    subprocess.run(
        [sys.executable, "-m", "django", "createsuperuser", "--noinput"],
        cwd=REPO,
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log_path = tmp_path / "wagtail-runserver.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            # --insecure: the static files with DEBUG off
            [
                sys.executable,
                "-m",
                "django",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--insecure",
            ],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, log_path.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "runserver did not start"
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", root / "media"
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_files_page_inside_wagtails_admin(
    browser: tuple[WebDriver, Path], wagtail_site: tuple[str, Path], tmp_path: Path
) -> None:
    driver, _ = browser
    base, media = wagtail_site
    _fill(media)
    driver.get(f"{base}/cms/login/?next=/cms/")
    driver.find_element(By.ID, "id_username").send_keys(USER)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: "/login/" not in d.current_url)
    _at(driver, "desktop")
    # The menu item, drawn by Wagtail's sidebar script, leads to the shares.
    link = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'a[href="/cms/davstore/"]'))
    assert "Files" in link.text
    link.click()
    wait.until(lambda d: d.find_elements(By.ID, "davstore-shares"))
    for size in SIZES:
        _at(driver, size)
        driver.get(f"{base}/cms/davstore/media/?path=gallery")
        _settle(driver)
        assert driver.find_elements(By.ID, "wagtail-sidebar")
        layout = _check_layout(driver, size)
        texts = " ".join(a["text"] for a in layout["actions"])
        for action in ("Preview", "Download", "Rename", "Delete", "Upload", "Filter"):
            assert action in texts, (action, texts)
        thumbs = driver.execute_script(
            "return [...document.querySelectorAll('img.davstore-thumb')].map(i => i.naturalWidth)"
        )
        assert len(thumbs) == 3 and all(0 < w <= 96 for w in thumbs), thumbs
        _screenshot(driver, tmp_path, f"wagtail-files-{size}")
    # A drop uploads there too (the script, the CSRF token, the same view).
    _at(driver, "desktop")
    driver.get(f"{base}/cms/davstore/media/?path=gallery")
    driver.execute_async_script(_DROP, ["dropped.txt"])
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".davstore").get_attribute("data-uploads"))
    state = driver.find_element(By.CSS_SELECTOR, "#davstore-progress li").get_attribute(
        "data-state"
    )
    assert state == "done"
    assert (media / "gallery" / "dropped.txt").read_bytes().endswith(b"dropped.txt")
