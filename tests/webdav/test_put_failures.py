"""A PUT that breaks off, fails at the store or is too large leaves the old content."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import FileSystemStorage

from tests.minimal_storages import MinimalStorage
from tests.webdav.rawhttp import basic_auth
from tests.webdav.serving import Share, serve_share

OLD = b"the old content\n" * 100


def break_off_put(share: Share, path: str, *, declared: int, sent: bytes) -> None:
    """Send PUT headers announcing ``declared`` bytes, send ``sent``, then hang up."""
    parts = urlsplit(share.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"PUT /{path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: {basic_auth()}\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode() + sent)
        time.sleep(0.2)
        sock.shutdown(socket.SHUT_RDWR)


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def stray_files(share: Share) -> list[str]:
    """Files on disk that are not what the share shows (staged uploads left behind)."""
    storage = share.storage
    if not isinstance(storage, FileSystemStorage):
        return []
    found = []
    for folder, _, names in os.walk(storage.location):
        found += [os.path.join(folder, n) for n in names if n.startswith(".")]
    return found


def test_client_disconnect_midway_keeps_the_old_content(share: Share) -> None:
    share.request("PUT", "doc.bin", data=OLD)
    break_off_put(share, "doc.bin", declared=1 << 20, sent=b"N" * (1 << 19))
    assert wait_until(lambda: not share.vfs._handles_within(""))
    assert share.request("GET", "doc.bin").content == OLD
    assert stray_files(share) == []
    assert_no_partial(share)


def test_client_disconnect_on_a_new_file_leaves_nothing(share: Share) -> None:
    break_off_put(share, "fresh.bin", declared=1 << 20, sent=b"N" * 1000)
    assert wait_until(lambda: not share.vfs._handles_within(""))
    assert share.request("GET", "fresh.bin").status_code == 404
    assert stray_files(share) == []


def assert_no_partial(share: Share) -> None:
    listing = share.request("PROPFIND", "", headers={"Depth": "1"})
    assert listing.status_code == 207
    assert ".davstore" not in listing.text


class FailingStorage(MinimalStorage):
    """The next ``failures`` saves fail, as a backend with a hiccup would."""

    failures = 0

    def _save(self, name: str, content: Any) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the disk is on fire")
        return super()._save(name, content)


def test_store_failure_is_5xx_and_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FailingStorage()
    with serve_share(storage, tmp_path / "state") as share:
        assert share.request("PUT", "f.txt", data=OLD).status_code == 201
        storage.failures = 1
        with caplog.at_level(logging.ERROR):
            response = share.request("PUT", "f.txt", data=b"new content")
        assert 500 <= response.status_code < 600
        assert "the disk is on fire" in caplog.text
        assert share.request("GET", "f.txt").content == OLD
        storage.failures = 1
        assert share.request("PUT", "new.txt", data=b"new").status_code >= 500
        assert share.request("GET", "new.txt").status_code == 404
        assert share.request("PUT", "g.txt", data=b"g").status_code == 201
        assert share.request("GET", "g.txt").content == b"g"


@pytest.mark.parametrize("store_kind", ["filesystem", "memory"], indirect=True)
def test_max_upload_size_by_content_length(storage: Any, tmp_path: Path) -> None:
    with serve_share(storage, tmp_path / "state", max_upload_size=1000) as share:
        share.request("PUT", "f.txt", data=b"small")
        response = share.request("PUT", "f.txt", data=b"x" * 1001)
        assert response.status_code == 413
        assert share.request("PUT", "edge.txt", data=b"x" * 1000).status_code == 201
        assert share.request("GET", "f.txt").content == b"small"


@pytest.mark.parametrize("store_kind", ["filesystem", "memory"], indirect=True)
def test_max_upload_size_chunked(storage: Any, tmp_path: Path) -> None:
    def body() -> Any:
        for _ in range(20):
            yield b"y" * 100

    with serve_share(storage, tmp_path / "state", max_upload_size=1000) as share:
        share.request("PUT", "f.txt", data=b"small")
        response = share.request("PUT", "f.txt", data=body())
        assert response.status_code == 413
        assert share.request("GET", "f.txt").content == b"small"
        assert share.request("PUT", "new.txt", data=body()).status_code == 413
        assert share.request("GET", "new.txt").status_code == 404
        assert stray_files(share) == []
