"""A ``ManifestStaticFilesStorage`` share: ``collectstatic`` output is browsable, read-only."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.messages import get_messages
from django.core.files.storage import FileSystemStorage
from django.test import Client
from django.test.utils import override_settings

from davstore.serving.observability import MISSING, instrument_shares
from davstore.shares import get_shares
from davstore.shares_app import SharesApp
from tests.django.project import Project, make_project
from tests.django.test_command import dav, listed
from tests.process import ServeProcess
from tests.webdav.serving import serve_in_thread
from tests.webdav.test_error_pages import INTERNALS


@pytest.fixture
def project(tmp_path: Path) -> Project:
    assets = tmp_path / "assets" / "css"
    assets.mkdir(parents=True)
    (assets / "site.css").write_text("body { color: teal; }\n")
    project = make_project(
        tmp_path / "site",
        storages={
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
            }
        },
        settings={
            "INSTALLED_APPS": [
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.staticfiles",
                "davstore",
            ],
            "STATIC_URL": "/static/",
            "STATIC_ROOT": str(tmp_path / "collected"),
            "STATICFILES_DIRS": [str(tmp_path / "assets")],
        },
    )
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_superuser('alice', password='pw')"
    )
    assert made.returncode == 0, made.stderr
    collected = project.run("collectstatic", "--noinput", "--verbosity", "0")
    assert collected.returncode == 0, collected.stderr
    return project


@pytest.fixture
def server(project: Project) -> Iterator[ServeProcess]:
    with project.serve() as server:
        yield server


def test_collectstatic_output_is_browsable_and_read_only(server: ServeProcess) -> None:
    assert "/static/" in server.stdout
    top = listed(server, "static/")
    assert "staticfiles.json" in top and "css/" in top
    css = listed(server, "static/css/")
    hashed = [name for name in css if name.startswith("site.") and name != "site.css"]
    assert "site.css" in css and len(hashed) == 1, css
    assert dav("GET", server, f"static/css/{hashed[0]}").text == "body { color: teal; }\n"
    assert dav("PUT", server, "static/css/new.css", data=b"x").status_code == 403
    assert dav("DELETE", server, "static/css/site.css").status_code == 403
    assert "new.css" not in listed(server, "static/css/")


# -- before collectstatic: the automatic static share of a project whose STATIC_ROOT is
# not made yet (in-process: SharesApp with the operations endpoints, the admin's client).


@pytest.fixture
def uncollected(tmp_path: Path, migrated: None) -> Iterator[Path]:
    """Settings with no ``SHARES``: ``media`` and the automatic ``static`` share, whose
    ``STATIC_ROOT`` does not exist; yields that folder."""
    root = tmp_path / "collected"
    with override_settings(
        ROOT_URLCONF="tests.django.admin_urls",
        ALLOWED_HOSTS=["testserver"],
        STATIC_URL="/static/",
        STATIC_ROOT=str(root),
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
            },
        },
        DAVSTORE={"STATE_DIR": str(tmp_path / "state")},
    ):
        yield root


@contextlib.contextmanager
def serve_shares() -> Iterator[str]:
    shares = get_shares()
    app = SharesApp(shares.values())
    observed = instrument_shares(app, {name: share.vfs for name, share in shares.items()})
    try:
        with serve_in_thread(observed) as (url, _stop):
            yield url
    finally:
        observed.close()
        app.close()


def test_a_share_before_collectstatic_says_so(
    uncollected: Path, make_user: Callable[..., Any]
) -> None:
    make_user("alice", password="pw", is_staff=True)
    assert set(get_shares()) == {"media", "static"}
    with serve_shares() as url, requests.Session() as session:
        session.auth = ("alice", "pw")
        root = session.get(f"{url}/static/", timeout=10)
        assert root.status_code == 503
        inside = session.get(f"{url}/static/css/site.css", timeout=10)
        assert inside.status_code == 404
        for page in (root.text, inside.text):
            assert "This share's folder does not exist yet." in html.unescape(page)
            assert "collectstatic" in page
            assert not INTERNALS.search(page), page
        assert "<title>static — 503 Service Unavailable</title>" in root.text
        health = session.get(f"{url}/.davstore/health", timeout=10)
        assert health.status_code == 503
        assert health.json() == {
            "status": "unavailable",
            "shares": {"media": "ok", "static": MISSING},
        }
        # collectstatic made it: the share answers, health is ok again.
        (uncollected / "css").mkdir(parents=True)
        (uncollected / "css" / "site.css").write_text("body {}\n")
        listing = session.get(f"{url}/static/", timeout=10)
        assert listing.status_code == 200 and "css/" in listing.text
        assert "does not exist yet" not in listing.text
        assert session.get(f"{url}/.davstore/health", timeout=10).json()["status"] == "ok"


def test_the_admin_says_to_run_collectstatic(
    uncollected: Path, make_user: Callable[..., Any]
) -> None:
    client = Client()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    response = client.get("/admin/davstore/static/")
    assert response.status_code == 200
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("does not exist yet" in m and "collectstatic" in m for m in shown), shown
    assert not any("No such file or directory" in m for m in shown), shown


def test_a_missing_folder_of_another_share_is_told_plainly(
    tmp_path: Path, make_user: Callable[..., Any]
) -> None:
    """Not the static files: the page says the folder is missing, without collectstatic."""
    with override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "archive": {
                "BACKEND": "tests.django.test_static_share.OwnPathStorage",
                "OPTIONS": {"location": str(tmp_path / "not-made")},
            },
        },
        DAVSTORE={
            "SHARES": {"archive": {"STORAGE": "archive", "READ_ONLY": True}},
            "STATE_DIR": str(tmp_path / "state"),
        },
    ):
        make_user("bob", password="pw", is_staff=True)
        with serve_shares() as url:
            page = requests.get(f"{url}/archive/", auth=("bob", "pw"), timeout=10)
    assert page.status_code == 503
    assert "does not exist yet" in page.text and "collectstatic" not in page.text
    assert not INTERNALS.search(page.text), page.text


class OwnPathStorage(FileSystemStorage):
    """A project's local storage that davstore serves through the generic adapter (it
    overrides ``path``), which makes no folder of its own accord."""

    def path(self, name: str) -> str:
        return super().path(name)
