"""What each operation costs in Azure Blob requests (docs/CLOUDS.md states these figures)."""

from __future__ import annotations

import concurrent.futures
import io
import os
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from davstore.errors import StoreUnavailable
from davstore.store import adapt
from davstore.store.azure import AzureStore
from davstore.testing import WebDAVDriver
from davstore.vfs import VFS
from tests.azure.azurite import AzuriteServer
from tests.azure.conftest import LOCATION
from tests.azure.recording import Call, recording
from tests.webdav.serving import serve_share

MiB = 1 << 20


def azure_store(storage: Any) -> AzureStore:
    store = adapt(storage)
    assert isinstance(store, AzureStore)
    return store


def fill(azurite: AzuriteServer, container: str, folder: str, count: int) -> None:
    client = azurite.service().get_container_client(container)

    def put(number: int) -> None:
        client.upload_blob(f"{LOCATION}/{folder}/f{number:04}.txt", b"x" * number)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def test_a_listing_of_1000_blobs_is_one_list_call(
    storage: Any, azurite: AzuriteServer, container: str
) -> None:
    fill(azurite, container, "big", 1000)
    store = azure_store(storage)
    with recording(store.client) as calls:
        entries = list(store.list("big"))
    assert calls.counts == {"list": 1}
    assert len(entries) == 1000
    assert {e.name: e.size for e in entries}["big/f0999.txt"] == 999
    assert all(e.mtime and e.etag and not e.is_dir for e in entries)

    vfs = VFS(store)
    with recording(store.client) as calls:
        for entry in vfs.listdir("big"):  # every stat is answered by the listing
            vfs.stat(entry.name)
    # The folder's own stat lists it (head carries the children): one request in all.
    assert calls.counts == {"list": 1}


def test_a_listing_pages(
    storage: Any, azurite: AzuriteServer, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(azurite, container, "more", 1000)
    monkeypatch.setattr("davstore.store.azure._LIST_PAGE", 400)
    store = azure_store(storage)
    with recording(store.client) as calls:
        assert len(list(store.list("more"))) == 1000
    assert calls.counts == {"list": 3}


def test_propfind_depth_1_on_1000_blobs_gets_no_blob(
    storage: Any, azurite: AzuriteServer, container: str, tmp_path: Path
) -> None:
    fill(azurite, container, "big", 1000)
    with serve_share(storage, tmp_path / "state") as share:
        store = share.vfs.store
        assert isinstance(store, AzureStore)
        with recording(store.client) as calls:
            listed = WebDAVDriver(share.url, share.session).listdir("big")
        assert len(listed) == 1000
    assert calls.counts["get"] == calls.counts["properties"] == 0
    assert calls.counts["list"] == 1  # the folder's stat is its listing


def test_head_is_one_list_call(storage: Any) -> None:
    store = azure_store(storage)
    store.make_dir("d")
    store.put("d/f.txt", io.BytesIO(b"hello"), 5)
    for name, is_dir in (("d", True), ("d/f.txt", False)):
        with recording(store.client) as calls:
            assert store.head(name).is_dir is is_dir
        assert calls.counts == {"list": 1}, name
    with recording(store.client) as calls, pytest.raises(FileNotFoundError):
        store.head("d/missing")
    assert calls.counts == {"list": 1}


def test_head_asks_again_when_siblings_fill_the_page(storage: Any) -> None:
    store = azure_store(storage)
    store.head_page = 32
    for number in range(40):  # all sort between "x" and "x/"
        store.put(f"x.{number:02}", io.BytesIO(b""), 0)
    store.put("x/inner", io.BytesIO(b"i"), 1)
    store.put("x", io.BytesIO(b"file"), 4)
    assert store.head("x").is_dir
    assert store.head("x.39").size == 0


def test_a_ranged_read_fetches_only_the_range(storage: Any) -> None:
    store = azure_store(storage)
    data = os.urandom(8 * MiB)
    store.put("big.bin", io.BytesIO(data), len(data))
    offset = 5 * MiB + 3
    with recording(store.client) as calls, store.open_read("big.bin", offset) as stream:
        assert stream.read(100) == data[offset : offset + 100]
    assert calls.counts == {"get": 1}
    [get] = calls.of("get")
    ranges = {k.lower(): v for k, v in get.headers.items()}
    start, end = ranges["x-ms-range"].removeprefix("bytes=").split("-")
    assert int(start) == offset
    assert int(end) - offset < store.windows.first


def test_a_sequential_read_uses_growing_windows(storage: Any) -> None:
    store = azure_store(storage)
    data = os.urandom(12 * MiB + 5)
    store.put("seq.bin", io.BytesIO(data), len(data))
    with recording(store.client) as calls, VFS(store).open_read("seq.bin") as handle:
        assert handle.read() == data
    # 1 + 2 + 4 MiB windows, then one of 8 MiB reaches the end.
    assert calls.counts == {"list": 1, "get": 4}


def test_reads_at_and_past_the_end_and_of_empty_blobs(storage: Any) -> None:
    store = azure_store(storage)
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


def test_a_reader_never_mixes_two_versions(storage: Any) -> None:
    store = azure_store(storage)
    old, new = os.urandom(3 * MiB), os.urandom(3 * MiB)
    store.put("v.bin", io.BytesIO(old), len(old))
    with store.open_read("v.bin") as stream:
        assert stream.read(MiB) == old[:MiB]
        store.put("v.bin", io.BytesIO(new), len(new))
        with pytest.raises(OSError) as caught:
            stream.read(MiB)
    assert caught.value.errno is not None


def test_small_writes_are_one_put_and_big_ones_blocks(storage: Any) -> None:
    store = azure_store(storage)
    vfs = VFS(store)
    with recording(store.client) as calls:
        vfs.write_file("small.txt", b"small")
    assert calls.counts == {"list": 1, "put": 1}  # the target's stat, then one Put Blob
    data = os.urandom(20 * MiB + 1)
    with recording(store.client) as calls:
        vfs.write_file("big.bin", data)
    assert calls.counts["block"] == 3
    assert calls.counts["blocklist"] == 1
    assert calls.counts["put"] == 0
    with vfs.open_read("big.bin") as handle:
        assert handle.read() == data


@pytest.mark.parametrize("size", [100, 20 * MiB], ids=["put", "blocks"])
def test_a_failed_upload_keeps_the_old_blob(storage: Any, size: int) -> None:
    store = azure_store(storage)
    vfs = VFS(store)
    vfs.write_file("keep.bin", b"the old content")

    def second_write_fails(call: Call, _: int) -> BaseException | None:
        writes = [c for c in calls.calls if c.kind in ("put", "block")]
        if call.kind in ("put", "block") and len(writes) >= (1 if size < MiB else 2):
            return ServiceRequestError("injected")
        return None

    with (
        recording(store.client, second_write_fails) as calls,
        pytest.raises(StoreUnavailable),
    ):
        vfs.write_file("keep.bin", os.urandom(size))
    with vfs.open_read("keep.bin") as handle:
        assert handle.read() == b"the old content"


def test_write_parameters_come_from_the_storage(
    make_azure_storage: Any, azurite: AzuriteServer, container: str
) -> None:
    storage = make_azure_storage(cache_control="max-age=60")
    vfs = VFS(azure_store(storage))
    vfs.write_file("page.html", b"<p>hi</p>")
    blob = azurite.service().get_blob_client(container, f"{LOCATION}/page.html")
    settings = blob.get_blob_properties().content_settings
    assert settings.content_type == "text/html"
    assert settings.cache_control == "max-age=60"


def test_copy_is_server_side(storage: Any) -> None:
    store = azure_store(storage)
    data = os.urandom(2 * MiB)
    store.put("a.bin", io.BytesIO(data), len(data))
    with recording(store.client) as calls:
        info = store.copy("a.bin", "b.bin")
    assert calls.counts == {"copy": 1, "list": 1}
    assert info.size == len(data)
    with store.open_read("b.bin") as stream:
        assert stream.read() == data


def test_removing_a_folder_deletes_in_batches(storage: Any) -> None:
    store = azure_store(storage)
    vfs = VFS(store)
    vfs.mkdir("t")
    vfs.mkdir("t/sub")
    for number in range(30):
        vfs.write_file(f"t/f{number}", b"x")
        vfs.write_file(f"t/sub/g{number}", b"y")
    with recording(store.client) as calls:
        vfs.remove_tree("t")
    assert calls.counts["batch"] == 3  # the 60 files, then each folder's markers
    assert calls.counts["delete"] == 0
    assert vfs.listdir("") == []


def test_an_exact_open_of_a_blob_replaced_behind_the_vfs_is_one_get(
    storage: Any, azurite: AzuriteServer, container: str
) -> None:
    """``stream_info`` comes from the first window's answer: no list, no properties."""
    store = azure_store(storage)
    vfs = VFS(store, cache_ttl=60)
    vfs.write_file("x.bin", b"old")
    listed = vfs.stat("x.bin")
    with recording(store.client) as calls, vfs.open_read("x.bin", exact=True) as handle:
        assert handle.entry.etag == listed.etag
    assert calls.counts == {"get": 1}
    new = b"a newer, longer version"
    blob = azurite.service().get_container_client(container).get_blob_client(f"{LOCATION}/x.bin")
    blob.upload_blob(new, overwrite=True)
    assert vfs.stat("x.bin").size == 3, "still cached"
    with recording(store.client) as calls, vfs.open_read("x.bin", exact=True) as handle:
        assert handle.size == len(new)
        assert handle.read() == new
    assert calls.counts == {"get": 1}
    properties = blob.get_blob_properties()
    entry = vfs.stat("x.bin")
    assert (entry.size, entry.etag) == (len(new), properties.etag.strip('"'))
    assert entry.mtime == properties.last_modified.timestamp()


def test_head_of_a_folder_carries_its_listing(storage: Any) -> None:
    store = azure_store(storage)
    vfs = VFS(store)
    vfs.mkdir("d")
    vfs.mkdir("d/empty")
    vfs.write_file("d/f.txt", b"hello")
    store.put("d/sub/deep/g.txt", io.BytesIO(b"g"), 1)
    store.put("d/both", io.BytesIO(b"file hidden by the folder"), 25)
    store.put("d/both/inner", io.BytesIO(b"i"), 1)
    store.put("d.bak", io.BytesIO(b"sibling"), 7)
    with recording(store.client) as calls:
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
