"""A GCS endpoint that stops answering or goes away, mid-transfer and between requests:
the VFS raises StoreTimeout/StoreUnavailable, WebDAV answers 504/502, and the share keeps
serving once the endpoint is back. Each test runs its own emulator; the adapter is set to
fail fast (short timeouts, no retries)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.exceptions import SuspiciousOperation
from google.api_core import exceptions as api
from google.auth.exceptions import RefreshError

from davstore.errors import (
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from davstore.store import adapt
from davstore.store.gcs import GCSStore, translate_error
from davstore.vfs import VFS
from tests.gcs.conftest import gcs_storage
from tests.gcs.emulator import EmulatorError, GCSEmulator, new_bucket
from tests.webdav.serving import serve_share

MiB = 1 << 20


@pytest.fixture
def own_gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GCSEmulator]:
    server = GCSEmulator()
    try:
        server.start()
    except EmulatorError as exc:
        pytest.fail(str(exc))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    monkeypatch.setattr(GCSStore, "timeout", 2.0)
    monkeypatch.setattr(GCSStore, "retry_deadline", 0.0)
    yield server
    server.stop()


@pytest.fixture
def quick_storage(own_gcs: GCSEmulator) -> Any:
    return gcs_storage(new_bucket(own_gcs))


def test_an_endpoint_that_stops_answering_mid_read_times_out(
    own_gcs: GCSEmulator, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    data = os.urandom(8 * MiB)
    vfs.write_file("big.bin", data)
    with vfs.open_read("big.bin") as handle:
        assert handle.read(MiB) == data[:MiB]
        own_gcs.suspend()
        try:
            with pytest.raises(StoreTimeout):
                handle.read(4 * MiB)
        finally:
            own_gcs.resume()
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


def test_an_endpoint_that_goes_away_mid_read_is_unavailable(
    own_gcs: GCSEmulator, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    vfs.write_file("big.bin", os.urandom(8 * MiB))
    with vfs.open_read("big.bin") as handle:
        handle.read(MiB)
        own_gcs.stop()
        with pytest.raises(StoreUnavailable):
            handle.read(4 * MiB)


def test_webdav_answers_504_while_the_endpoint_hangs_and_recovers(
    own_gcs: GCSEmulator, quick_storage: Any, tmp_path: Path
) -> None:
    with serve_share(quick_storage, tmp_path / "state", cache_ttl=0) as share:
        assert share.request("PUT", "f.txt", data=b"hello").status_code in (200, 201, 204)
        own_gcs.suspend()
        try:
            assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 504
            assert share.request("GET", "f.txt").status_code == 504
        finally:
            own_gcs.resume()
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
        assert share.request("GET", "f.txt").content == b"hello"


def test_webdav_answers_502_while_the_endpoint_is_down_and_recovers(
    own_gcs: GCSEmulator, quick_storage: Any, tmp_path: Path
) -> None:
    with serve_share(quick_storage, tmp_path / "state", cache_ttl=0) as share:
        data = os.urandom(8 * MiB)
        assert share.request("PUT", "big.bin", data=data).status_code in (200, 201, 204)
        received = b""
        with (
            pytest.raises(requests.RequestException),
            share.request("GET", "big.bin", stream=True, timeout=30) as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_content(256 << 10):
                if not received:
                    own_gcs.stop()
                received += chunk
        assert len(received) < len(data)
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 502
        assert share.request("PUT", "new.txt", data=b"x").status_code == 502
        back = GCSEmulator(own_gcs.port).start()  # in memory: it starts empty
        try:
            back.client().create_bucket(quick_storage.bucket_name)
            assert share.request("PUT", "again.txt", data=b"again").status_code in (201, 204)
            assert share.request("GET", "again.txt").content == b"again"
        finally:
            back.stop()


def test_a_missing_bucket_is_named(gcs: Any) -> None:
    vfs = VFS(adapt(gcs_storage("no-such-bucket-here")))
    with pytest.raises(StoreUnavailable, match="no-such-bucket-here"):
        vfs.listdir("")


def _api(cls: type[api.GoogleAPICallError]) -> BaseException:
    return cls("injected")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_api(api.NotFound), NotFound),
        (_api(api.Forbidden), PermissionDenied),
        (_api(api.Unauthorized), StoreUnavailable),
        (_api(api.TooManyRequests), StoreUnavailable),
        (_api(api.ServiceUnavailable), StoreUnavailable),
        (_api(api.BadGateway), StoreUnavailable),
        (_api(api.GatewayTimeout), StoreTimeout),
        (_api(api.PreconditionFailed), Conflict),
        (_api(api.InternalServerError), StoreError),
        (api.RetryError("gave up", cause=api.ServiceUnavailable("busy")), StoreUnavailable),
        (requests.ConnectionError("refused"), StoreUnavailable),
        (requests.ReadTimeout("slow"), StoreTimeout),
        (requests.ConnectTimeout("slow"), StoreTimeout),
        (RefreshError("no token"), StoreUnavailable),
        (
            SuspiciousOperation("no"),
            InvalidPath,
        ),
        (RuntimeError("odd"), StoreError),
    ],
)
def test_errors_are_translated_in_one_place(exc: BaseException, expected: type) -> None:
    error = translate_error(exc, "a.txt", bucket="bkt")
    assert type(error) is expected
    assert error.errno is not None
    assert error.path == "a.txt"
