"""The folder page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium. A missing browser fails the test, never skips it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
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
        assert "Index of /" in chromium.title
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
