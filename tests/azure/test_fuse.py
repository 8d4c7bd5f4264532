"""Azure Blob Storage through a real FUSE mount (``davstore mount --backend
storages.backends.azure_storage.AzureStorage --option connection_string=...`` on Azurite):
the conformance suite and real-work checks. Skips only where /dev/fuse is unusable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from davstore.testing import ConformanceSuite, FuseDriver
from tests.azure.azurite import AzuriteServer
from tests.azure.conftest import LOCATION
from tests.fuse.conftest import fuse_usable
from tests.fuse.mounting import MountProcess, start_mount

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here"),
]


@pytest.fixture
def azure_mount(azurite: AzuriteServer, container: str, tmp_path: Path) -> Iterator[MountProcess]:
    options = {
        "connection_string": azurite.connection_string,
        "azure_container": container,
        "location": LOCATION,
        "overwrite_files": "true",
    }
    args = ["--backend", "storages.backends.azure_storage.AzureStorage"]
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    mount = start_mount(tmp_path / "mnt", args, base=tmp_path)
    try:
        yield mount
    finally:
        mount.stop()
        print(f"--- mount log ---\n{mount.output()}")  # shown on failure


class TestAzureThroughFuse(ConformanceSuite):
    @pytest.fixture
    def driver(self, azure_mount: MountProcess) -> FuseDriver:
        return FuseDriver(azure_mount.mountpoint)


def test_copy_in_and_out_of_an_azure_mount(
    azure_mount: MountProcess, azurite: AzuriteServer, container: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(20 << 20))
    mnt = azure_mount.mountpoint
    subprocess.run(["cp", str(source), str(mnt / "copy.bin")], check=True)
    subprocess.run(["cmp", str(source), str(mnt / "copy.bin")], check=True)
    blob = azurite.service().get_blob_client(container, f"{LOCATION}/copy.bin")
    assert blob.get_blob_properties().size == 20 << 20
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
