"""What each operation costs in S3 requests (docs/S3.md states these figures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError, EndpointConnectionError

from davstore.errors import StoreError, StoreUnavailable
from davstore.store import adapt
from davstore.store.s3 import S3Store
from davstore.testing import WebDAVDriver
from davstore.vfs import VFS
from tests.s3.conftest import LOCATION, S3StorageFactory
from tests.s3.moto import MotoServer
from tests.s3.recording import failing, recording
from tests.webdav.serving import serve_share

MiB = 1 << 20


def s3_store(storage: Any) -> S3Store:
    store = adapt(storage)
    assert isinstance(store, S3Store)
    return store


def fill(moto: MotoServer, bucket: str, folder: str, count: int) -> None:
    client = moto.client()
    for number in range(count):
        client.put_object(
            Bucket=bucket, Key=f"{LOCATION}/{folder}/f{number:04}.txt", Body=b"x" * number
        )


def test_a_listing_of_1000_objects_is_one_list_call_and_no_head(
    storage: Any, moto: MotoServer, bucket: str
) -> None:
    fill(moto, bucket, "big", 1000)
    store = s3_store(storage)
    with recording(store.client) as calls:
        entries = list(store.list("big"))
    assert calls.counts == {"ListObjectsV2": 1}
    assert len(entries) == 1000
    sizes = {e.name: e.size for e in entries}
    assert sizes["big/f0999.txt"] == 999
    assert all(e.mtime and e.etag and not e.is_dir for e in entries)

    vfs = VFS(store)
    with recording(store.client) as calls:
        folder = vfs.stat("big")
        listed = vfs.listdir("big")
        for entry in listed:  # every stat is answered by the listing
            vfs.stat(entry.name)
    # The folder's own stat lists it (head carries the children); never a HEAD.
    assert calls.counts == {"ListObjectsV2": 1}
    assert folder.is_dir and folder.children is None  # the VFS keeps them as the listing
    assert sorted(listed, key=lambda e: e.name) == sorted(entries, key=lambda e: e.name)
    assert [(e.size, e.mtime, e.etag) for e in sorted(listed, key=lambda e: e.name)] == [
        (e.size, e.mtime, e.etag) for e in sorted(entries, key=lambda e: e.name)
    ]


def test_a_listing_past_1000_objects_pages(storage: Any, moto: MotoServer, bucket: str) -> None:
    fill(moto, bucket, "more", 1001)
    store = s3_store(storage)
    with recording(store.client) as calls:
        assert len(list(store.list("more"))) == 1001
    assert calls.counts == {"ListObjectsV2": 2}
    with recording(store.client) as calls:
        folder = store.head("more")
    assert folder.is_dir and folder.children is None  # the page did not hold them all
    assert calls.counts == {"ListObjectsV2": 1}


def test_head_of_a_folder_carries_its_listing(storage: Any) -> None:
    store = s3_store(storage)
    vfs = VFS(store)
    vfs.mkdir("d")
    vfs.mkdir("d/empty")
    vfs.write_file("d/f.txt", b"hello")
    store.put("d/sub/deep/g.txt", _spool(b"g"), 1)
    store.put("d/both", _spool(b"file hidden by the folder"), 25)
    store.put("d/both/inner", _spool(b"i"), 1)
    store.put("d.bak", _spool(b"sibling"), 7)
    head = store.head("d")
    assert head.children is not None
    assert sorted(head.children, key=lambda e: e.name) == sorted(
        store.list("d"), key=lambda e: e.name
    )
    assert {(e.basename, e.is_dir) for e in head.children} == {
        ("empty", True),
        ("sub", True),
        ("both", True),
        ("f.txt", False),
    }
    assert store.head("d/empty").children == ()
    assert store.head("d/f.txt").children is None


def test_propfind_depth_1_on_1000_objects_makes_no_head(
    storage: Any, moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    fill(moto, bucket, "big", 1000)
    with serve_share(storage, tmp_path / "state") as share:
        store = share.vfs.store
        assert isinstance(store, S3Store)
        with recording(store.client) as calls:
            listed = WebDAVDriver(share.url, share.session).listdir("big")
        assert len(listed) == 1000
    # The folder's stat is its listing: one request for the whole PROPFIND.
    assert calls.counts == {"ListObjectsV2": 1}


def test_head_is_one_list_call(storage: Any) -> None:
    store = s3_store(storage)
    store.make_dir("d")
    store.put("d/f.txt", _spool(b"hello"), 5)
    for name, is_dir in (("d", True), ("d/f.txt", False)):
        with recording(store.client) as calls:
            assert store.head(name).is_dir is is_dir
        assert calls.counts == {"ListObjectsV2": 1}, name
    with recording(store.client) as calls, pytest.raises(FileNotFoundError):
        store.head("d/missing")
    assert calls.counts == {"ListObjectsV2": 1}


def test_head_asks_again_when_siblings_fill_the_page(storage: Any) -> None:
    store = s3_store(storage)
    store.head_page = 32
    for number in range(40):  # all sort between "x" and "x/"
        store.put(f"x.{number:02}", _spool(b""), 0)
    store.put("y", _spool(b"file"), 4)
    for number in range(40):
        store.put(f"y.{number:02}", _spool(b""), 0)
    store.put("x/inner", _spool(b"i"), 1)
    store.put("x", _spool(b"file"), 4)
    with recording(store.client) as calls:
        folder = store.head("x")
    assert folder.is_dir
    assert [e.name for e in folder.children or ()] == ["x/inner"]
    assert calls.counts == {"ListObjectsV2": 2}
    with recording(store.client) as calls:
        assert store.head("y").size == 4
    assert calls.counts == {"ListObjectsV2": 2}
    with recording(store.client) as calls, pytest.raises(FileNotFoundError):
        store.head("x.4")
    assert calls.counts == {"ListObjectsV2": 1}  # no key starts with "x.4"
    assert store.head("x.39").size == 0


def test_a_ranged_read_fetches_only_the_range(storage: Any) -> None:
    store = s3_store(storage)
    data = os.urandom(8 * MiB)
    store.put("big.bin", _spool(data), len(data))
    offset = 5 * MiB + 3
    with recording(store.client) as calls, store.open_read("big.bin", offset) as stream:
        assert stream.read(100) == data[offset : offset + 100]
    [get] = calls.of("GetObject")
    assert calls.counts == {"GetObject": 1}
    start, end = get.headers["Range"].removeprefix("bytes=").split("-")
    assert int(start) == offset
    assert int(end) - offset < store.read_window


def test_a_sequential_read_uses_growing_windows(storage: Any) -> None:
    store = s3_store(storage)
    data = os.urandom(12 * MiB + 5)
    store.put("seq.bin", _spool(data), len(data))
    vfs = VFS(store)
    with recording(store.client) as calls, vfs.open_read("seq.bin") as handle:
        assert handle.read() == data
    # 1 + 2 + 4 MiB windows, then one of 8 MiB reaches the end.
    assert calls.counts == {"ListObjectsV2": 1, "GetObject": 4}


def test_jumps_reopen_and_short_forward_jumps_read_through(storage: Any) -> None:
    store = s3_store(storage)
    data = os.urandom(24 * MiB)
    store.put("j.bin", _spool(data), len(data))
    with recording(store.client) as calls, store.open_read("j.bin") as stream:
        assert stream.read(10) == data[:10]
        stream.seek(100_000)  # inside the window, close ahead: read through
        assert stream.read(10) == data[100_000:100_010]
        stream.seek(5)  # a little behind: from memory
        assert stream.read(10) == data[5:15]
        assert calls.counts["GetObject"] == 1
        stream.seek(20 * MiB)  # far: a new ranged request of a first-size window
        assert stream.read(10) == data[20 * MiB : 20 * MiB + 10]
        assert calls.counts["GetObject"] == 2
        start, end = calls.of("GetObject")[1].headers["Range"].removeprefix("bytes=").split("-")
        assert (int(start), int(end) + 1 - int(start)) == (20 * MiB, store.read_window)
        stream.seek(30)  # far back, but still in memory
        assert stream.read(10) == data[30:40]
        stream.seek(len(data) + 10)
        assert stream.read(10) == b""
    assert calls.counts["GetObject"] == 2  # past the known end: no request


def test_reads_a_little_out_of_order_cost_what_sequential_ones_do(storage: Any) -> None:
    """FUSE reads of one file arrive from several threads, slightly out of order: they are
    served from the bytes kept and the windows keep growing."""
    store = s3_store(storage)
    data = os.urandom(12 * MiB + 5)
    store.put("ooo.bin", _spool(data), len(data))
    block = 128 << 10
    offsets = list(range(0, len(data), block))
    for i in range(0, len(offsets) - 2, 3):  # 0, 2, 1, 3, 5, 4, ...: one step back each time
        offsets[i + 1], offsets[i + 2] = offsets[i + 2], offsets[i + 1]
    with recording(store.client) as calls, store.open_read("ooo.bin") as stream:
        for offset in offsets:
            stream.seek(offset)
            assert stream.read(block) == data[offset : offset + block]
    # The same 1 + 2 + 4 + 8 MiB windows as a sequential read.
    assert calls.counts == {"GetObject": 4}


def test_the_next_window_is_fetched_ahead_and_errors_surface_on_the_read_that_needs_it(
    storage: Any,
) -> None:
    store = s3_store(storage)
    data = os.urandom(12 * MiB)
    store.put("ahead.bin", _spool(data), len(data))
    ranges: list[str] = []

    def third_fails(number: int) -> BaseException | None:
        return EndpointConnectionError(endpoint_url="http://injected") if number == 3 else None

    with (
        recording(store.client) as calls,
        failing(store.client, "GetObject", third_fails),
        store.open_read("ahead.bin") as stream,
    ):
        assert stream.read(3 * MiB) == data[: 3 * MiB]  # windows 1 and 2
        # Window 3 was asked for in the background while window 2 was read: its failure
        # waits for the read that needs its bytes, translated.
        with pytest.raises(StoreUnavailable):
            stream.read(MiB)
        assert stream.read(MiB) == data[3 * MiB : 4 * MiB]  # asked again
        ranges = [c.headers["Range"] for c in calls.of("GetObject")]
    # The failed request is not recorded (the injected failure comes first); the read
    # after it asks for the same window again.
    assert ranges[:3] == [
        f"bytes=0-{MiB - 1}",
        f"bytes={MiB}-{3 * MiB - 1}",
        f"bytes={3 * MiB}-{7 * MiB - 1}",
    ]


def test_close_cancels_the_read_ahead(storage: Any) -> None:
    import threading

    store = s3_store(storage)
    data = os.urandom(8 * MiB)
    store.put("c.bin", _spool(data), len(data))
    stream = store.open_read("c.bin")
    assert stream.read(MiB + 1) == data[: MiB + 1]  # window 2 open: window 3 fetched ahead
    stream.close()
    for thread in threading.enumerate():
        if thread.name.startswith("davstore-prefetch"):
            thread.join(10)
    assert not [t for t in threading.enumerate() if t.name.startswith("davstore-prefetch")]


def test_reads_at_and_past_the_end_and_of_empty_objects(storage: Any) -> None:
    store = s3_store(storage)
    store.put("empty", _spool(b""), 0)
    store.put("five", _spool(b"12345"), 5)
    with store.open_read("empty") as stream:
        assert stream.read() == b""
    with store.open_read("five", 5) as stream:
        assert stream.read(10) == b""
    with store.open_read("five", 99) as stream:
        assert stream.read() == b""
        stream.seek(1)
        assert stream.read() == b"2345"


def test_a_reader_never_mixes_two_versions(storage: Any) -> None:
    store = s3_store(storage)
    old, new = os.urandom(3 * MiB), os.urandom(3 * MiB)
    store.put("v.bin", _spool(old), len(old))
    with store.open_read("v.bin") as stream:
        assert stream.read(MiB) == old[:MiB]
        store.put("v.bin", _spool(new), len(new))
        with pytest.raises(OSError) as caught:
            stream.read(MiB)
    assert caught.value.errno is not None


def test_small_writes_are_one_put_and_big_ones_multipart(make_s3_storage: S3StorageFactory) -> None:
    config = TransferConfig(multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB)
    store = s3_store(make_s3_storage(transfer_config=config))
    vfs = VFS(store)
    with recording(store.client) as calls:
        vfs.write_file("small.txt", b"small")
    assert calls.counts == {"ListObjectsV2": 2, "PutObject": 1}  # target, then read back
    data = os.urandom(12 * MiB + 1)
    with recording(store.client) as calls:
        vfs.write_file("big.bin", data)
    assert calls.counts["UploadPart"] == 3
    assert calls.counts["CreateMultipartUpload"] == calls.counts["CompleteMultipartUpload"] == 1
    assert calls.counts["PutObject"] == 0
    assert vfs.stat("big.bin").etag.endswith("-3")  # type: ignore[union-attr]
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


def test_a_failed_multipart_upload_is_aborted_and_keeps_the_old_object(
    make_s3_storage: S3StorageFactory, moto: MotoServer, bucket: str
) -> None:
    config = TransferConfig(multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB)
    store = s3_store(make_s3_storage(transfer_config=config))
    vfs = VFS(store)
    vfs.write_file("keep.bin", b"the old content")

    def second_part_fails(number: int) -> BaseException | None:
        if number == 2:
            return EndpointConnectionError(endpoint_url="http://injected")
        return None

    with failing(store.client, "UploadPart", second_part_fails), pytest.raises(StoreUnavailable):
        vfs.write_file("keep.bin", os.urandom(12 * MiB))
    with vfs.open_read("keep.bin") as handle:
        assert handle.read() == b"the old content"
    pending = moto.client().list_multipart_uploads(Bucket=bucket)
    assert pending.get("Uploads", []) == []


def test_a_failed_put_keeps_the_old_object(storage: Any) -> None:
    store = s3_store(storage)
    vfs = VFS(store)
    vfs.write_file("p.txt", b"old")
    failure = ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "PutObject")
    with failing(store.client, "PutObject", lambda n: failure), pytest.raises(StoreError):
        vfs.write_file("p.txt", b"new")
    with vfs.open_read("p.txt") as handle:
        assert handle.read() == b"old"


def test_write_parameters_come_from_the_storage(
    make_s3_storage: S3StorageFactory, moto: MotoServer, bucket: str
) -> None:
    storage = make_s3_storage(
        default_acl="public-read", object_parameters={"CacheControl": "max-age=60"}
    )
    vfs = VFS(s3_store(storage))
    vfs.write_file("page.html", b"<p>hi</p>")
    client = moto.client()
    head = client.head_object(Bucket=bucket, Key=f"{LOCATION}/page.html")
    assert head["ContentType"] == "text/html"
    assert head["CacheControl"] == "max-age=60"
    grants = client.get_object_acl(Bucket=bucket, Key=f"{LOCATION}/page.html")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    vfs.copy("page.html", "copy.txt")
    assert client.head_object(Bucket=bucket, Key=f"{LOCATION}/copy.txt")["ContentType"] == (
        "text/plain"
    )


def test_copy_is_server_side(storage: Any) -> None:
    store = s3_store(storage)
    data = os.urandom(2 * MiB)
    store.put("a.bin", _spool(data), len(data))
    with recording(store.client) as calls:
        info = store.copy("a.bin", "b.bin")
    assert calls.counts == {"CopyObject": 1, "ListObjectsV2": 1}
    assert info.size == len(data)
    with store.open_read("b.bin") as stream:
        assert stream.read() == data


def test_big_copies_go_in_parts(storage: Any) -> None:
    store = s3_store(storage)
    store.copy_limit, store.copy_part_size = 6 * MiB, 5 * MiB
    data = os.urandom(11 * MiB)
    store.put("huge.bin", _spool(data), len(data))
    with recording(store.client) as calls:
        assert store.copy("huge.bin", "huge2.bin").size == len(data)
    assert calls.counts["UploadPartCopy"] == 3
    assert calls.counts["CopyObject"] == 0
    with store.open_read("huge2.bin") as stream:
        assert stream.read() == data


def test_removing_a_folder_deletes_in_batches(storage: Any) -> None:
    store = s3_store(storage)
    vfs = VFS(store)
    vfs.mkdir("t")
    vfs.mkdir("t/sub")
    for number in range(30):
        vfs.write_file(f"t/f{number}", b"x")
        vfs.write_file(f"t/sub/g{number}", b"y")
    with recording(store.client) as calls:
        vfs.remove_tree("t")
    assert calls.counts["DeleteObjects"] == 3  # the 60 files, then each folder's markers
    assert calls.counts["DeleteObject"] == 0
    assert vfs.listdir("") == []


def _spool(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_an_exact_open_of_an_object_replaced_behind_the_vfs_is_one_get(
    storage: Any, moto: MotoServer, bucket: str
) -> None:
    """``stream_info`` comes from the first window's answer: no list, no HEAD."""
    store = s3_store(storage)
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("x.bin", b"old")
    listed = vfs.stat("x.bin")
    with recording(store.client) as calls, vfs.open_read("x.bin", exact=True) as handle:
        assert handle.entry.mtime == listed.mtime  # same version: the listing's ms kept
    assert calls.counts == {"GetObject": 1}
    new = b"a newer, longer version"
    moto.client().put_object(Bucket=bucket, Key=f"{LOCATION}/x.bin", Body=new)
    assert vfs.stat("x.bin").size == 3, "still cached"
    with recording(store.client) as calls, vfs.open_read("x.bin", exact=True) as handle:
        assert handle.size == len(new)
        assert handle.read() == new
    assert calls.counts == {"GetObject": 1}
    head = moto.client().head_object(Bucket=bucket, Key=f"{LOCATION}/x.bin")
    entry = vfs.stat("x.bin")
    assert (entry.size, entry.etag) == (len(new), head["ETag"].strip('"'))
    assert entry.mtime == head["LastModified"].timestamp()
