"""The WebDAV benchmark runs end to end on tiny sizes (a smoke test, never a timed assertion)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_webdav_benchmark_quick_prints_a_table(tmp_path: Path) -> None:
    if shutil.which("rclone") is None:
        pytest.fail("rclone is missing: .ci/run installs it (apt-get install -y rclone)")
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "webdav.py"),
        "--quick",
        "--size-mib=4",
        "--files=20",
        "--reps=1",
        "--propfind-reps=1",
        "--small-count=20",
        "--small-seconds=2",
        "--connections=4",
        f"--results-dir={tmp_path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    for column in ("davstore", "wsgidav", "rclone", "davstore/rclone", "target", "verdict"):
        assert column in header
    for label in ("GET big file", "PUT big file", "PROPFIND depth 1 allprop", "1 KiB GET"):
        assert any(line.startswith(label) for line in lines), label
    (result,) = tmp_path.glob("webdav-*.json")
    payload = json.loads(result.read_text())
    for server in ("davstore", "wsgidav", "rclone"):
        figures = payload["results"][server]
        for key in ("get_mbps", "put_mbps", "propfind_allprop_s", "get1k_1_rps", "put1k_n_rps"):
            assert figures.get(key), (server, key, figures)
