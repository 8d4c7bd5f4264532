"""A full disk answers 507 with one log line: the state folder (SQLite "database or disk is
full" in the locks and properties) and the store (ENOSPC), each on a 1 MiB tmpfs mounted
here (the tests need root, as the FUSE tests do: they fail rather than skip without it)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from tests.webdav.serving import serve_share

LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"
)
PROPPATCH = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:set><D:prop><Z:colour>{value}</Z:colour></D:prop></D:set></D:propertyupdate>"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at the end."""
    point = tmp_path / "tiny"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(folder: Path) -> Path:
    """Fill ``folder``'s file system to the last block; the filler's path."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            for _ in range(1 << 12):  # 16 MiB at most: the tmpfs is full long before
                os.write(fd, bytes(4096))
    finally:
        os.close(fd)
    return filler


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def assert_one_line(caplog: pytest.LogCaptureFixture) -> None:
    records = problems(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None
    assert "\n" not in records[0].getMessage()


def test_a_full_state_folder_is_507_with_one_log_line(
    tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_share(InMemoryStorage(), tiny / "state") as share:
        share.vfs.write_file("f.txt", b"f")
        share.vfs.write_file("g.txt", b"g")
        fill(tiny)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = share.request("LOCK", "f.txt", data=LOCK_BODY.format(owner="o" * 200_000))
        assert response.status_code == 507, response.text
        assert "Traceback" not in response.text
        assert_one_line(caplog)

        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = share.request(
                "PROPPATCH", "g.txt", data=PROPPATCH.format(value="b" * 200_000)
            )
        # refused whole (its mark of a write in progress cannot be stored), or per
        # property (RFC 4918 section 9.2.1) when only the properties' file is full
        assert response.status_code in (207, 507), response.text
        assert "507 Insufficient Storage" in response.text
        assert_one_line(caplog)
        os.unlink(tiny / "filler")
        assert share.request("LOCK", "f.txt", data=LOCK_BODY.format(owner="o")).ok


def test_a_full_store_is_507_with_one_log_line(
    tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tiny / "root"
    root.mkdir()
    with serve_share(FileSystemStorage(location=str(root)), tmp_path / "state") as share:
        share.request("PUT", "old.txt", data=b"old content")
        fill(tiny)
        for name, size in (("old.txt", 300_000), ("new.bin", 300_000), ("small.txt", 4096)):
            caplog.clear()
            with caplog.at_level(logging.INFO):
                response = share.request("PUT", name, data=b"x" * size)
            assert response.status_code == 507, (name, response.status_code, response.text)
            assert_one_line(caplog)

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b"y" * 8192

        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = share.request("PUT", "chunked.bin", data=chunks())
        assert response.status_code == 507, response.text
        assert_one_line(caplog)
        os.unlink(tiny / "filler")
        assert share.request("PUT", "big.bin", data=b"z" * 600_000).status_code == 201
        fill(tiny)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = share.request("COPY", "big.bin", headers={"Destination": share("copy.bin")})
        assert response.status_code == 507, response.text
        assert_one_line(caplog)
        os.unlink(tiny / "root" / "big.bin")
        assert (root / "old.txt").read_bytes() == b"old content"
        assert not (root / "new.bin").exists()
        assert sorted(p.name for p in root.iterdir()) == ["old.txt"]
