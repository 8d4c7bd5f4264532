"""An Azure endpoint that stops answering or goes away, mid-transfer and between requests:
the VFS raises StoreTimeout/StoreUnavailable, WebDAV answers 504/502, and the share keeps
serving once the endpoint is back. Each test runs its own Azurite; the storage's client
fails fast (no retries, short socket timeouts)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from django.core.exceptions import SuspiciousOperation

from davstore.errors import (
    Conflict,
    InvalidPath,
    NameTooLong,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from davstore.store import adapt
from davstore.store.azure import translate_error
from davstore.vfs import VFS
from tests.azure.azurite import AzuriteServer, EmulatorError, new_container
from tests.azure.conftest import quick_azure_storage
from tests.webdav.serving import serve_share

MiB = 1 << 20


@pytest.fixture
def own_azurite() -> Iterator[AzuriteServer]:
    server = AzuriteServer()
    try:
        server.start()
    except EmulatorError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def quick_storage(own_azurite: AzuriteServer) -> Any:
    return quick_azure_storage(own_azurite, new_container(own_azurite))


def test_an_endpoint_that_stops_answering_mid_read_times_out(
    own_azurite: AzuriteServer, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    data = os.urandom(8 * MiB)
    vfs.write_file("big.bin", data)
    with vfs.open_read("big.bin") as handle:
        assert handle.read(MiB) == data[:MiB]
        own_azurite.suspend()
        try:
            with pytest.raises(StoreTimeout):
                handle.read(4 * MiB)
        finally:
            own_azurite.resume()
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


def test_an_endpoint_that_goes_away_mid_read_is_unavailable(
    own_azurite: AzuriteServer, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    vfs.write_file("big.bin", os.urandom(8 * MiB))
    with vfs.open_read("big.bin") as handle:
        handle.read(MiB)
        own_azurite.stop()
        with pytest.raises(StoreUnavailable):
            handle.read(4 * MiB)


def test_webdav_answers_504_while_the_endpoint_hangs_and_recovers(
    own_azurite: AzuriteServer, quick_storage: Any, tmp_path: Path
) -> None:
    with serve_share(quick_storage, tmp_path / "state", cache_ttl=0) as share:
        assert share.request("PUT", "f.txt", data=b"hello").status_code in (200, 201, 204)
        own_azurite.suspend()
        try:
            assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 504
            assert share.request("GET", "f.txt").status_code == 504
        finally:
            own_azurite.resume()
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
        assert share.request("GET", "f.txt").content == b"hello"


def test_webdav_answers_502_while_the_endpoint_is_down_and_recovers(
    own_azurite: AzuriteServer, quick_storage: Any, tmp_path: Path
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
                    own_azurite.stop()
                received += chunk
        assert len(received) < len(data)
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 502
        assert share.request("PUT", "new.txt", data=b"x").status_code == 502
        back = AzuriteServer(own_azurite.port).start()  # a fresh folder: it starts empty
        try:
            back.service().create_container(quick_storage.azure_container)
            assert share.request("PUT", "again.txt", data=b"again").status_code in (201, 204)
            assert share.request("GET", "again.txt").content == b"again"
        finally:
            back.stop()


def test_a_missing_container_is_named(azurite: AzuriteServer) -> None:
    storage = quick_azure_storage(azurite, "no-such-container-here")
    with pytest.raises(StoreUnavailable, match="no-such-container-here"):
        VFS(adapt(storage)).listdir("")


def test_refused_credentials_are_unavailable(azurite: AzuriteServer, container: str) -> None:
    wrong = azurite.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    storage = quick_azure_storage(azurite, container, connection_string=wrong)
    with pytest.raises(StoreUnavailable, match="credentials"):
        VFS(adapt(storage)).listdir("")


def test_over_long_names_are_refused_before_any_request(storage: Any) -> None:
    vfs = VFS(adapt(storage))
    with pytest.raises(NameTooLong):
        vfs.write_file("x" * 1100, b"")


def _http(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    error = cls(message=code)
    error.status_code = status
    error.error_code = code
    return error


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_http(ResourceNotFoundError, 404, "BlobNotFound"), NotFound),
        (_http(ResourceNotFoundError, 404, "ContainerNotFound"), StoreUnavailable),
        (_http(ClientAuthenticationError, 403, "AuthenticationFailed"), StoreUnavailable),
        (_http(HttpResponseError, 403, "AuthorizationPermissionMismatch"), PermissionDenied),
        (_http(HttpResponseError, 503, "ServerBusy"), StoreUnavailable),
        (_http(HttpResponseError, 500, "OperationTimedOut"), StoreTimeout),
        (_http(ResourceModifiedError, 412, "ConditionNotMet"), Conflict),
        (_http(HttpResponseError, 400, "InvalidHeaderValue"), StoreError),
        (ServiceRequestError("refused"), StoreUnavailable),
        (ServiceResponseError("connection reset"), StoreUnavailable),
        (ServiceResponseTimeoutError("slow"), StoreTimeout),
        (SuspiciousOperation("no"), InvalidPath),
        (RuntimeError("odd"), StoreError),
    ],
)
def test_errors_are_translated_in_one_place(exc: BaseException, expected: type) -> None:
    error = translate_error(exc, "a.txt", container="ctr")
    assert type(error) is expected
    assert error.errno is not None
    assert error.path == "a.txt"
