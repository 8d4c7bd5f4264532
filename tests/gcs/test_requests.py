"""What each operation costs in GCS requests (docs/CLOUDS.md states these figures)."""

from __future__ import annotations

import concurrent.futures
import io
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from davstore.errors import StoreUnavailable
from davstore.store import adapt
from davstore.store.gcs import GCSStore
from davstore.testing import WebDAVDriver
from davstore.vfs import VFS
from tests.gcs.conftest import LOCATION
from tests.gcs.emulator import GCSEmulator
from tests.gcs.recording import Call, recording
from tests.webdav.serving import serve_share

MiB = 1 << 20


def gcs_store(storage: Any) -> GCSStore:
    store = adapt(storage)
    assert isinstance(store, GCSStore)
    return store


def fill(gcs: GCSEmulator, bucket: str, folder: str, count: int) -> None:
    target = gcs.client().bucket(bucket)

    def put(number: int) -> None:
        target.blob(f"{LOCATION}/{folder}/f{number:04}.txt").upload_from_string(b"x" * number)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def test_a_listing_of_1000_objects_is_one_list_call(
    storage: Any, gcs: GCSEmulator, bucket: str
) -> None:
    fill(gcs, bucket, "big", 1000)
    store = gcs_store(storage)
    with recording(store.bucket.client) as calls:
        entries = list(store.list("big"))
    assert calls.counts == {"list": 1}
    assert len(entries) == 1000
    assert {e.name: e.size for e in entries}["big/f0999.txt"] == 999
    assert all(e.mtime and e.etag and not e.is_dir for e in entries)

    vfs = VFS(store)
    with recording(store.bucket.client) as calls:
        for entry in vfs.listdir("big"):  # every stat is answered by the listing
            vfs.stat(entry.name)
    # The folder's own stat lists it (head carries the children): one request in all.
    assert calls.counts == {"list": 1}


def test_a_listing_past_1000_objects_pages(storage: Any, gcs: GCSEmulator, bucket: str) -> None:
    fill(gcs, bucket, "more", 1001)
    store = gcs_store(storage)
    with recording(store.bucket.client) as calls:
        assert len(list(store.list("more"))) == 1001
    # GCS gives at most 1000 per page; gcp-storage-emulator ignores maxResults (one page).
    assert 1 <= calls.counts["list"] <= 2
    assert set(calls.counts) == {"list"}
    assert all("maxResults=1000" in call.url for call in calls.of("list"))


def test_propfind_depth_1_on_1000_objects_gets_no_object(
    storage: Any, gcs: GCSEmulator, bucket: str, tmp_path: Path
) -> None:
    fill(gcs, bucket, "big", 1000)
    with serve_share(storage, tmp_path / "state") as share:
        store = share.vfs.store
        assert isinstance(store, GCSStore)
        with recording(store.bucket.client) as calls:
            listed = WebDAVDriver(share.url, share.session).listdir("big")
        assert len(listed) == 1000
    assert calls.counts["get"] == calls.counts["media"] == 0
    assert calls.counts["list"] == 1  # the folder's stat is its listing


def test_head_is_one_list_call(storage: Any) -> None:
    store = gcs_store(storage)
    store.make_dir("d")
    store.put("d/f.txt", io.BytesIO(b"hello"), 5)
    for name, is_dir in (("d", True), ("d/f.txt", False)):
        with recording(store.bucket.client) as calls:
            assert store.head(name).is_dir is is_dir
        assert calls.counts == {"list": 1}, name
    with recording(store.bucket.client) as calls, pytest.raises(FileNotFoundError):
        store.head("d/missing")
    assert calls.counts == {"list": 1}


def test_head_asks_again_when_siblings_fill_the_page(storage: Any) -> None:
    store = gcs_store(storage)
    store.head_page = 32
    for number in range(40):  # all sort between "x" and "x/"
        store.put(f"x.{number:02}", io.BytesIO(b""), 0)
    store.put("x/inner", io.BytesIO(b"i"), 1)
    store.put("x", io.BytesIO(b"file"), 4)
    assert store.head("x").is_dir
    assert store.head("x.39").size == 0


def test_a_ranged_read_fetches_only_the_range(storage: Any) -> None:
    store = gcs_store(storage)
    data = os.urandom(8 * MiB)
    store.put("big.bin", io.BytesIO(data), len(data))
    offset = 5 * MiB + 3
    with recording(store.bucket.client) as calls, store.open_read("big.bin", offset) as stream:
        assert stream.read(100) == data[offset : offset + 100]
    assert calls.counts == {"media": 1}
    start, end = calls.of("media")[0].headers["Range"].removeprefix("bytes=").split("-")
    assert int(start) == offset
    assert int(end) - offset < store.windows.first


def test_a_sequential_read_uses_growing_windows(storage: Any) -> None:
    store = gcs_store(storage)
    data = os.urandom(12 * MiB + 5)
    store.put("seq.bin", io.BytesIO(data), len(data))
    with recording(store.bucket.client) as calls, VFS(store).open_read("seq.bin") as handle:
        assert handle.read() == data
    # 1 + 2 + 4 MiB windows, then one of 8 MiB reaches the end.
    assert calls.counts == {"list": 1, "media": 4}


def test_reads_at_and_past_the_end_and_of_empty_objects(storage: Any) -> None:
    store = gcs_store(storage)
    store.put("empty", io.BytesIO(b""), 0)
    store.put("five", io.BytesIO(b"12345"), 5)
    with store.open_read("empty") as stream:
        assert stream.read() == b""
    with store.open_read("five", 5) as stream:
        assert stream.read(10) == b""
    with store.open_read("five", 99) as stream:
        assert stream.read() == b""
        stream.seek(1)
        assert stream.read() == b"2345"
    with pytest.raises(FileNotFoundError):
        store.open_read("missing")


def test_small_writes_are_one_upload_and_big_ones_resumable(storage: Any) -> None:
    store = gcs_store(storage)
    vfs = VFS(store)
    with recording(store.bucket.client) as calls:
        vfs.write_file("small.txt", b"small")
    assert calls.counts == {"list": 1, "upload": 1}  # the target's stat, then one upload
    data = os.urandom(20 * MiB + 1)
    with recording(store.bucket.client) as calls:
        vfs.write_file("big.bin", data)
    # A resumable upload: one request to start it and one per 8 MiB piece.
    assert calls.counts["upload"] == 4
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


@pytest.mark.parametrize("size", [100, 20 * MiB], ids=["one-request", "resumable"])
def test_a_failed_upload_keeps_the_old_object(storage: Any, size: int) -> None:
    store = gcs_store(storage)
    store.retry_deadline = 0
    vfs = VFS(store)
    vfs.write_file("keep.bin", b"the old content")

    def last_upload_fails(call: Call, _: int) -> BaseException | None:
        pieces = [c for c in calls.of("upload") if c.method == "PUT" or "uploadType" in c.url]
        if call.kind == "upload" and len(pieces) >= (1 if size < MiB else 3):
            return requests.ConnectionError("injected")
        return None

    with (
        recording(store.bucket.client, last_upload_fails) as calls,
        pytest.raises(StoreUnavailable),
    ):
        vfs.write_file("keep.bin", os.urandom(size))
    with vfs.open_read("keep.bin") as handle:
        assert handle.read() == b"the old content"


def test_write_parameters_come_from_the_storage(
    make_gcs_storage: Any, gcs: GCSEmulator, bucket: str
) -> None:
    storage = make_gcs_storage(object_parameters={"cache_control": "max-age=60"})
    vfs = VFS(gcs_store(storage))
    vfs.write_file("page.html", b"<p>hi</p>")
    blob = gcs.client().bucket(bucket).get_blob(f"{LOCATION}/page.html")
    assert blob.content_type == "text/html"
    assert blob.cache_control == "max-age=60"
    vfs.copy("page.html", "copy.txt")
    copied = gcs.client().bucket(bucket).get_blob(f"{LOCATION}/copy.txt")
    assert copied.download_as_bytes() == b"<p>hi</p>"


def test_copy_is_server_side(storage: Any) -> None:
    store = gcs_store(storage)
    data = os.urandom(2 * MiB)
    store.put("a.bin", io.BytesIO(data), len(data))
    with recording(store.bucket.client) as calls:
        info = store.copy("a.bin", "b.bin")
    assert calls.counts == {"rewrite": 1}
    assert info.size == len(data)
    with store.open_read("b.bin") as stream:
        assert stream.read() == data


def test_removing_a_folder_deletes_in_batches(storage: Any) -> None:
    store = gcs_store(storage)
    vfs = VFS(store)
    vfs.mkdir("t")
    vfs.mkdir("t/sub")
    for number in range(30):
        vfs.write_file(f"t/f{number}", b"x")
        vfs.write_file(f"t/sub/g{number}", b"y")
    with recording(store.bucket.client) as calls:
        vfs.remove_tree("t")
    assert calls.counts["batch"] == 3  # the 60 files, then each folder's markers
    assert calls.counts["delete"] == 0
    assert vfs.listdir("") == []


def test_an_exact_open_of_an_object_replaced_behind_the_vfs_is_one_get(
    storage: Any, gcs: GCSEmulator, bucket: str
) -> None:
    """``stream_info`` comes from the first window's answer: no list, no metadata GET."""
    store = gcs_store(storage)
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("x.bin", b"old")
    assert vfs.stat("x.bin").size == 3
    new = b"a newer, longer version"
    gcs.client().bucket(bucket).blob(f"{LOCATION}/x.bin").upload_from_string(new)
    assert vfs.stat("x.bin").size == 3, "still cached"
    with recording(store.bucket.client) as calls, vfs.open_read("x.bin", exact=True) as handle:
        assert handle.size == len(new)
        assert handle.read() == new
    # GCS names the version in the download's ETag header; gcp-storage-emulator sends
    # none, so on it the VFS asks for the metadata (one list) to learn the ETag.
    assert calls.counts["media"] == 1
    assert calls.counts["list"] <= 1
    assert set(calls.counts) <= {"media", "list"}
    assert vfs.stat("x.bin").size == len(new)


def test_head_of_a_folder_carries_its_listing(storage: Any) -> None:
    store = gcs_store(storage)
    vfs = VFS(store)
    vfs.mkdir("d")
    vfs.mkdir("d/empty")
    vfs.write_file("d/f.txt", b"hello")
    store.put("d/sub/deep/g.txt", io.BytesIO(b"g"), 1)
    store.put("d/both", io.BytesIO(b"file hidden by the folder"), 25)
    store.put("d/both/inner", io.BytesIO(b"i"), 1)
    store.put("d.bak", io.BytesIO(b"sibling"), 7)
    with recording(store.bucket.client) as calls:
        head = store.head("d")
    assert calls.counts == {"list": 1}
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
    files = {e.name: e for e in store.list("d")}
    assert [e for e in head.children if e.name == "d/f.txt"] == [files["d/f.txt"]]
    assert store.head("d/empty").children == ()
    assert store.head("d/f.txt").children is None
    assert store.head("d.bak").size == 7
