"""The site guard on a real FUSE mount of a Django share (``manage.py davstore mount``):
``rm`` of a file a row names is EACCES with one log line, ``mv`` rewrites the row, text
written over a referenced image is EINVAL (the old content kept), and each editor's safe
save ends with the row naming the original name."""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.django.project import Project, make_project
from tests.django.test_guard_safe_save import NEW, OLD, ORIGINAL, SEQUENCES
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


def row(project: Project, sql: str, *args: object) -> tuple[object, ...]:
    """One row of the site's database, read directly (no Django process per check)."""
    with sqlite3.connect(project.root / "db.sqlite3") as db:
        found = db.execute(sql, args).fetchone()
    assert found is not None
    return tuple(found)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "PNG")
    return out.getvalue()


def test_text_over_a_referenced_image_is_einval_and_an_image_updates_the_size(
    project: Project, mounted: tuple[Path, Path]
) -> None:
    mountpoint, log = mounted
    (mountpoint / "pictures").mkdir()
    (mountpoint / "pictures" / "a.png").write_bytes(png(4, 3))
    pk = site(
        project,
        "from tests.django.siteapp.models import Picture;"
        "print(Picture.objects.create(image='pictures/a.png').pk)",
    )
    with pytest.raises(OSError) as caught:
        (mountpoint / "pictures" / "a.png").write_bytes(b"not an image")
    assert caught.value.errno == errno.EINVAL
    assert (project.media / "pictures" / "a.png").read_bytes() == png(4, 3)
    assert any("not an image" in line for line in log.read_text().splitlines())
    (mountpoint / "pictures" / "a.png").write_bytes(png(8, 5))
    assert (project.media / "pictures" / "a.png").read_bytes() == png(8, 5)
    query = "SELECT width, height FROM siteapp_picture WHERE id = ?"
    assert row(project, query, int(pk)) == (8, 5)


@pytest.mark.parametrize("editor", sorted(SEQUENCES))
def test_a_safe_save_on_the_mount_keeps_the_row(
    project: Project, mounted: tuple[Path, Path], editor: str
) -> None:
    mountpoint, _log = mounted
    (mountpoint / "docs").mkdir()
    (mountpoint / ORIGINAL).write_bytes(OLD)
    pk = int(
        site(
            project,
            "from tests.django.siteapp.models import Document;"
            f"print(Document.objects.create(file={ORIGINAL!r}).pk)",
        )
    )
    for number, (operation, args, expected) in enumerate(SEQUENCES[editor], 1):
        if operation == "put":
            (mountpoint / args[0]).write_bytes(NEW)
        elif operation == "move":
            os.rename(mountpoint / args[0], mountpoint / args[1])
        else:
            os.unlink(mountpoint / args[0])
        (name,) = row(project, "SELECT file FROM siteapp_document WHERE id = ?", pk)
        assert name == expected, f"{editor}, step {number}: {operation} {args}"
        assert (project.media / str(name)).exists(), f"{editor}, step {number}: the row's file"
    assert (project.media / ORIGINAL).read_bytes() == NEW
    assert sorted(p.name for p in (project.media / "docs").iterdir()) == ["report.docx"]
