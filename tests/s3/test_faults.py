"""An S3 endpoint that stops answering or goes away, mid-transfer and between requests:
the VFS raises StoreTimeout/StoreUnavailable, WebDAV answers 504/502, and the share keeps
serving once the endpoint is back. Each test runs its own moto server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from davstore.errors import StoreTimeout, StoreUnavailable
from davstore.store import adapt
from davstore.vfs import VFS
from tests.s3.conftest import s3_storage
from tests.s3.moto import MotoServer, new_bucket, running_moto
from tests.s3.recording import failing
from tests.webdav.serving import serve_share

MiB = 1 << 20
#: Fail fast: one attempt, short timeouts (the storage's own client config).
QUICK = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def quick_storage(own_moto: MotoServer) -> Any:
    return s3_storage(own_moto, new_bucket(own_moto), client_config=QUICK)


def test_an_endpoint_that_stops_answering_mid_read_times_out(
    own_moto: MotoServer, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    data = os.urandom(8 * MiB)
    vfs.write_file("big.bin", data)
    with vfs.open_read("big.bin") as handle:
        assert handle.read(MiB) == data[:MiB]
        own_moto.suspend()
        try:
            with pytest.raises(StoreTimeout):
                handle.read(4 * MiB)
        finally:
            own_moto.resume()
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


def test_an_endpoint_that_goes_away_mid_read_is_unavailable(
    own_moto: MotoServer, quick_storage: Any
) -> None:
    vfs = VFS(adapt(quick_storage))
    vfs.write_file("big.bin", os.urandom(8 * MiB))
    with vfs.open_read("big.bin") as handle:
        handle.read(MiB)
        own_moto.stop()
        with pytest.raises(StoreUnavailable):
            handle.read(4 * MiB)


def test_webdav_answers_504_while_the_endpoint_hangs_and_recovers(
    own_moto: MotoServer, quick_storage: Any, tmp_path: Path
) -> None:
    with serve_share(quick_storage, tmp_path / "state", cache_ttl=0) as share:
        assert share.request("PUT", "f.txt", data=b"hello").status_code in (200, 201, 204)
        own_moto.suspend()
        try:
            assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 504
            assert share.request("GET", "f.txt").status_code == 504
        finally:
            own_moto.resume()
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
        assert share.request("GET", "f.txt").content == b"hello"


def test_webdav_answers_502_while_the_endpoint_is_down_and_recovers(
    own_moto: MotoServer, quick_storage: Any, tmp_path: Path
) -> None:
    with serve_share(quick_storage, tmp_path / "state", cache_ttl=0) as share:
        data = os.urandom(8 * MiB)
        assert share.request("PUT", "big.bin", data=data).status_code in (200, 201, 204)
        # Down in the middle of a GET: the client gets less than it was promised.
        received = b""
        with (
            pytest.raises(requests.RequestException),
            share.request("GET", "big.bin", stream=True, timeout=30) as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_content(256 << 10):
                if not received:
                    own_moto.stop()
                received += chunk
        assert len(received) < len(data)
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 502
        assert share.request("PUT", "new.txt", data=b"x").status_code == 502
        # Back on the same port (moto starts empty): the same share serves again.
        back = MotoServer(own_moto.port).start()
        try:
            back.client().create_bucket(Bucket=quick_storage.bucket_name)
            assert share.request("PUT", "again.txt", data=b"again").status_code in (201, 204)
            assert share.request("GET", "again.txt").content == b"again"
        finally:
            back.stop()


def test_throttling_and_refused_credentials_are_502(storage: Any, tmp_path: Path) -> None:
    with serve_share(storage, tmp_path / "state", cache_ttl=0) as share:
        client = share.vfs.store.client  # type: ignore[attr-defined]
        for code in ("SlowDown", "InvalidAccessKeyId"):
            error = ClientError({"Error": {"Code": code, "Message": code}}, "ListObjectsV2")
            with failing(client, "ListObjectsV2", lambda n, e=error: e):
                response = share.request("PROPFIND", "", headers={"Depth": "1"})
            assert response.status_code == 502, code
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
