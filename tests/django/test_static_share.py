"""A ``ManifestStaticFilesStorage`` share: ``collectstatic`` output is browsable, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.project import Project, make_project
from tests.django.test_command import dav, listed
from tests.process import ServeProcess


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
