"""A mount and a ``davstore serve`` of one share, on one host, see each other's changes at
once (host peers, vfs/host_peers.py), whichever frontend made them: the mount joins the
share's coherence as the server does, not only the WebDAV frontend."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.fuse.mounting import start_mount
from tests.process import start_serve

pytestmark = pytest.mark.fuse


def test_a_write_through_the_mount_is_served_at_once(tmp_path: Path) -> None:
    served = tmp_path / "files"
    served.mkdir()
    ttl = ["--cache-ttl", "600"]  # far longer than the test: only an announcement helps
    with start_serve(["--anonymous", *ttl, str(served)], cwd=tmp_path) as server:
        mount = start_mount(tmp_path / "mnt", [str(served), *ttl], base=tmp_path)
        try:
            # The server caches the absence, then the file is made through the mount.
            assert requests.get(server.url + "new.txt", timeout=10).status_code == 404
            (mount.mountpoint / "new.txt").write_bytes(b"made through the mount")
            got = requests.get(server.url + "new.txt", timeout=10)
            assert (got.status_code, got.content) == (200, b"made through the mount")
        finally:
            mount.stop()
