"""The S3 benchmark runs end to end on tiny sizes (a smoke test, never a timed assertion).

It needs s3fs (its peer) and a usable /dev/fuse; a missing s3fs fails the test (tests/run.sh
installs it), as the peers of the other benchmarks do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuse.conftest import fuse_usable

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.fuse
@pytest.mark.skipif(not fuse_usable(), reason="/dev/fuse is not usable here")
def test_s3_benchmark_quick_prints_a_table(tmp_path: Path) -> None:
    if shutil.which("s3fs") is None:
        pytest.fail("s3fs is missing: tests/run.sh installs it (apt-get install -y s3fs)")
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "s3.py"),
        "--quick",
        "--files=50",
        "--size-mib=4",
        "--big-mib=4",
        f"--results-dir={tmp_path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    for column in ("davstore", "s3fs", "davstore/s3fs", "target", "verdict"):
        assert column in header
    for label in ("ls -l 50 objects, cold", "  S3 list calls (PROPFIND", "sequential read"):
        assert any(line.startswith(label) for line in lines), label
    (result,) = tmp_path.glob("s3-*.json")
    payload = json.loads(result.read_text())
    davstore, s3fs = payload["results"]["davstore"], payload["results"]["s3fs"]
    # The request economy holds at any size: one list, no HEAD, for ls -l and PROPFIND.
    assert davstore["ls_lists"] == davstore["propfind_lists"] == 1, davstore
    assert davstore["ls_heads"] == davstore["propfind_heads"] == 0, davstore
    for key in ("ls_cold_s", "read_mbps", "rss_webdav_mib", "rss_fuse_mib"):
        assert davstore.get(key) is not None, (key, davstore)
    for key in ("ls_cold_s", "read_mbps", "fuse_write_mbps"):
        assert s3fs.get(key) is not None, (key, s3fs)
