"""The site guard on a real FUSE mount of a Django share (``manage.py davstore mount``):
``rm`` of a file a row names is EACCES with one log line, ``mv`` rewrites the row."""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.project import Project, make_project
from tests.fuse.mounting import force_unmount, is_mounted


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "site"
    media = root / "media"
    made = make_project(
        root,
        # The models' storage is "site": another alias, same class and options as the
        # shared "default" (the guard matches it by class and options).
        storages={
            "site": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(media), "base_url": "/media/"},
            }
        },
        settings={
            "INSTALLED_APPS": [
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "davstore",
                "tests.django.siteapp",
            ]
        },
        migrate=False,
    )
    done = made.run("migrate", "--run-syncdb", "--verbosity", "0")
    assert done.returncode == 0, done.stderr
    return made


@pytest.fixture
def mounted(project: Project, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log_path = tmp_path / "mount.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*project.command("davstore", "mount", "media", str(mountpoint), "--foreground")],
        cwd=project.root,
        env=project.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not is_mounted(mountpoint):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the mount did not show in 30 s"
            time.sleep(0.1)
        yield mountpoint, log_path
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        force_unmount(mountpoint)
        log.close()


def site(project: Project, code: str) -> str:
    done = project.python("from tests.django.siteapp.models import Photo;" + code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_rm_of_a_referenced_file_is_eacces_and_mv_rewrites_the_row(
    project: Project, mounted: tuple[Path, Path]
) -> None:
    mountpoint, log = mounted
    (mountpoint / "photos").mkdir()
    (mountpoint / "photos" / "a.jpg").write_bytes(b"picture")
    (mountpoint / "photos" / "free.jpg").write_bytes(b"nobody's")
    pk = site(project, "print(Photo.objects.create(title='hero', image='photos/a.jpg').pk)")

    with pytest.raises(PermissionError) as caught:
        (mountpoint / "photos" / "a.jpg").unlink()
    assert caught.value.errno == errno.EACCES
    assert (project.media / "photos" / "a.jpg").read_bytes() == b"picture"
    refusals = [line for line in log.read_text().splitlines() if "refused to delete" in line]
    assert len(refusals) == 1 and "'photos/a.jpg'" in refusals[0]
    # rm -r removes what nobody names and stops at the referenced file.
    done = subprocess.run(
        ["rm", "-r", str(mountpoint / "photos")], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "a.jpg': Permission denied" in done.stderr
    assert (project.media / "photos" / "a.jpg").exists()
    assert not (project.media / "photos" / "free.jpg").exists()

    (mountpoint / "photos" / "a.jpg").rename(mountpoint / "photos" / "b.jpg")
    assert site(project, f"print(Photo.objects.get(pk={pk}).image.name)") == "photos/b.jpg"
    (mountpoint / "photos").rename(mountpoint / "pictures")
    assert site(project, f"print(Photo.objects.get(pk={pk}).image.name)") == "pictures/b.jpg"
    assert (project.media / "pictures" / "b.jpg").read_bytes() == b"picture"
