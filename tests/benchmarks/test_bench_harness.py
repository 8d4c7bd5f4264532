"""The benchmarks' own measuring pieces: the machine's other load and the roots of webdav.py.

CPU figures here are CPU time a process was charged (``/proc``), not speed: a busy machine
changes none of them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
#: A child that burns ``argv[1]`` seconds of CPU, then sleeps until it is killed.
BURN = (
    "import sys, time\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < float(sys.argv[1]): pass\n"
    "print('burnt', flush=True)\n"
    "time.sleep(60)\n"
)
SMALL = ["--size-mib=4", "--files=20", "--small-count=20", "--small-reps=1"]


def _load(name: str, as_name: str) -> ModuleType:
    """A script of benchmarks/ as a module (``harness`` under its own name, as the scripts
    import it)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    if as_name in sys.modules:
        return sys.modules[as_name]
    spec = importlib.util.spec_from_file_location(as_name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[as_name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("harness", "harness")
webdav = _load("webdav", "bench_webdav")


@contextlib.contextmanager
def _burner(seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A process in a session of its own (as the benchmarks start servers) once it has burnt
    ``seconds`` of CPU; killed at the end."""
    with subprocess.Popen(
        [sys.executable, "-c", BURN, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "burnt\n"
            yield proc
        finally:
            proc.kill()


def test_client_cpu_counts_waited_children_and_not_the_servers() -> None:
    before = harness.client_cpu()
    subprocess.run([sys.executable, "-c", BURN.replace("time.sleep(60)", ""), "0.3"], check=True)
    assert harness.client_cpu() - before >= 0.28  # curl or litmus run by the client are its own

    with _burner(0.4) as server:
        assert harness.tree_cpu(server.pid) >= 0.38
        mine = harness.client_cpu([server.pid])
        assert harness.client_cpu() - mine >= 0.38  # a live child is the client's...
        assert harness.client_cpu([server.pid]) - mine < 0.1  # ...unless it is a server


#: A parent that fills 64 MiB, forks two children that keep it (shared, copy-on-write,
#: untouched), says so and sleeps until it is killed.
SHARED = (
    "import os, sys, time\n"
    "block = bytearray(64 << 20)\n"
    "for i in range(0, len(block), 4096): block[i] = 1\n"
    "kids = [os.fork() for _ in range(2)]\n"
    "if all(kids): print('forked', flush=True)\n"
    "time.sleep(60)\n"
)


def test_pss_counts_the_pages_a_tree_shares_once_where_rss_counts_them_per_process() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SHARED], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "forked\n"
            # The parent and its first child each forked once more: 4 processes hold the block.
            deadline = time.monotonic() + 10
            while len(harness.process_tree(proc.pid)) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(harness.process_tree(proc.pid)) == 4
            rss = harness.tree_rss(proc.pid)
            pss = harness.tree_pss(proc.pid)
        finally:
            harness.os.killpg(proc.pid, harness.signal.SIGKILL)
    assert pss is not None
    assert rss >= 4 * (64 << 20)  # the block, counted in each of the four processes
    assert (64 << 20) <= pss < rss / 2  # once in all, beside each interpreter's own pages


def test_machine_busy_cpu_holds_this_process_s_work() -> None:
    before = harness.machine_busy_cpu()
    start = time.process_time()
    while time.process_time() - start < 0.3:
        pass
    assert harness.machine_busy_cpu() - before >= 0.28 - 0.02 * (harness.os.cpu_count() or 1)


def test_other_load_reads_a_window_long_enough_for_ticks_and_never_below_zero() -> None:
    with _burner(0.0) as server, harness.OtherLoad(server.pid, min_seconds=0.15) as load:
        pass
    assert load.seconds >= 0.15
    assert load.cores >= 0.0
    assert load.cores == max(0.0, load.raw)
    assert harness.load_summary([0.5, 0.1, 0.3]) == {"turns": 3, "median": 0.3, "max": 0.5}
    assert harness.load_summary([]) == {"turns": 0, "median": None, "max": None}


def test_roots_default_to_tmpfs_and_disk_and_quick_runs_one() -> None:
    assert harness.filesystem_type(Path("/dev/shm")) == "tmpfs"
    roots = webdav.resolve_roots(webdav.parse_args(SMALL), 5)
    assert [r.name for r in roots] == ["tmpfs", "disk"]
    assert (roots[0].path, roots[0].fstype) == (Path("/dev/shm"), "tmpfs")
    assert roots[1].path == Path(tempfile.gettempdir())
    assert roots[1].fstype not in ("tmpfs", "unknown")
    quick = webdav.resolve_roots(webdav.parse_args(["--quick", *SMALL]), 5)
    assert [r.name for r in quick] == ["tmpfs"]
    asked = webdav.resolve_roots(webdav.parse_args(["--quick", "--roots=disk,tmpfs", *SMALL]), 5)
    assert [r.name for r in asked] == ["disk", "tmpfs"]


def test_data_dir_names_the_one_root(tmp_path: Path) -> None:
    (root,) = webdav.resolve_roots(webdav.parse_args([f"--data-dir={tmp_path}", *SMALL]), 5)
    assert (root.name, root.path) == ("disk", tmp_path)
    (root,) = webdav.resolve_roots(webdav.parse_args(["--data-dir=/dev/shm", *SMALL]), 5)
    assert (root.name, root.fstype) == ("tmpfs", "tmpfs")
    with pytest.raises(SystemExit, match="leave --roots out"):
        webdav.resolve_roots(webdav.parse_args([f"--data-dir={tmp_path}", "--roots=disk"]), 5)
    with pytest.raises(SystemExit, match="not a folder"):
        webdav.resolve_roots(webdav.parse_args([f"--data-dir={tmp_path / 'no'}", *SMALL]), 5)


@pytest.mark.parametrize("roots", ["ssd", "tmpfs,tmpfs", ","])
def test_roots_refuse_what_they_do_not_know(roots: str) -> None:
    with pytest.raises(SystemExit, match="--roots"):
        webdav.resolve_roots(webdav.parse_args([f"--roots={roots}", *SMALL]), 5)


def test_a_disk_root_is_never_tmpfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", "/dev/shm")  # TMPDIR on tmpfs: /var/tmp instead
    (root,) = webdav.resolve_roots(webdav.parse_args(["--roots=disk", *SMALL]), 5)
    assert root.path == Path("/var/tmp") and root.fstype != "tmpfs"
    monkeypatch.setattr(webdav, "filesystem_type", lambda path: "tmpfs")
    with pytest.raises(SystemExit, match="is tmpfs; name one with --data-dir"):
        webdav.resolve_roots(webdav.parse_args(["--roots=disk", *SMALL]), 5)


def test_a_root_without_room_for_the_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(webdav, "free_bytes", lambda path: 10 * harness.MiB)
    with pytest.raises(SystemExit, match=r"--roots tmpfs: /dev/shm has 10 MiB free, the data"):
        webdav.resolve_roots(webdav.parse_args(["--roots=tmpfs", *SMALL]), 5)
    with pytest.raises(SystemExit, match="no root to run on"):
        webdav.resolve_roots(webdav.parse_args(SMALL), 5)
    assert "tmpfs root left out: /dev/shm has 10 MiB free" in capsys.readouterr().out


def test_a_row_with_several_targets_passes_only_when_each_does() -> None:
    rate = harness.Metric(
        "r", "rate", "req/s", True, ("ratio", 0.5), "nginx", also=(("ratio", 1.0, "apache"),)
    )
    values = {"davstore": 60.0, "nginx": 100.0, "apache": 50.0}
    assert harness.verdict(rate, values) == (">= 0.5x nginx, >= 1x apache", "PASS")
    assert harness.verdict(rate, {**values, "apache": 70.0})[1] == "MISS"
    assert harness.verdict(rate, {**values, "apache": None})[1] == "-"
    assert harness.verdict(rate, {**values, "apache": None, "nginx": 200.0})[1] == "MISS"


def test_a_best_of_reference_is_the_best_peer_of_the_run() -> None:
    rate = harness.Metric("r", "rate", "MB/s", True, ("ratio", 1.0), "apache|nginx")
    time = harness.Metric("t", "time", "s", False, ("ratio", 1.0), "apache|nginx")
    assert harness.verdict(rate, {"davstore": 90.0, "apache": 80.0, "nginx": 100.0}) == (
        ">= 1x best of apache/nginx",
        "MISS",
    )
    assert harness.verdict(time, {"davstore": 0.9, "apache": 0.8, "nginx": 1.0})[1] == "MISS"
    assert harness.verdict(time, {"davstore": 0.7, "apache": 0.8, "nginx": 1.0})[1] == "PASS"
    assert harness.verdict(rate, {"davstore": 90.0, "apache": 80.0, "nginx": None})[1] == "-"
