"""GCS through a real FUSE mount (``davstore mount --backend
storages.backends.gcloud.GoogleCloudStorage``, the emulator found through
``STORAGE_EMULATOR_HOST``): the conformance suite and real-work checks. Skips only where
/dev/fuse is unusable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from davstore.testing import ConformanceSuite, FuseDriver
from tests.fuse.conftest import fuse_usable
from tests.fuse.mounting import MountProcess, start_mount
from tests.gcs.conftest import LOCATION
from tests.gcs.emulator import PROJECT, GCSEmulator

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]


@pytest.fixture
def gcs_mount(gcs: GCSEmulator, bucket: str, tmp_path: Path) -> Iterator[MountProcess]:
    options = {"bucket_name": bucket, "project_id": PROJECT, "location": LOCATION}
    args = ["--backend", "storages.backends.gcloud.GoogleCloudStorage"]
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs.url}
    mount = start_mount(tmp_path / "mnt", args, base=tmp_path, env=env)
    try:
        yield mount
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure


class TestGCSThroughFuse(ConformanceSuite):
    @pytest.fixture
    def driver(self, gcs_mount: MountProcess) -> FuseDriver:
        return FuseDriver(gcs_mount.mountpoint)


def test_copy_in_and_out_of_a_gcs_mount(
    gcs_mount: MountProcess, gcs: GCSEmulator, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(20 << 20))
    mnt = gcs_mount.mountpoint
    subprocess.run(["cp", str(source), str(mnt / "copy.bin")], check=True)
    subprocess.run(["cmp", str(source), str(mnt / "copy.bin")], check=True)
    blob = gcs.client().bucket(bucket).get_blob(f"{LOCATION}/copy.bin")
    assert blob.size == 20 << 20
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
