"""The folder page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium. A missing browser fails the test, never skips it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.storage import FileSystemStorage
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.webdav.serving import serve_share

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1100, 800

NAMES = [
    "report #2.docx",
    "budget & plan.xlsx",
    "100% done?.txt",
    "a+b=c 'quoted' \"too\".odt",
    "Ελληνικά.txt",
    "日本語のファイル.pdf",
    "emoji-\U0001f600.png",
]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_folder_page_in_chromium(chromium: WebDriver, tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "Projects" / "2026 Q3").mkdir(parents=True)
    (media / "Archive").mkdir()
    for i, name in enumerate(NAMES):
        (media / "Projects" / name).write_bytes(os.urandom(100 + i * 3000))
    storage = FileSystemStorage(location=str(media))
    with serve_share(storage, tmp_path / "state", anonymous=True) as share:
        chromium.get(share(""))
        assert chromium.title == "davstore — /"
        chromium.find_element(By.PARTIAL_LINK_TEXT, "Projects/").click()
        assert chromium.current_url == share("Projects/")
        body = chromium.find_element(By.TAG_NAME, "body").text
        for name in NAMES:
            assert name in body, name
        rows = [row.text for row in chromium.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert "Parent folder" in rows[0]
        assert "2026 Q3/" in rows[1]
        shot = tmp_path / "listing.png"
        assert chromium.save_screenshot(str(shot))
        if os.environ.get("DAVSTORE_SCREENSHOT"):  # keep a copy to look at
            shutil.copy(shot, os.environ["DAVSTORE_SCREENSHOT"])
        # Following a file link fetches that very file, whatever its name.
        link = chromium.find_element(By.PARTIAL_LINK_TEXT, "100% done?")
        assert link.get_attribute("href") == share("Projects/" + quote("100% done?.txt"))
        crumb = chromium.find_element(By.CSS_SELECTOR, "nav.crumbs a:first-child")
        crumb.click()
        assert chromium.current_url == share("")
        assert "Archive/" in chromium.find_element(By.TAG_NAME, "body").text
    with Image.open(shot) as image:
        width, height = image.size
        assert (width, height) == (WIDTH, HEIGHT) or width >= WIDTH * 0.9
        colours = image.convert("RGB").getcolors(maxcolors=width * height)
    assert colours is not None
    assert len(colours) > 20, "the screenshot is blank"
    most = max(count for count, _ in colours)
    assert most < width * height * 0.9, "one colour fills the screenshot"


#: The sizes every davstore page is checked at: a laptop and a phone (CSS pixels).
SIZES = {"desktop": (1280, 800, False), "phone": (390, 844, True)}

#: The header band and the breadcrumb band of davstore's pages (listing.html).
HEADER_RGB = (35, 74, 122)
CRUMBS_RGB = (223, 231, 241)
FOLDER_RGB = (224, 165, 38)

_MEASURE = """
const box = e => { if (!e) return null; const r = e.getBoundingClientRect();
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,
          width: r.width, height: r.height}; };
const rows = [...document.querySelectorAll("tbody tr")].map(tr => ({
  kind: tr.className,
  name: box(tr.querySelector("td.name")),
  date: box(tr.querySelector("td.date")),
  size: box(tr.querySelector("td.size")),
  actions: box(tr.querySelector("td.actions")),
}));
const icons = [...document.querySelectorAll(".icon")].map(i => ({
  tag: i.tagName.toLowerCase(), box: box(i),
  pointer: getComputedStyle(i).pointerEvents,
  folder: !!i.closest("tr.folder"),
}));
const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
return {
  width: window.innerWidth, height: window.innerHeight,
  scrollWidth: document.documentElement.scrollWidth,
  bodyScrollWidth: document.body.scrollWidth,
  header: box(document.querySelector("header")),
  crumbs: box(document.querySelector("nav.crumbs")),
  thead: document.querySelector("thead") ? visible(document.querySelector("thead")) : null,
  links: [...document.querySelectorAll("a")].filter(visible).map(a => ({
    text: a.textContent, box: box(a)})),
  controls: document.querySelectorAll("input, button, select, [role=checkbox]").length,
  rows: rows, icons: icons,
};
"""


def show(driver: WebDriver, url: str, size: str, shot: Path) -> dict[str, Any]:
    """Open ``url`` at one of :data:`SIZES`, save a screenshot to ``shot`` (and to
    ``$DAVSTORE_SCREENSHOT_DIR`` when set, to look at), and return the page's layout as
    the browser measured it, with the screenshot's size and a few of its pixels."""
    width, height, mobile = SIZES[size]
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    driver.get(url)
    layout: dict[str, Any] = driver.execute_script(_MEASURE)
    assert driver.save_screenshot(str(shot))
    keep = os.environ.get("DAVSTORE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        layout["png"] = rgb.size
        header, crumbs = layout["header"], layout["crumbs"]
        layout["header_rgb"] = rgb.getpixel((4, int(header["top"]) + 4))
        if crumbs is not None:
            layout["crumbs_rgb"] = rgb.getpixel((4, int(crumbs["bottom"]) - 3))
        # The middle of each folder icon on screen, as drawn.
        layout["folder_rgb"] = [
            rgb.getpixel((int(i["box"]["left"] + 8), int(i["box"]["top"] + 9)))
            for i in layout["icons"]
            if i["folder"] and i["box"]["bottom"] < height
        ]
    return layout


def assert_fits(layout: dict[str, Any], size: str) -> None:
    """No horizontal scroll, every link on screen, the screenshot is the page at that
    size with davstore's bands where the DOM puts them, icons are pictures."""
    width, height, _ = SIZES[size]
    assert (layout["width"], layout["height"]) == (width, height)
    assert layout["png"] == (width, height)
    assert layout["scrollWidth"] <= width and layout["bodyScrollWidth"] <= width, layout
    for link in layout["links"]:
        assert link["box"]["left"] >= 0 and link["box"]["right"] <= width + 0.5, link
    assert layout["header_rgb"] == HEADER_RGB
    if layout["crumbs"] is not None:
        assert layout["crumbs_rgb"] == CRUMBS_RGB
    assert layout["controls"] == 0
    for icon in layout["icons"]:
        assert icon["tag"] == "svg" and icon["pointer"] == "none", icon
        assert round(icon["box"]["width"]) == round(icon["box"]["height"]) == 16, icon
    for pixel in layout["folder_rgb"]:
        assert pixel == FOLDER_RGB, layout["folder_rgb"]


def test_the_listing_fits_a_laptop_and_a_phone(chromium: WebDriver, tmp_path: Path) -> None:
    media = tmp_path / "media"
    folder = media / "original_images"
    (folder / "Archive 2025").mkdir(parents=True)
    (folder / "a-very-long-folder-name-without-any-space-that-must-wrap").mkdir()
    long_name = "quarterly-report-without-a-single-space-anywhere-in-it-final-v2.docx"
    for i, name in enumerate([*NAMES, long_name]):
        (folder / name).write_bytes(os.urandom(100 + i * 3000))
    storage = FileSystemStorage(location=str(media))
    with serve_share(storage, tmp_path / "state", anonymous=True, share_name="media") as share:
        url = share("original_images/")
        layouts = {
            size: show(chromium, url, size, tmp_path / f"listing-{size}.png") for size in SIZES
        }
        assert chromium.title == "media — /original_images/"
    for size, layout in layouts.items():
        assert_fits(layout, size)
        kinds = [row["kind"] for row in layout["rows"]]
        assert kinds == ["up", "folder", "folder", *["file"] * (len(NAMES) + 1)]
        assert len(layout["icons"]) == len(kinds)
        assert len(layout["folder_rgb"]) == 2  # both folders' icons drawn, in their colour
        texts = [link["text"] for link in layout["links"]]
        assert texts[:2] == ["media", "original_images"]  # the crumbs: no list of shares
        assert texts.count("Download") == len(NAMES) + 1  # every action on screen
        assert texts.count("Open in LibreOffice") == 4
    desktop, phone = layouts["desktop"], layouts["phone"]
    # The laptop shows a table: one line per file, the Modified column on it.
    assert desktop["thead"] is True
    for row in desktop["rows"][3:]:
        assert abs(row["date"]["top"] - row["name"]["top"]) < 2, row
        assert row["date"]["left"] >= row["name"]["right"] - 1, row
    # The phone stacks each file: its name, then date and size, then its actions.
    assert phone["thead"] is False
    for row in phone["rows"][3:]:
        assert row["date"]["top"] >= row["name"]["bottom"] - 1, row
        assert row["size"]["left"] >= row["date"]["right"] - 1, row
        assert row["actions"]["top"] >= row["date"]["bottom"] - 1, row
    # Same page, same order: the phone is taller, never wider.
    assert phone["rows"][-1]["name"]["bottom"] > desktop["rows"][-1]["name"]["bottom"]
