"""Bad input gets a clear answer and never reaches the Storage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.base import ContentFile

from tests.minimal_storages import MinimalStorage
from tests.webdav.rawhttp import raw_request
from tests.webdav.serving import Share, serve_share


class RecordingStorage(MinimalStorage):
    """A MinimalStorage that records every name any method is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.calls_lock = threading.Lock()

    def _record(self, method: str, name: str) -> None:
        with self.calls_lock:
            self.calls.append((method, name))

    def _open(self, name: str, mode: str = "rb") -> Any:
        self._record("open", name)
        return super()._open(name, mode)

    def _save(self, name: str, content: Any) -> str:
        self._record("save", name)
        return super()._save(name, content)

    def exists(self, name: str) -> bool:
        self._record("exists", name)
        return super().exists(name)

    def delete(self, name: str) -> None:
        self._record("delete", name)
        super().delete(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        self._record("listdir", path)
        return super().listdir(path)

    def size(self, name: str) -> int:
        self._record("size", name)
        return super().size(name)

    def get_modified_time(self, name: str) -> Any:
        self._record("mtime", name)
        return super().get_modified_time(name)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    """One server for the module: no bad request may change anything anyway."""
    storage = RecordingStorage()
    storage.save("ok.txt", ContentFile(b"ok"))
    storage.save("dir/inner.txt", ContentFile(b"inner"))
    state = tmp_path_factory.mktemp("state")
    with serve_share(storage, state, cache_ttl=0) as share:
        yield share


BAD_TARGETS = [
    "/../etc/passwd",
    "/dir/../../etc/passwd",
    "/dir/..",
    "/%2e%2e/etc/passwd",
    "/%2E%2E%2Fetc%2Fpasswd",
    "/dir%5c..%5cok.txt",
    "/dir\\..\\ok.txt",
    "/ok%00.txt",
    "/ok%01.txt",
    "/%252e%252e/etc/passwd",
    "/%25%32%65%25%32%65/x",
    "//etc/passwd",
    "/" + "x" * 300,
    "/" + "abcdefghi/" * 120 + "f",
    "/.davstore-folder",
    "/dir/.davstore-upload-x",
    "/%ff%fe.txt",
]


@pytest.mark.parametrize("target", BAD_TARGETS, ids=lambda t: t[:40])
@pytest.mark.parametrize("method", ["GET", "PUT", "PROPFIND", "DELETE", "MKCOL"])
def test_bad_paths_never_reach_the_storage(recorded: Share, method: str, target: str) -> None:
    storage = recorded.storage
    assert isinstance(storage, RecordingStorage)
    storage.calls.clear()
    body = b"payload" if method == "PUT" else b""
    status, _ = raw_request(recorded.url, method, target, body=body)
    assert status in (400, 403, 404), status
    assert storage.calls == []
    assert sorted(storage.objects) == ["dir/inner.txt", "ok.txt"]


def test_an_encoded_slash_in_the_request_path_is_a_separator(recorded: Share) -> None:
    """The HTTP server decodes the request path whole (as PEP 3333 asks), so
    ``%2F`` arrives as ``/``: it names the file below the folder, never anything outside
    the share (``..`` is refused after decoding, see BAD_TARGETS)."""
    status, body = raw_request(recorded.url, "GET", "/dir%2finner.txt")
    assert status == 200
    assert body.endswith(b"\r\n\r\ninner")


BAD_DESTINATIONS = [
    "/../escaped.txt",
    "/dir/../../escaped.txt",
    "/%2e%2e/escaped.txt",
    "/%252e%252e/escaped.txt",
    "/dir%2fescaped.txt",
    "/dir%5cescaped.txt",
    "/esc%00aped.txt",
    "//etc/escaped.txt",
    "/" + "y" * 300,
]


@pytest.mark.parametrize("destination", BAD_DESTINATIONS, ids=lambda t: t[:40])
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_bad_destinations_never_reach_the_storage(
    recorded: Share, method: str, destination: str
) -> None:
    storage = recorded.storage
    assert isinstance(storage, RecordingStorage)
    for absolute in (True, False):
        storage.calls.clear()
        header = recorded.url + destination if absolute else destination
        status, _ = raw_request(recorded.url, method, "/ok.txt", headers={"Destination": header})
        # "//host/x" alone names another host: wsgidav answers 502 (no cross-server copy).
        assert status in (400, 403, 404, 502), status
        # Only the (valid) source may have been looked at.
        assert {name for _, name in storage.calls} <= {"", "ok.txt"}
    assert sorted(storage.objects) == ["dir/inner.txt", "ok.txt"]


def test_good_requests_still_work_after_bad_ones(recorded: Share) -> None:
    raw_request(recorded.url, "GET", "/../etc/passwd")
    status, body = raw_request(recorded.url, "GET", "/dir/inner.txt")
    assert status == 200
    assert body.endswith(b"inner")
