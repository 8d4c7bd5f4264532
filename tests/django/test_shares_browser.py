"""The pages of a project's shares (``SharesApp``) in headless Chromium at a laptop's and a
phone's size: the list of shares in the listing's style, a share's listing whose first
crumb goes back to it, and the page of the static share before ``collectstatic``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.test.utils import override_settings
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.django.sharing import project_settings
from tests.django.test_static_share import serve_shares
from tests.webdav.test_listing_browser import SIZES, assert_fits, chromium, show

__all__ = ["chromium"]  # the fixture, used by name


def test_the_shares_pages_fit_a_laptop_and_a_phone(
    chromium: WebDriver,
    tmp_path: Path,
    migrated: None,
    make_user: Callable[..., Any],
) -> None:
    make_user("alice", password="pw", is_superuser=True)
    settings = project_settings(tmp_path)
    (tmp_path / "static").rmdir()  # the static share's folder is not made yet
    (tmp_path / "files" / "original_images").mkdir()
    (tmp_path / "files" / "original_images" / "photo.jpg").write_bytes(b"jpeg")
    settings["STORAGES"]["collected"]["BACKEND"] = (
        "django.contrib.staticfiles.storage.StaticFilesStorage"
    )
    layouts: dict[tuple[str, str], dict[str, Any]] = {}
    with override_settings(**settings, STATIC_URL="/static/"), serve_shares() as url:
        logged_in = url.replace("http://", "http://alice:pw@")
        chromium.get(logged_in + "/")  # Chromium keeps the credentials for the origin
        for size in SIZES:
            for page, path in (("shares", "/"), ("listing", "/files/original_images/")):
                layouts[page, size] = show(
                    chromium, url + path, size, tmp_path / f"shares-app-{page}-{size}.png"
                )
            layouts["missing", size] = show(
                chromium, url + "/static/", size, tmp_path / f"shares-app-missing-{size}.png"
            )
            notice = chromium.find_element(By.CSS_SELECTOR, "section.notice").text
            assert "does not exist yet" in notice and "collectstatic" in notice
        chromium.get(url + "/files/original_images/")
        chromium.find_element(By.LINK_TEXT, "Shares").click()
        assert chromium.current_url == url + "/"
        assert chromium.title == "Shares"
    for (_page, size), layout in layouts.items():
        assert_fits(layout, size)
    for size in SIZES:
        shares = layouts["shares", size]
        assert [link["text"] for link in shares["links"]] == [
            "Shares",
            "media/",
            "files/",
            "static/",
        ]
        assert len(shares["folder_rgb"]) == 3  # an icon per share, drawn in its colour
        listing = layouts["listing", size]
        assert [link["text"] for link in listing["links"][:3]] == [
            "Shares",
            "files",
            "original_images",
        ]
        # The same bands at the same places: one stylesheet for both pages.
        assert shares["header"] == listing["header"]
        assert shares["crumbs"]["top"] == listing["crumbs"]["top"]
        missing = layouts["missing", size]
        assert [link["text"] for link in missing["links"]] == ["Shares", "static", "Back to static"]
