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
    for program, package in (("apache2", "apache2"), ("nginx", "nginx")):
        if shutil.which(program) is None and not Path("/usr/sbin", program).exists():
            pytest.fail(
                f"{program} is missing: tests/run.sh installs it (apt-get install {package})"
            )
    if not Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so").exists():
        pytest.fail("nginx's dav-ext module is missing (apt-get install libnginx-mod-http-dav-ext)")
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
        "--cpu-requests=500",
        f"--results-dir={tmp_path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    for column in ("davstore", "apache", "nginx", "wsgidav", "rclone", "davstore/apache"):
        assert column in header
    for column in ("davstore/nginx", "davstore/rclone", "target", "verdict"):
        assert column in header
    for label in (
        "GET big file",
        "PUT big file",
        "PROPFIND depth 1 allprop",
        "1 KiB GET",
        "64 KiB GET",
        "1 MiB GET",
        "server CPU per 10,000 1 KiB GETs",
        "RSS at rest after the load",
    ):
        assert any(line.startswith(label) for line in lines), label
    for server in ("davstore", "apache", "nginx"):
        (counts,) = [line for line in lines if line.startswith(f"litmus: {server}: ")]
        assert " passed (basic " in counts, counts
    (result,) = tmp_path.glob("webdav-*.json")
    payload = json.loads(result.read_text())
    for server in ("davstore", "apache", "nginx", "wsgidav", "rclone"):
        figures = payload["results"][server]
        for key in (
            "get_mbps",
            "put_mbps",
            "propfind_allprop_s",
            "get1k_1_rps",
            "put1k_n_rps",
            "get64k_n_rps",
            "get1m_n_rps",
            "rss_idle_mib",
            "rss_after_mib",
        ):
            assert figures.get(key), (server, key, figures)
        assert figures.get("cpu_10k_get_s") is not None, (server, figures)
    assert payload["litmus"]["apache"].startswith("104/104"), payload["litmus"]
