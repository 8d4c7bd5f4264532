"""S3 through a real FUSE mount (``davstore mount --backend storages.backends.s3.S3Storage``):
the conformance suite and a few real-work checks. Skips only where /dev/fuse is unusable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from davstore.testing import ConformanceSuite, FuseDriver
from tests.fuse.conftest import fuse_usable
from tests.fuse.mounting import MountProcess, start_mount
from tests.s3.conftest import LOCATION
from tests.s3.moto import ACCESS_KEY, SECRET_KEY, MotoServer

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]


def mount_args(moto: MotoServer, bucket: str) -> list[str]:
    options = {
        "bucket_name": bucket,
        "endpoint_url": moto.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
        "location": LOCATION,
    }
    args = ["--backend", "storages.backends.s3.S3Storage"]
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    return args


@pytest.fixture
def s3_mount(moto: MotoServer, bucket: str, tmp_path: Path) -> Iterator[MountProcess]:
    mount = start_mount(tmp_path / "mnt", mount_args(moto, bucket), base=tmp_path)
    try:
        yield mount
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure


class TestS3ThroughFuse(ConformanceSuite):
    @pytest.fixture
    def driver(self, s3_mount: MountProcess) -> FuseDriver:
        return FuseDriver(s3_mount.mountpoint)


def test_copy_in_and_out_of_an_s3_mount(
    s3_mount: MountProcess, moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(20 << 20))
    mnt = s3_mount.mountpoint
    subprocess.run(["cp", str(source), str(mnt / "copy.bin")], check=True)
    subprocess.run(["cmp", str(source), str(mnt / "copy.bin")], check=True)
    head = moto.client().head_object(Bucket=bucket, Key=f"{LOCATION}/copy.bin")
    assert head["ContentLength"] == 20 << 20
    assert "-" in head["ETag"]  # a multipart upload
    (mnt / "many").mkdir()
    for number in range(200):
        (mnt / "many" / f"f{number:03}.txt").write_bytes(b"x" * number)
    listing = subprocess.run(
        ["ls", "-l", str(mnt / "many")], check=True, capture_output=True, text=True
    ).stdout
    assert len(listing.splitlines()) == 201
    with open(mnt / "copy.bin", "rb") as f:
        f.seek(15 << 20)
        assert f.read(10) == source.read_bytes()[15 << 20 : (15 << 20) + 10]


def test_ls_l_of_1000_objects_on_a_fresh_mount_is_one_list(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    client = moto.client()
    for number in range(1000):
        client.put_object(Bucket=bucket, Key=f"{LOCATION}/big/f{number:04}.txt", Body=b"x")
    # A TTL that outlasts a slow `ls -l` on a busy machine (the default is 1 s).
    args = [*mount_args(moto, bucket), "--cache-ttl", "30"]
    mount = start_mount(tmp_path / "mnt", args, base=tmp_path)
    try:
        with moto.recording() as requests:
            listing = subprocess.run(
                ["ls", "-l", str(mount.mountpoint / "big")],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
    finally:
        mount.stop()
    assert len(listing.splitlines()) == 1001
    # The lookup of "big" lists it; readdir and the 1000 stats are answered from that.
    assert requests.counts == {"ListObjectsV2": 1}


def test_a_site_write_to_the_bucket_shows_in_the_mount_at_once(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    """The kernel and the VFS keep entries for an hour; the site's write (the object
    saved, then journaled and announced as davstore.site.announce does) shows at once."""
    import time

    from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
    from davstore.vfs.host_peers import HostPeers
    from davstore.vfs.journal import FILE_NAME as JOURNAL_FILE
    from davstore.vfs.journal import Journal, Record
    from tests.fuse.mounting import wait_until

    args = [*mount_args(moto, bucket), "--cache-ttl", "3600"]
    mount = start_mount(tmp_path / "mnt", args, base=tmp_path)
    try:
        mnt = mount.mountpoint
        assert not (mnt / "new.txt").exists()
        assert os.listdir(mnt) == []
        moto.client().put_object(Bucket=bucket, Key=f"{LOCATION}/new.txt", Body=b"by the site")
        (state_dir,) = {p.parent for p in (tmp_path / "xdg-state").rglob(JOURNAL_FILE)}
        journal, peers = Journal(state_dir / JOURNAL_FILE), HostPeers(state_dir / PEERS_FILE)
        try:
            journal.append(Record("created", "new.txt", origin="site", at=time.time()))
            peers.announce()
        finally:
            journal.close()
            peers.close()
        wait_until((mnt / "new.txt").exists, timeout=20)
        assert (mnt / "new.txt").stat().st_size == len(b"by the site")
        assert (mnt / "new.txt").read_bytes() == b"by the site"
        assert os.listdir(mnt) == ["new.txt"]
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")
