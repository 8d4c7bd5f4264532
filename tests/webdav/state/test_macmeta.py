"""macOS ._* and .DS_Store files: the per-share policy (macmeta.py), and Finder's probes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage
from lxml import etree

from davstore.frontends.webdav.state.macmeta import is_mac_metadata
from tests.webdav.serving import Share, serve_share

FINDER_PROBES = [
    ".DS_Store",
    "._.",
    ".localized",
    ".hidden",
    ".metadata_never_index",
    ".metadata_never_index_unless_rootfs",
    "Backups.backupdb",
    "mach_kernel",
    ".Spotlight-V100",
    ".Trashes",
    ".TemporaryItems",
    ".ql_disablethumbnails",
    ".VolumeIcon.icns",
    "._photo.jpg",
]


def count_store_calls(share: Share) -> list[str]:
    calls: list[str] = []
    store = share.vfs.store
    for name in ("head", "find", "list", "open_read", "read_small"):
        original = getattr(store, name)

        def wrapped(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*args)

        setattr(store, name, wrapped)
    return calls


def test_names_that_are_mac_metadata() -> None:
    assert is_mac_metadata("/a/._b.txt") and is_mac_metadata(".DS_Store")
    assert not is_mac_metadata("/a/._") and not is_mac_metadata("_b") and not is_mac_metadata(".x")


def test_hide_keeps_them_out_of_the_store_and_listings(tmp_path: Path) -> None:
    media = tmp_path / "media"
    with serve_share(FileSystemStorage(location=str(media)), tmp_path / "state") as share:
        share.request("MKCOL", "photos")
        assert share.request("PUT", "photos/cat.jpg", data=b"jpeg").status_code == 201
        assert share.request("PUT", "photos/._cat.jpg", data=b"apple double").status_code == 201
        assert share.request("PUT", "photos/.DS_Store", data=b"bud1").status_code == 201
        assert sorted(os.listdir(media / "photos")) == ["cat.jpg"]
        assert share.request("GET", "photos/._cat.jpg").content == b"apple double"
        assert share.request("HEAD", "photos/.DS_Store").headers["Content-Length"] == "4"
        found = share.request("PROPFIND", "photos/._cat.jpg", headers={"Depth": "0"})
        assert found.status_code == 207
        assert etree.fromstring(found.content).findtext(".//{DAV:}getcontentlength") == "12"
        listing = share.request("PROPFIND", "photos/", headers={"Depth": "1"}).text
        assert "cat.jpg" in listing and "._cat" not in listing and "DS_Store" not in listing
        assert "._cat" not in share.request("GET", "photos/").text
        # Finder renames the file and its AppleDouble file, then moves the folder.
        lock = share.request("LOCK", "photos/._cat.jpg", data=b"", headers={"Timeout": "Second-60"})
        assert lock.status_code == 200 and lock.headers["Lock-Token"].startswith("<opaquelock")
        assert (
            share.request(
                "UNLOCK", "photos/._cat.jpg", headers={"Lock-Token": lock.headers["Lock-Token"]}
            ).status_code
            == 204
        )
        moved = share.request(
            "MOVE", "photos/._cat.jpg", headers={"Destination": share("photos/._kitty.jpg")}
        )
        assert moved.status_code == 201
        share.request("MOVE", "photos/cat.jpg", headers={"Destination": share("photos/kitty.jpg")})
        assert (
            share.request("MOVE", "photos/", headers={"Destination": share("album/")}).status_code
            == 201
        )
        assert share.request("GET", "album/._kitty.jpg").content == b"apple double"
        assert share.request("GET", "album/.DS_Store").content == b"bud1"
        assert share.request("GET", "photos/._kitty.jpg").status_code == 404
        assert (
            share.request("COPY", "album/", headers={"Destination": share("copy/")}).status_code
            == 201
        )
        assert share.request("GET", "copy/._kitty.jpg").content == b"apple double"
        assert share.request("DELETE", "album/").status_code == 204
        assert share.request("GET", "album/._kitty.jpg").status_code == 404
        assert share.request("DELETE", "copy/.DS_Store").status_code == 204
        assert share.request("DELETE", "copy/.DS_Store").status_code == 404
        assert sorted(p.name for p in media.rglob("*")) == ["copy", "kitty.jpg"]


def test_hide_needs_credentials_too(tmp_path: Path) -> None:
    import requests

    with serve_share(FileSystemStorage(location=str(tmp_path / "m")), tmp_path / "s") as share:
        assert requests.put(share("._x"), data=b"x", timeout=10).status_code == 401
        assert requests.get(share(".DS_Store"), timeout=10).status_code == 401


def test_hide_is_bounded(tmp_path: Path) -> None:
    with serve_share(FileSystemStorage(location=str(tmp_path / "m")), tmp_path / "s") as share:
        big = b"x" * (17 << 20)
        assert share.request("PUT", "._big", data=big).status_code == 507
        assert share.request("GET", "._big").status_code == 404


def test_store_keeps_them_as_ordinary_files(tmp_path: Path) -> None:
    media = tmp_path / "media"
    with serve_share(
        FileSystemStorage(location=str(media)), tmp_path / "state", mac_metadata="store"
    ) as share:
        assert share.request("PUT", "._cat.jpg", data=b"apple double").status_code == 201
        assert share.request("PUT", ".DS_Store", data=b"bud1").status_code == 201
        assert sorted(os.listdir(media)) == [".DS_Store", "._cat.jpg"]
        assert "._cat.jpg" in share.request("PROPFIND", "", headers={"Depth": "1"}).text


def test_finder_probes_for_missing_names_cost_no_store_call_once_the_folder_is_listed(
    tmp_path: Path,
) -> None:
    with serve_share(
        FileSystemStorage(location=str(tmp_path / "media")), tmp_path / "state", cache_ttl=5
    ) as share:
        share.request("MKCOL", "docs")
        share.request("PUT", "docs/a.txt", data=b"a")
        calls = count_store_calls(share)
        assert share.request("PROPFIND", "docs/", headers={"Depth": "1"}).status_code == 207
        listed = len(calls)
        started = time.perf_counter()
        for name in FINDER_PROBES:
            for method in ("PROPFIND", "GET"):
                response = share.request(method, f"docs/{name}", headers={"Depth": "0"})
                assert response.status_code == 404, (method, name)
        elapsed = time.perf_counter() - started
        assert calls[listed:] == [], calls
        # Cold: a folder not listed yet costs one lookup per name, then none for the TTL.
        calls.clear()
        for name in FINDER_PROBES:
            share.request("PROPFIND", name, headers={"Depth": "0"})
        cold = len(calls)
        for name in FINDER_PROBES:
            share.request("PROPFIND", name, headers={"Depth": "0"})
        assert len(calls) == cold <= len(FINDER_PROBES)
        print(  # the measurement the report quotes (pytest -s)
            f"{2 * len(FINDER_PROBES)} probes after a listing: 0 store calls, "
            f"{elapsed / (2 * len(FINDER_PROBES)) * 1000:.2f} ms each; cold: {cold} calls"
        )
