"""The site and a FUSE mount of its share (``manage.py davstore mount``), as two processes:
each sees the other's writes, with the same bytes and the names Django chose."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.project import Project, make_project
from tests.fuse.mounting import force_unmount, is_mounted

TTL = 1.0


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "site")


@pytest.fixture
def mounted(project: Project, tmp_path: Path) -> Iterator[Path]:
    with mount_media(project, tmp_path) as mountpoint:
        yield mountpoint


@contextlib.contextmanager
def mount_media(project: Project, tmp_path: Path, *extra: str) -> Iterator[Path]:
    """``manage.py davstore mount media MOUNTPOINT EXTRA...``, unmounted at the end."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log = (tmp_path / "mount.log").open("wb")
    process = subprocess.Popen(
        [
            *project.command("davstore", "mount", "media", str(mountpoint), "--foreground"),
            *extra,
        ],
        cwd=project.root,
        env=project.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not is_mounted(mountpoint):
            assert process.poll() is None, (tmp_path / "mount.log").read_text()
            assert time.monotonic() < deadline, "the mount did not show in 30 s"
            time.sleep(0.1)
        yield mountpoint
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
    done = project.python(
        "from django.core.files.storage import default_storage as s;"
        "from django.core.files.base import ContentFile;" + code
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def eventually(check: object, within: float = TTL + 2.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not seen within the cache TTL"
        time.sleep(0.1)


def test_site_writes_show_on_the_mount(project: Project, mounted: Path) -> None:
    assert os.listdir(mounted) == []
    first = site(project, "print(s.save('up/report.txt', ContentFile(b'one')))")
    second = site(project, "print(s.save('up/report.txt', ContentFile(b'two')))")
    assert first == "up/report.txt"
    assert second != first and second.startswith("up/report_"), "Django picked another name"
    eventually((mounted / "up").is_dir)
    eventually(
        lambda: sorted(os.listdir(mounted / "up")) == sorted([Path(first).name, Path(second).name])
    )
    assert (mounted / second).read_bytes() == b"two"


def test_mount_writes_are_read_by_the_site(project: Project, mounted: Path) -> None:
    data = os.urandom(300_000)
    (mounted / "docs").mkdir()
    (mounted / "docs" / "blob.bin").write_bytes(data)
    got = site(project, "print(s.open('docs/blob.bin').read().hex())")
    assert bytes.fromhex(got) == data
    with open(mounted / "docs" / "blob.bin", "r+b") as edited:
        edited.write(b"EDIT")
    got = site(project, "print(s.open('docs/blob.bin').read()[:8].hex(), s.size('docs/blob.bin'))")
    assert got == f"{(b'EDIT' + data[4:8]).hex()} {len(data)}"
    (mounted / "docs" / "blob.bin").unlink()
    assert site(project, "print(s.exists('docs/blob.bin'))") == "False"


def test_the_mount_command_takes_the_maximum_file_size(project: Project, tmp_path: Path) -> None:
    with mount_media(project, tmp_path, "--max-upload-size", "1K") as mountpoint:
        target = mountpoint / "small"
        target.write_bytes(b"x" * 1024)
        with pytest.raises(OSError) as refused:
            os.truncate(target, 1025)
        assert refused.value.errno == errno.EFBIG
        assert target.stat().st_size == 1024
