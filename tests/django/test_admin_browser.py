"""The admin's Files pages in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against the example project (examples/mysite)
served by ``manage.py runserver`` on 127.0.0.1.

One walk through every action, checking the store (the project's media folder) after each
step, then a screenshot that must show a rendered page. Chromium missing is a failure, not a
skip: tests/run.sh installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

MYSITE = Path(__file__).resolve().parents[2] / "examples" / "mysite"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USER, PASSWORD = "admin", "correct horse battery"
WIDTH, HEIGHT = 1280, 1000

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The example project on a free port: (base URL, its media folder)."""
    data = tmp_path / "site"
    env = {
        **os.environ,
        "MYSITE_DATA_DIR": str(data),
        "DJANGO_SUPERUSER_USERNAME": USER,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=MYSITE,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    manage("migrate", "--noinput")
    manage("createsuperuser", "--noinput")
    port = _free_port()
    log = (tmp_path / "runserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=MYSITE,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "runserver.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", data / "media"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[WebDriver, Path]]:
    """Headless Chromium and the folder it downloads into."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
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
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _replaced(element: WebElement) -> bool:
    """Whether the page holding ``element`` was replaced by another. (Selenium's
    ``staleness_of`` lets Chromium's "Node with given id does not belong to the document",
    answered while the old page goes away, fail the test instead of meaning "replaced".)"""
    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException is one
        return True
    return False


def test_files_pages_in_a_real_browser(
    browser: tuple[WebDriver, Path], site: tuple[str, Path], tmp_path: Path
) -> None:
    driver, downloads = browser
    base, media = site
    (media / "reports").mkdir(parents=True)
    (media / "reports" / "q1.txt").write_bytes(b"first quarter\n")
    wait = WebDriverWait(driver, 20)

    def submit(form_id: str) -> None:
        old = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, f"#{form_id} [type=submit]").click()
        wait.until(lambda _: _replaced(old))

    def follow(css: str) -> None:
        old = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, css).click()
        wait.until(lambda _: _replaced(old))

    def messages() -> str:
        return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".messagelist li"))

    # Log in; the admin index has a Files section with the shares.
    driver.get(f"{base}/admin/login/?next=/admin/")
    driver.find_element(By.ID, "id_username").send_keys(USER)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    submit("login-form")
    assert driver.find_element(By.CSS_SELECTOR, ".app-davstore").text.startswith("FILES")
    follow('.app-davstore a[href="/admin/davstore/media/"]')
    assert driver.title.startswith("media")

    # Browse into a folder.
    follow('tr[data-path="reports"] th a')
    assert "q1.txt" in driver.find_element(By.ID, "davstore-listing").text
    crumbs = driver.find_element(By.CSS_SELECTOR, ".breadcrumbs").text
    assert "Files" in crumbs and "media" in crumbs and "reports" in crumbs

    # Upload (the page's script sends it, with a progress bar, and lists it again).
    local = tmp_path / "upload me.txt"
    local.write_bytes(b"uploaded through Chromium\n")
    driver.find_element(By.ID, "davstore-files").send_keys(str(local))
    driver.find_element(By.CSS_SELECTOR, "#davstore-upload [type=submit]").click()
    wait.until(lambda d: d.find_element(By.CLASS_NAME, "davstore").get_attribute("data-uploads"))
    bar = driver.find_element(By.CSS_SELECTOR, '#davstore-progress li[data-name="upload me.txt"]')
    assert bar.get_attribute("data-state") == "done" and "Uploaded" in bar.text
    assert (media / "reports" / "upload me.txt").read_bytes() == local.read_bytes()
    assert driver.find_elements(By.CSS_SELECTOR, 'tr[data-path="reports/upload me.txt"]')

    # New folder.
    driver.find_element(By.ID, "davstore-folder-name").send_keys("archive")
    submit("davstore-mkdir")
    assert "Created the folder “archive”." in messages()
    assert (media / "reports" / "archive").is_dir()

    # Rename.
    follow('tr[data-path="reports/upload me.txt"] a.davstore-rename')
    field = driver.find_element(By.ID, "davstore-new-name")
    assert field.get_attribute("value") == "upload me.txt"
    field.clear()
    field.send_keys("renamed.txt")
    submit("davstore-rename")
    assert "Renamed “upload me.txt” to “renamed.txt”." in messages()
    assert sorted(p.name for p in (media / "reports").iterdir()) == [
        "archive",
        "q1.txt",
        "renamed.txt",
    ]

    # Delete, with a confirmation page that changes nothing until confirmed.
    follow('tr[data-path="reports/archive"] a.davstore-delete')
    assert (
        "Are you sure you want to delete the folder “archive”"
        in driver.find_element(By.ID, "content-main").text
    )
    assert (media / "reports" / "archive").is_dir()
    submit("davstore-delete")
    assert "Deleted the folder “archive”." in messages()
    assert not (media / "reports" / "archive").exists()

    # Download.
    row = driver.find_element(By.CSS_SELECTOR, 'tr[data-path="reports/renamed.txt"]')
    row.find_element(By.CSS_SELECTOR, "a.davstore-download").click()
    downloaded = downloads / "renamed.txt"
    deadline = time.monotonic() + 20
    while not downloaded.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert downloaded.read_bytes() == b"uploaded through Chromium\n"

    # The page as a person sees it: a screenshot that is not blank, with the files listed.
    driver.get(f"{base}/admin/davstore/media/?path=reports")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "q1.txt" in body and "renamed.txt" in body and "Upload files here" in body
    shot = tmp_path / "files-page.png"
    assert driver.save_screenshot(str(shot))
    keep = os.environ.get("DAVSTORE_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
    with Image.open(shot) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width == WIDTH and 600 <= height <= HEIGHT
        colours = image.convert("RGB").getcolors(maxcolors=width * height)
    assert colours is not None and len(colours) >= 16  # text, header, table, buttons
    most, _ = max(colours)
    assert most < 0.9 * width * height  # not one flat colour
