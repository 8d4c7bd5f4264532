"""The trash on S3: a server-side copy then a delete (in parts past the copy limit), and
what a trashed DELETE costs in requests (benchmarks/README.md has the times)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from davstore.store import adapt
from davstore.store.s3 import S3Store
from davstore.vfs import VFS
from davstore.vfs.events import acting_as
from davstore.vfs.trash import Trash
from tests.s3.recording import recording
from tests.webdav.serving import serve_share

MiB = 1 << 20


def s3_store(storage: Any) -> S3Store:
    store = adapt(storage)
    assert isinstance(store, S3Store)
    return store


def test_a_trashed_delete_is_a_copy_a_delete_and_one_small_put(storage: Any) -> None:
    store = s3_store(storage)
    vfs = VFS(store)
    trash = Trash(vfs).install()
    vfs.write_file("plain.txt", b"p")
    vfs.write_file("kept.txt", b"k")
    plain = VFS(store)
    plain.stat("plain.txt")
    with recording(store.client) as calls:
        plain.remove("plain.txt")
    assert calls.counts == {"DeleteObject": 1}
    vfs.stat("kept.txt")
    with recording(store.client) as calls:
        vfs.remove("kept.txt")
    # The record and the stat of what was stored, the server-side copy and its stat, the
    # delete: the bytes never pass through davstore, and no "done" record follows (the
    # first listing infers it: the copy is there, the original is not).
    assert calls.counts == {"PutObject": 1, "ListObjectsV2": 2, "CopyObject": 1, "DeleteObject": 1}
    (entry,) = trash.entries()
    assert (entry.path, entry.size, entry.state) == ("kept.txt", 1, "done")


def test_a_file_past_the_copy_limit_goes_to_the_trash_in_parts(storage: Any) -> None:
    store = s3_store(storage)
    store.copy_limit, store.copy_part_size = 6 * MiB, 5 * MiB
    data = os.urandom(11 * MiB)
    store.put("huge.bin", io.BytesIO(data), len(data))  # type: ignore[arg-type]
    vfs = VFS(store)
    trash = Trash(vfs).install()
    with recording(store.client) as calls:
        vfs.remove("huge.bin")
    assert calls.counts["UploadPartCopy"] == 3 and calls.counts.get("CopyObject", 0) == 0
    assert vfs.lookup("huge.bin") is None
    (entry,) = trash.entries()
    trash.restore(entry.id)
    with vfs.open_read("huge.bin") as stream:
        assert stream.read() == data


def test_a_webdav_delete_on_s3_goes_to_the_trash(storage: Any, tmp_path: Path) -> None:
    with serve_share(storage, tmp_path / "state") as share:
        trash = Trash(share.vfs).install()
        assert share.request("MKCOL", "d").status_code == 201
        assert share.request("PUT", "d/a.txt", data=b"aaa").status_code == 201
        assert share.request("PUT", "b.txt", data=b"b").status_code == 201
        assert share.request("DELETE", "d").status_code == 204
        assert share.request("DELETE", "b.txt").status_code == 204
        listing = share.request("PROPFIND", "", headers={"Depth": "1"})
        assert listing.status_code == 207 and "davstore-" not in listing.text
        entries = trash.entries()
        assert [(e.path, e.is_dir, e.size, e.origin) for e in entries] == [
            ("d", True, 3, "webdav"),
            ("b.txt", False, 1, "webdav"),
        ]
        with acting_as("ann", "cli"):
            trash.restore(entries[0].id)
        assert share.request("GET", "d/a.txt").content == b"aaa"
