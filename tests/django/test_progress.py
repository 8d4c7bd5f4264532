"""``manage.py davstore index`` and ``check`` show a progress bar on a terminal (a pseudo-
terminal here, as stdout and stderr) and nothing more than their lines otherwise (issue 24
item 8). ``davstore trash purge``'s is in tests/cli/test_trash.py."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from tests.django.siteapp.models import Photo
from tests.django.test_guard import _clean, site_settings


class Terminal:
    """A pseudo-terminal: :attr:`out` writes to it, :meth:`read` what was written;
    :meth:`as_stderr` makes it ``sys.stderr`` too (inside the test: pytest's capture sets
    ``sys.stderr`` again between a fixture's setup and the test)."""

    def __init__(self) -> None:
        self._leader, follower = pty.openpty()
        self.out: IO[str] = os.fdopen(follower, "w", buffering=1)

    @contextlib.contextmanager
    def as_stderr(self) -> Iterator[None]:
        saved, sys.stderr = sys.stderr, self.out
        try:
            yield
        finally:
            sys.stderr = saved

    def read(self) -> str:
        self.out.flush()
        chunks = []
        while select.select([self._leader], [], [], 0.2)[0]:
            chunks.append(os.read(self._leader, 65536))
        return b"".join(chunks).decode(errors="replace")

    def close(self) -> None:
        self.out.close()
        os.close(self._leader)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    made = Terminal()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def media(tmp_path: Path, migrated: None) -> Iterator[Path]:
    """A guarded share with three photos on disk and in rows, and one orphan."""
    folder = tmp_path / "media"
    (folder / "photos").mkdir(parents=True)
    _clean()
    with override_settings(**site_settings(folder)):
        for name in ("a", "b", "c"):
            (folder / "photos" / f"{name}.jpg").write_bytes(b"\x89PNG not really")
            Photo.objects.create(image=f"photos/{name}.jpg")
        (folder / "photos" / "orphan.jpg").write_bytes(b"orphan")
        yield folder
    _clean()


def test_index_is_quiet_when_not_on_a_terminal(
    media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    call_command("davstore", "index", "media", stdout=out)
    assert out.getvalue() == "media: 3 references in 4 fields\n"
    assert "indexing" not in capsys.readouterr().err


def test_index_shows_progress_on_a_terminal(media: Path, terminal: Terminal) -> None:
    with terminal.as_stderr():
        call_command("davstore", "index", "media", stdout=terminal.out)
    shown = terminal.read()
    assert "media: indexing: 100%" in shown and "3/3" in shown, shown
    assert "media: 3 references in 4 fields" in shown


def test_check_is_quiet_when_not_on_a_terminal(
    media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("davstore", "check", "--min-age", "0", stdout=out)
    assert out.getvalue().startswith("media: 0 missing, 1 orphans older than 0 s\n")
    assert "checking" not in capsys.readouterr().err


def test_check_shows_progress_on_a_terminal(media: Path, terminal: Terminal) -> None:
    with terminal.as_stderr(), pytest.raises(CommandError):
        call_command("davstore", "check", "--min-age", "0", stdout=terminal.out)
    shown = terminal.read()
    assert "media: checking: " in shown and "entries/s" in shown, shown
    assert "media: 0 missing, 1 orphans older than 0 s" in shown
