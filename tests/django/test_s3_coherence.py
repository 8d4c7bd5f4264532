"""The site and ``manage.py davstore serve`` as two processes on one S3 bucket (moto's
server): each sees the other's files, with the names Django chose and the same bytes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.project import Project, make_project
from tests.django.test_command import dav, listed
from tests.process import ServeProcess
from tests.s3.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    new_bucket,
    running_moto,
)

TTL = 1.0


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, moto: MotoServer) -> Project:
    s3 = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": new_bucket(moto),
            "endpoint_url": moto.url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": "us-east-1",
            "location": "media",
            "file_overwrite": False,  # Django's own choice of names on collision
        },
    }
    project = make_project(tmp_path / "site", storages={"default": s3})
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_user('alice', password='pw', is_staff=True)"
    )
    assert made.returncode == 0, made.stderr
    return project


@pytest.fixture
def server(project: Project) -> Iterator[ServeProcess]:
    with project.serve() as server:
        yield server


def test_site_and_share_see_each_others_files_on_s3(project: Project, server: ServeProcess) -> None:
    saved = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "print(s.save('report.txt', ContentFile(b'one')));"
        "print(s.save('report.txt', ContentFile(b'two')));"
        "print(s.save('uploads/2024/05/photo.jpg', ContentFile(b'jpg')))"
    )
    assert saved.returncode == 0, saved.stderr
    first, second, photo = saved.stdout.split()
    assert first == "report.txt" and second.startswith("report_") and second != first
    deadline = time.monotonic() + TTL + 3
    while second not in listed(server, "media/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listed(server, "media/") == sorted([first, second, "uploads/"])
    assert listed(server, "media/uploads/2024/05/") == ["photo.jpg"]
    assert dav("GET", server, f"media/{second}").content == b"two"
    assert dav("GET", server, photo.replace("uploads", "media/uploads")).content == b"jpg"

    assert dav("PUT", server, "media/report.txt", data=b"edited \x00 bytes").status_code == 204
    assert dav("DELETE", server, f"media/{second}").status_code == 204
    read = project.python(
        "from django.core.files.storage import default_storage as s;"
        "import sys;"
        "sys.stdout.write(s.open('report.txt').read().hex() + ' ' + "
        f"str(s.exists({second!r})) + ' ' + str(s.size('report.txt')))"
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == [b"edited \x00 bytes".hex(), "False", "14"]
