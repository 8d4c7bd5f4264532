"""The WebDAV benchmark runs end to end on tiny sizes (a smoke test, never a timed assertion)."""

from __future__ import annotations

import json
import re
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
        "--roots=tmpfs,disk",
        "--size-mib=4",
        "--files=20",
        "--reps=1",
        "--propfind-reps=1",
        "--small-count=20",
        "--small-seconds=2",
        "--connections=4",
        "--cpu-requests=500",
        "--load-window=0.05",
        f"--results-dir={tmp_path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    # Each root is named with its filesystem, the disk one checked not to be tmpfs.
    (tmpfs_line,) = [line for line in lines if line.startswith("root tmpfs: ")]
    assert tmpfs_line.endswith(" (tmpfs)"), tmpfs_line
    (disk_line,) = [line for line in lines if line.startswith("root disk: ")]
    assert not disk_line.endswith(" (tmpfs)"), disk_line
    # Every measured turn prints the machine's other load beside it: per root, each of the
    # five servers has 12 turns (GET, PUT, COPY, 2 PROPFIND, 4 small phases, CPU, 64 KiB,
    # 1 MiB).
    turn = re.compile(r"^  \S+ +rep \d+.*, other load (\d+\.\d\d) cores$")
    loads = [float(m[1]) for line in lines if (m := turn.match(line))]
    assert len(loads) == 2 * 5 * 12, "\n".join(lines)
    assert all(x >= 0 for x in loads), loads
    client = re.compile(r", client \d+ µs/req, other load ")
    assert sum(bool(client.search(line)) for line in lines) == 2 * 5 * 6, "\n".join(lines)
    headers = [line for line in lines if line.startswith("metric")]
    assert len(headers) == 2, headers  # one table per root
    for header in headers:
        for column in ("davstore", "apache", "nginx", "wsgidav", "rclone", "davstore/apache"):
            assert column in header
        for column in ("davstore/nginx", "davstore/rclone", "other load med/max", "verdict"):
            assert column in header
    for label in (
        "GET big file",
        "PUT big file",
        "COPY big file (server side)",
        "RSS growth during COPY",
        "PROPFIND depth 1 allprop",
        "1 KiB GET",
        "64 KiB GET",
        "1 MiB GET",
        "server CPU per 10,000 1 KiB GETs",
        "RSS at rest after the load",
        "PSS at rest, all processes",
        "PSS at rest after the load",
    ):
        assert sum(line.startswith(label) for line in lines) >= 2, label
    # The table's other-load cell (median/max over the row's turns) on rows of turns.
    cell = re.compile(r"  (\d+\.\d\d)/(\d+\.\d\d)  ")
    for label in ("GET big file", "PROPFIND depth 1 5 props", "1 KiB PUT, 1 connection"):
        rows = [line for line in lines if line.startswith(label + "  ")]
        assert len(rows) == 2, (label, rows)
        for row in rows:
            found = cell.search(row)
            assert found, row
            assert 0 <= float(found[1]) <= float(found[2]), row
    for server in ("davstore", "apache", "nginx"):
        counts = [line for line in lines if line.startswith(f"litmus: {server}: ")]
        assert len(counts) == 2, counts
        assert all(" passed (basic " in c for c in counts), counts
    (result,) = tmp_path.glob("webdav-*.json")
    payload = json.loads(result.read_text())
    assert list(payload["roots"]) == ["tmpfs", "disk"]
    assert payload["roots"]["tmpfs"]["filesystem"] == "tmpfs"
    assert payload["roots"]["disk"]["filesystem"] not in ("tmpfs", "unknown")
    assert payload["failures"] == []
    servers = ("davstore", "apache", "nginx", "wsgidav", "rclone")
    measured = (
        "get_mbps",
        "put_mbps",
        "copy_mbps",
        "propfind_allprop_s",
        "get1k_1_rps",
        "put1k_n_rps",
        "get64k_n_rps",
        "get1m_n_rps",
    )
    for name, root in payload["roots"].items():
        for server in servers:
            figures = root["results"][server]
            for key in (*measured, "rss_idle_mib", "rss_after_mib"):
                assert figures.get(key), (name, server, key, figures)
            for key in ("idle", "after"):  # shared pages once: never above the RSS sum
                assert 0 < figures[f"pss_{key}_mib"] <= figures[f"rss_{key}_mib"], figures
            assert figures.get("cpu_10k_get_s") is not None, (name, server, figures)
            for key in (*measured, "cpu_10k_get_s", "rss_get_mib", "propfind_first_s"):
                load = root["other_load"][server][key]
                assert load["turns"] == len(load["cores"]) == 1, (name, server, key, load)
                assert load["median"] == load["max"] == load["cores"][0] >= 0, load
        by_metric = {row["metric"]: row for row in root["rows"]}
        for key in (*measured, "cpu_10k_get_s"):
            load = by_metric[key]["other_load"]
            assert load == root["row_loads"][key]
            assert load["turns"] == len(servers), (name, key, load)
            assert 0 <= load["median"] <= load["max"], (name, key, load)
        for key in ("rss_idle_mib", "rss_after_mib", "pss_idle_mib", "pss_after_mib"):  # readings
            assert by_metric[key]["other_load"] == {"turns": 0, "median": None, "max": None}
        assert root["litmus"]["apache"].startswith("104/104"), root["litmus"]
        for server in servers:  # the client's CPU per request of each rate turn
            client = root["client_us_per_request"][server]
            for key in ("put1k_1_rps", "get1k_n_rps", "get64k_n_rps", "get1m_n_rps"):
                assert len(client[key]) == 1 and client[key][0] > 0, (name, server, client)
        over = root["load_over_turns"]
        assert over["turns"] == 5 * 12 and 0 <= over["median"] <= over["max"], over
