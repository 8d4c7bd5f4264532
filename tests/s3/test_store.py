"""The S3 adapter's own rules: folders and markers, the location prefix, adapter choice,
error translation, many threads."""

from __future__ import annotations

import concurrent.futures
import io
import logging
import os
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from django.core.exceptions import SuspiciousOperation

from davstore.errors import (
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from davstore.store import GenericStore, adapt
from davstore.store.s3 import S3Store, translate_error
from davstore.store.threaded import ThreadedStore
from davstore.vfs import VFS
from tests.s3.conftest import LOCATION, S3StorageFactory
from tests.s3.moto import MotoServer


def test_other_tools_folder_markers_make_folders_and_are_never_listed(
    storage: Any, moto: MotoServer, bucket: str
) -> None:
    client = moto.client()
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/", Body=b"")  # a root marker
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/console-made/", Body=b"")
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/with-file/", Body=b"")
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/with-file/a.txt", Body=b"a")
    vfs = VFS(adapt(storage))
    assert {e.name: e.is_dir for e in vfs.listdir("")} == {"console-made": True, "with-file": True}
    assert vfs.listdir("console-made") == []
    assert [e.name for e in vfs.listdir("with-file")] == ["with-file/a.txt"]
    vfs.remove_tree("console-made")  # its marker goes too
    assert [e.name for e in vfs.listdir("")] == ["with-file"]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert f"{LOCATION}/console-made/" not in keys


def test_davstore_markers_keep_empty_folders_and_stay_hidden(
    storage: Any, moto: MotoServer, bucket: str
) -> None:
    vfs = VFS(adapt(storage))
    vfs.mkdir("empty")
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"{LOCATION}/empty/.davstore-folder"]
    assert vfs.listdir("empty") == []
    assert VFS(adapt(storage)).stat("empty").is_dir  # seen by another replica
    vfs.rmdir("empty")
    assert moto.client().list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_a_folder_hides_a_same_named_file(storage: Any, moto: MotoServer, bucket: str) -> None:
    client = moto.client()
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/x", Body=b"file")
    client.put_object(Bucket=bucket, Key=f"{LOCATION}/x/y", Body=b"inner")
    store = adapt(storage)
    assert store.head("x").is_dir
    assert [(e.name, e.is_dir) for e in store.list("")] == [("x", True)]


def test_nothing_outside_the_location_is_reachable(
    storage: Any, make_s3_storage: S3StorageFactory, moto: MotoServer, bucket: str
) -> None:
    moto.client().put_object(Bucket=bucket, Key="outside.txt", Body=b"secret")
    vfs = VFS(adapt(storage))
    assert vfs.listdir("") == []
    vfs.write_file("inside.txt", b"in")
    with pytest.raises(InvalidPath):
        vfs.stat("../outside.txt")
    whole = VFS(adapt(make_s3_storage(location="")))
    assert sorted(e.name for e in whole.listdir("")) == ["outside.txt", "some"]


def test_list_of_a_file_or_missing_folder(storage: Any) -> None:
    store = adapt(storage)
    VFS(store).write_file("f.txt", b"x")
    with pytest.raises(NotADirectoryError):
        list(store.list("f.txt"))
    with pytest.raises(NotFound):
        list(store.list("nowhere"))
    assert list(store.list("")) != []


def test_url_comes_from_the_storage(storage: Any) -> None:
    store = adapt(storage)
    assert store.url("a b.txt") == storage.url("a b.txt")


def test_adapt_falls_back_where_bytes_are_stored_differently(
    make_s3_storage: S3StorageFactory,
) -> None:
    from storages.backends.s3 import S3Storage

    class Encrypting(S3Storage):  # type: ignore[misc]
        def _save(self, name: str, content: Any) -> str:
            return str(super()._save(name, content))

    assert isinstance(adapt(make_s3_storage()), S3Store)
    assert type(adapt(make_s3_storage(gzip=True))) is GenericStore
    storage = make_s3_storage()
    storage.__class__ = Encrypting
    assert type(adapt(storage)) is GenericStore


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("NoSuchKey", 404), NotFound),
        (_client_error("404", 404), NotFound),
        (_client_error("AccessDenied", 403), PermissionDenied),
        (_client_error("InvalidAccessKeyId", 403), StoreUnavailable),
        (_client_error("SignatureDoesNotMatch", 403), StoreUnavailable),
        (_client_error("NoSuchBucket", 404), StoreUnavailable),
        (_client_error("SlowDown", 503), StoreUnavailable),
        (_client_error("Throttling"), StoreUnavailable),
        (_client_error("RequestTimeout"), StoreTimeout),
        (_client_error("PreconditionFailed", 412), Conflict),
        (_client_error("InternalError", 500), StoreError),
        (EndpointConnectionError(endpoint_url="http://x"), StoreUnavailable),
        (ConnectTimeoutError(endpoint_url="http://x"), StoreTimeout),
        (ReadTimeoutError(endpoint_url="http://x"), StoreTimeout),
        (NoCredentialsError(), PermissionDenied),
        (SuspiciousOperation("no"), InvalidPath),
        (RuntimeError("odd"), StoreError),
    ],
)
def test_errors_are_translated_in_one_place(exc: BaseException, expected: type) -> None:
    error = translate_error(exc, "a.txt", bucket="bkt")
    assert type(error) is expected
    assert error.errno is not None
    assert error.path == "a.txt"


def test_a_missing_bucket_is_named(make_s3_storage: S3StorageFactory) -> None:
    vfs = VFS(adapt(make_s3_storage(bucket_name="no-such-bucket-here")))
    with pytest.raises(StoreUnavailable, match="no-such-bucket-here"):
        vfs.listdir("")


@pytest.mark.parametrize("threaded", [False, True], ids=["direct", "threaded"])
def test_many_threads_share_one_adapter(storage: Any, threaded: bool) -> None:
    store = adapt(storage)
    vfs = VFS(ThreadedStore(store, workers=8) if threaded else store)
    vfs.mkdir("t")
    blobs = {f"t/f{n}.bin": os.urandom(50_000 + n) for n in range(32)}

    def work(name: str) -> None:
        vfs.write_file(name, blobs[name])
        with vfs.open_read(name) as handle:
            assert handle.read() == blobs[name]
        assert vfs.stat(name).size == len(blobs[name])
        vfs.listdir("t")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(work, blobs))
    assert {e.name for e in vfs.listdir("t")} == set(blobs)
    if isinstance(vfs.store, ThreadedStore):
        vfs.store.close()


def test_an_upload_spools_to_disk_past_the_memory_limit(storage: Any, tmp_path: Any) -> None:
    store = adapt(storage)
    upload = store.start_upload("s.bin", spool_dir=str(tmp_path), spool_memory=1000)
    upload.file.write(b"y" * 5000)
    assert upload.file._rolled  # type: ignore[attr-defined]  # on disk (unlinked), not in memory
    assert upload.commit().size == 5000
    with store.open_read("s.bin") as stream:
        assert stream.read() == b"y" * 5000


def test_keys_hold_1024_bytes_with_the_location(make_s3_storage: S3StorageFactory) -> None:
    """S3 keys hold 1024 bytes: the share's paths hold that less the location prefix (and
    a folder's path room for its marker), not the 4096 of a local disk."""
    from davstore.errors import NameTooLong

    store = adapt(make_s3_storage())
    limit = 1024 - len(f"{LOCATION}/")
    assert store.capabilities.max_path_bytes == limit
    vfs = VFS(store)
    longest = "/".join([*["d" * 200] * 4, "f" * (limit - 4 * 201)])
    assert len(longest.encode()) == limit
    folder = longest.rpartition("/")[0]
    for depth in range(1, 5):
        vfs.mkdir("/".join(folder.split("/")[:depth]))
    vfs.write_file(longest, b"held")
    assert vfs.stat(longest).size == 4
    with pytest.raises(NameTooLong):
        vfs.write_file(longest + "x", b"")
    with pytest.raises(NameTooLong):  # no room for the marker
        vfs.mkdir("/".join([*["d" * 200] * 4, "e" * (limit - 4 * 201 - 10)]))


def test_a_failed_upload_whose_abort_fails_logs_one_line_each(
    storage: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multipart upload that fails at its end and whose abort fails too: the caller gets
    the store's error, the log one line for the abort (no traceback), nothing is stored."""
    store = adapt(storage)
    assert isinstance(store, S3Store)

    def refuse(**_: Any) -> None:
        raise _client_error("InternalError", 500)

    monkeypatch.setattr(store.client, "complete_multipart_upload", refuse)
    monkeypatch.setattr(store.client, "abort_multipart_upload", refuse)
    size = 9 << 20  # past the default 8 MiB threshold: a multipart upload
    with caplog.at_level(logging.WARNING, logger="davstore.store.s3"), pytest.raises(StoreError):
        store.put("big.bin", io.BytesIO(os.urandom(size)), size)
    aborts = [r for r in caplog.records if "could not abort" in r.getMessage()]
    assert len(aborts) == 1 and aborts[0].exc_info is None, caplog.text
    assert "InternalError" in aborts[0].getMessage()
    assert "Traceback" not in caplog.text
    with pytest.raises(NotFound):
        store.head("big.bin")
