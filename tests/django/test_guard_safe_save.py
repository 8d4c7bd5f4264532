"""Editors' safe saves keep references: each editor's sequence of moves, writes and deletes
on a referenced file, over WebDAV (in-process), ends with the row naming the original name
and the backup deleted; after every step the row names a file that exists. The same
sequences on a real mount are in test_guard_mount.py.

The row: ``Document.file`` (a FileField) naming ``docs/report.docx``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test.utils import override_settings

from davstore.shares import get_share
from davstore.shares_app import SharesApp
from davstore.site.guard import SAFE_SAVE_WINDOW, Guard, is_backup_name
from davstore.vfs import VFS
from davstore.vfs.policy import Kind, Refused
from tests.django.siteapp.models import Document
from tests.django.test_guard import _clean, site_settings
from tests.webdav.serving import serve_in_thread

ORIGINAL = "docs/report.docx"
OLD, NEW = b"PK old report", b"PK new report"

#: (operation, arguments, the name the row holds after it). ``put`` writes NEW.
Step = tuple[str, tuple[str, ...], str]

SEQUENCES: dict[str, list[Step]] = {
    # Word: the new content in ~WRD, the original renamed to ~WRL, ~WRD renamed to the
    # original, ~WRL deleted.
    "word": [
        ("put", ("docs/~WRD0000.tmp",), ORIGINAL),
        ("move", (ORIGINAL, "docs/~WRL0001.tmp"), "docs/~WRL0001.tmp"),
        ("move", ("docs/~WRD0000.tmp", ORIGINAL), ORIGINAL),
        ("delete", ("docs/~WRL0001.tmp",), ORIGINAL),
    ],
    # LibreOffice: its lock file, the new content in a temporary file renamed over the
    # original, the lock removed.
    "libreoffice": [
        ("put", ("docs/.~lock.report.docx#",), ORIGINAL),
        ("put", ("docs/lu4f2a1.tmp",), ORIGINAL),
        ("move", ("docs/lu4f2a1.tmp", ORIGINAL), ORIGINAL),
        ("delete", ("docs/.~lock.report.docx#",), ORIGINAL),
    ],
    # vim (backupcopy=no / auto on a plain file): the 4913 probe, the original renamed to
    # name~, the new file written, the backup deleted.
    "vim": [
        ("put", ("docs/4913",), ORIGINAL),
        ("delete", ("docs/4913",), ORIGINAL),
        ("move", (ORIGINAL, "docs/report.docx~"), "docs/report.docx~"),
        ("put", (ORIGINAL,), ORIGINAL),
        ("delete", ("docs/report.docx~",), ORIGINAL),
    ],
    # gedit (with a backup): GIO writes .goutputstream-XXXXXX, renames the original to
    # name~ and the new file to the original name, then the backup goes.
    "gedit": [
        ("put", ("docs/.goutputstream-Q1W2E3",), ORIGINAL),
        ("move", (ORIGINAL, "docs/report.docx~"), "docs/report.docx~"),
        ("move", ("docs/.goutputstream-Q1W2E3", ORIGINAL), ORIGINAL),
        ("delete", ("docs/report.docx~",), ORIGINAL),
    ],
    # Finder / Apple's safe save: the original to name.sb-XXXXXXXX-XXXXXX, the new file at
    # the original name, the .sb- file deleted.
    "finder": [
        (
            "move",
            (ORIGINAL, "docs/report.docx.sb-2b8a2e01-Rq5XKJ"),
            "docs/report.docx.sb-2b8a2e01-Rq5XKJ",
        ),
        ("put", (ORIGINAL,), ORIGINAL),
        ("delete", ("docs/report.docx.sb-2b8a2e01-Rq5XKJ",), ORIGINAL),
    ],
}


@pytest.fixture
def media(tmp_path: Path, migrated: None) -> Iterator[Path]:
    folder = tmp_path / "media"
    (folder / "docs").mkdir(parents=True)
    _clean()
    with override_settings(**site_settings(folder)):
        yield folder
    _clean()


@pytest.fixture
def served(media: Path, make_user: Callable[..., Any]) -> Iterator[str]:
    make_user("editor", password="pw", is_staff=True)
    app = SharesApp([get_share("media")], auth_cache_ttl=60, realm="davstore")
    try:
        with serve_in_thread(app) as (url, _stop):
            yield url
    finally:
        app.close()


def webdav(base: str, operation: str, args: tuple[str, ...]) -> None:
    auth = ("editor", "pw")
    if operation == "put":
        answer = requests.put(f"{base}/media/{args[0]}", data=NEW, auth=auth, timeout=10)
        assert answer.status_code in (201, 204), answer.text
    elif operation == "move":
        answer = requests.request(
            "MOVE",
            f"{base}/media/{args[0]}",
            headers={"Destination": f"{base}/media/{args[1]}", "Overwrite": "T"},
            auth=auth,
            timeout=10,
        )
        assert answer.status_code in (201, 204), answer.text
    else:
        answer = requests.delete(f"{base}/media/{args[0]}", auth=auth, timeout=10)
        assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("editor", sorted(SEQUENCES))
def test_a_safe_save_over_webdav_keeps_the_row(served: str, media: Path, editor: str) -> None:
    (media / ORIGINAL).write_bytes(OLD)
    doc = Document.objects.create(file=ORIGINAL)
    for number, (operation, args, expected) in enumerate(SEQUENCES[editor], 1):
        webdav(served, operation, args)
        doc.refresh_from_db()
        assert doc.file.name == expected, f"{editor}, step {number}: {operation} {args}"
        assert (media / doc.file.name).exists(), f"{editor}, step {number}: the row's file"
    assert (media / ORIGINAL).read_bytes() == NEW
    assert sorted(p.name for p in (media / "docs").iterdir()) == ["report.docx"]


def vfs_step(vfs: VFS, operation: str, args: tuple[str, ...]) -> None:
    if operation == "put":
        vfs.put_file(args[0], NEW)
    elif operation == "move":
        vfs.rename(args[0], args[1])
    else:
        vfs.remove(args[0])


@pytest.mark.parametrize("editor", sorted(SEQUENCES))
def test_a_safe_save_whose_steps_reach_two_processes_keeps_the_row(
    media: Path, tmp_path: Path, editor: str
) -> None:
    """``serve --workers 2``: each step of the save reaches the other worker, each with its
    own VFS and guard over the state folder they share (as two processes do: each maps the
    shared files on its own)."""
    (media / ORIGINAL).write_bytes(OLD)
    doc = Document.objects.create(file=ORIGINAL)
    share = get_share("media")
    workers = [share.build_vfs(state_dir=tmp_path / "served") for _ in range(2)]
    try:
        for number, (operation, args, expected) in enumerate(SEQUENCES[editor], 1):
            vfs_step(workers[number % 2], operation, args)
            doc.refresh_from_db()
            assert doc.file.name == expected, f"{editor}, step {number}: {operation} {args}"
            assert (media / doc.file.name).exists(), f"{editor}, step {number}: the row's file"
    finally:
        for vfs in workers:
            for policy in vfs._policies.get(Kind.MOVE, ()):
                if isinstance(policy, Guard):
                    policy.close()
    assert (media / ORIGINAL).read_bytes() == NEW
    assert sorted(p.name for p in (media / "docs").iterdir()) == ["report.docx"]


def test_a_move_to_a_backup_name_with_nothing_after_it_is_a_move(media: Path) -> None:
    (media / ORIGINAL).write_bytes(OLD)
    doc = Document.objects.create(file=ORIGINAL)
    vfs = get_share("media").vfs
    vfs.rename(ORIGINAL, "docs/report.docx~")
    doc.refresh_from_db()
    assert doc.file.name == "docs/report.docx~"
    with pytest.raises(Refused):
        vfs.remove("docs/report.docx~")  # the only copy the row has
    # Past the window, a new file at the old name is another file: the row stays.
    guard = next(p for p in vfs._policies[Kind.MOVE] if isinstance(p, Guard))
    now = guard._clock()
    guard._clock = lambda: now + SAFE_SAVE_WINDOW + 1
    vfs.put_file(ORIGINAL, NEW)
    doc.refresh_from_db()
    assert doc.file.name == "docs/report.docx~"


def test_a_move_to_an_ordinary_name_then_a_new_file_is_a_move(media: Path) -> None:
    (media / ORIGINAL).write_bytes(OLD)
    doc = Document.objects.create(file=ORIGINAL)
    vfs = get_share("media").vfs
    vfs.rename(ORIGINAL, "docs/renamed.docx")
    vfs.put_file(ORIGINAL, NEW)
    doc.refresh_from_db()
    assert doc.file.name == "docs/renamed.docx"


@pytest.mark.parametrize(
    ("name", "backup"),
    [
        ("docs/~WRL0001.tmp", True),
        ("docs/~WRD0000.tmp", True),
        ("docs/report.docx~", True),
        ("docs/.~lock.report.docx#", True),
        ("docs/.goutputstream-Q1W2E3", True),
        ("docs/report.docx.sb-2b8a2e01-Rq5XKJ", True),
        ("docs/4913", True),
        ("docs/report.docx", False),
        ("docs/~report.docx", False),
        ("docs/49130", False),
    ],
)
def test_backup_names(name: str, backup: bool) -> None:
    assert is_backup_name(name) is backup
