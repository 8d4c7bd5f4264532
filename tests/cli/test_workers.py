"""``davstore serve --workers N``: N processes on one port, one share (serving/workers.py)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from davstore.serving.workers import import_path, without_current_folder
from tests.process import (
    ServeProcess,
    davstore_env,
    run_davstore,
    start_serve,
    wait_for_workers,
    workers_of,
)
from tests.webdav.state.test_state import LOCK_BODY


def _metric(server: ServeProcess, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in requests.get(server.url + ".davstore/metrics", timeout=10).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "share"
    made.mkdir()
    return made


def test_workers_serve_one_share(tmp_path: Path, folder: Path) -> None:
    args = ["--anonymous", "--workers", "2", "--cache-ttl", "60", str(folder)]
    with start_serve(args, cwd=tmp_path) as server:
        workers = wait_for_workers(server, 2)
        assert len(workers) == 2
        assert server.stdout.count("davstore is serving") == 1
        assert "2 workers" in server.stdout

        def put(index: int) -> int:
            with requests.Session() as session:  # a connection of its own
                url = f"{server.url}f{index}.txt"
                return session.put(url, data=b"x" * index, timeout=10).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(put, range(40))) == {201}
        for index in range(0, 40, 7):  # each read on a new connection, any worker
            got = requests.get(f"{server.url}f{index}.txt", timeout=10)
            assert got.content == b"x" * index
        # A lock holds whichever worker the next connections reach.
        lock = requests.request("LOCK", server.url + "f1.txt", data=LOCK_BODY, timeout=10)
        assert lock.status_code == 200
        for _ in range(6):
            assert requests.put(server.url + "f1.txt", data=b"y", timeout=10).status_code == 423
        # The metrics of every worker, summed, from any of them (folded within a second).
        time.sleep(1.5)
        assert _metric(server, "davstore_http_requests_total", method="PUT", status="201") == 40
        assert _metric(server, "davstore_http_requests_total", method="PUT", status="423") == 6
        # The process metrics of the parent and of each worker, from any of them.
        for _ in range(4):
            for pid in (server.proc.pid, *workers):
                assert _metric(server, "process_resident_memory_bytes", pid=str(pid)) > 1 << 20
                assert _metric(server, "process_open_fds", pid=str(pid)) > 0
        assert server.stop(signal.SIGTERM, timeout=20) == 0
        assert "Traceback" not in server.stderr
        assert "starting it again" not in server.stderr  # no worker failed at its start
        assert workers_of(server) == []


def test_workers_share_the_hidden_macos_files(tmp_path: Path, folder: Path) -> None:
    """Finder's ``._name`` written through one worker is there through every other."""
    with start_serve(["--anonymous", "--workers", "2", str(folder)], cwd=tmp_path) as server:
        wait_for_workers(server, 2)
        assert requests.put(server.url + "cat.jpg", data=b"jpeg", timeout=10).status_code == 201
        put = requests.put(server.url + "._cat.jpg", data=b"apple double", timeout=10)
        assert put.status_code == 201
        for _ in range(8):  # each on a new connection: the kernel spreads them over both
            got = requests.get(server.url + "._cat.jpg", timeout=10)
            assert (got.status_code, got.content) == (200, b"apple double")
        moved = requests.request(
            "MOVE", server.url + "._cat.jpg", headers={"Destination": server.url + "._b.jpg"}
        )
        assert moved.status_code == 201
        for _ in range(8):
            assert requests.get(server.url + "._cat.jpg", timeout=10).status_code == 404
            assert requests.get(server.url + "._b.jpg", timeout=10).content == b"apple double"
        assert sorted(os.listdir(folder)) == ["cat.jpg"]
        assert server.stop(signal.SIGTERM, timeout=20) == 0


def test_a_worker_that_dies_is_started_again(tmp_path: Path, folder: Path) -> None:
    (folder / "a.txt").write_bytes(b"a")
    with start_serve(["--anonymous", "--workers", "2", str(folder)], cwd=tmp_path) as server:
        first = wait_for_workers(server, 2)
        os.kill(first[0], signal.SIGKILL)
        again = wait_for_workers(server, 2, besides=frozenset({first[0]}))
        assert first[1] in again
        for _ in range(5):
            assert requests.get(server.url + "a.txt", timeout=10).content == b"a"
            assert _metric(server, "process_cpu_seconds_total", pid=str(again[0])) > 0
            assert _metric(server, "process_cpu_seconds_total", pid=str(first[0])) == 0
        deadline = time.monotonic() + 10
        while "exited with -9: starting it again" not in server.stderr:
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.1)
        assert server.stop(signal.SIGINT, timeout=20) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "django.core.files.storage.InMemoryStorage"], "not InMemoryStorage"),
        (["--lock-storage", "memory:"], "--lock-storage that every process shares"),
        (["--property-storage", "shelve:///tmp/x"], "--property-storage that every process"),
    ],
)
def test_state_no_worker_could_share_is_refused(
    tmp_path: Path, folder: Path, extra: list[str], message: str
) -> None:
    target = [] if "--backend" in extra else [str(folder)]
    done = run_davstore(["serve", "--anonymous", "--workers", "2", *extra, *target], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_refused_before_any_worker(tmp_path: Path, folder: Path) -> None:
    with start_serve(["--anonymous", str(folder)], cwd=tmp_path) as taken:
        done = run_davstore(
            ["serve", "--anonymous", "--workers", "2", "--port", str(taken.port), str(folder)],
            cwd=tmp_path,
        )
    assert done.returncode != 0
    assert "cannot listen on" in done.stderr
    assert "worker" not in done.stderr.replace("--workers", "")


def test_workers_end_with_a_killed_parent(tmp_path: Path, folder: Path) -> None:
    with start_serve(["--anonymous", "--workers", "2", str(folder)], cwd=tmp_path) as server:
        workers = wait_for_workers(server, 2)
        server.proc.kill()
        server.proc.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
            time.sleep(0.1)
        alive = [p for p in workers if Path(f"/proc/{p}").exists()]
        assert alive == [], server.stderr


def test_a_second_group_of_workers_cannot_join_the_port(tmp_path: Path, folder: Path) -> None:
    with start_serve(["--anonymous", "--workers", "2", str(folder)], cwd=tmp_path) as first:
        wait_for_workers(first, 2)
        done = run_davstore(
            ["serve", "--anonymous", "--workers", "2", "--port", str(first.port), str(folder)],
            cwd=tmp_path,
        )
    assert done.returncode != 0
    assert "cannot listen on" in done.stderr


def test_children_without_the_kernels_children_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc has no ``children`` files, the child processes are found by their parent."""
    import subprocess

    from davstore.serving.workers import children

    with subprocess.Popen(["sleep", "30"]) as first, subprocess.Popen(["sleep", "30"]) as second:
        try:
            listed = children(os.getpid())  # the session may have servers running too
            assert {first.pid, second.pid} <= set(listed)
            read_text = Path.read_text

            def without_children(path: Path, *args: object, **kwargs: object) -> str:
                if path.name == "children":
                    raise FileNotFoundError(2, "No such file or directory", str(path))
                return read_text(path, *args, **kwargs)  # type: ignore[arg-type]

            monkeypatch.setattr(Path, "read_text", without_children)
            assert children(os.getpid()) == listed
            assert children(first.pid) == []
        finally:
            first.kill()
            second.kill()


# -- the import path of the workers (issue 20, item 2) ------------------------------------

#: A ``sitecustomize`` that finds davstore as an editable install does (``pip install -e``,
#: as tests/run.sh and nox install it): a finder after the path finder, so a ``davstore``
#: folder in a folder on ``sys.path`` is found first, as it is for users.
_EDITABLE = """
import importlib.machinery, os, sys

class _Editable:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "davstore" and not name.startswith("davstore."):
            return None
        parts = name.split(".")
        return importlib.machinery.PathFinder.find_spec(name, [os.path.join(ROOT, *parts[:-1])])

sys.meta_path.insert(sys.meta_path.index(importlib.machinery.PathFinder) + 1, _Editable)
"""


def _editable_env(base: Path) -> dict[str, str]:
    """The environment of a davstore installed in editable mode, without PYTHONPATH."""
    import davstore

    folder = base / "editable"
    folder.mkdir()
    root = str(Path(davstore.__file__).parent.parent)
    (folder / "sitecustomize.py").write_text(f"ROOT = {root!r}\n{_EDITABLE}")
    env = davstore_env(base)
    env["PYTHONPATH"] = str(folder)
    return env


def _listing(server: ServeProcess) -> list[int]:
    statuses = []
    for _ in range(8):  # each on a new connection: the kernel spreads them over the workers
        page = requests.get(server.url, headers={"Accept": "text/html"}, timeout=10)
        statuses.append(page.status_code)
    return statuses


def test_workers_never_run_code_uploaded_to_the_share(tmp_path: Path, folder: Path) -> None:
    """Started inside its share; a user uploads davstore/__init__.py; a worker restarts."""
    marker = tmp_path / "ran"
    args = ["--anonymous", "--workers", "2", "."]
    with start_serve(args, cwd=folder, env=_editable_env(tmp_path)) as server:
        first = wait_for_workers(server, 2)
        assert requests.request("MKCOL", server.url + "davstore", timeout=10).status_code == 201
        code = f"open({str(marker)!r}, 'w').write('uploaded code ran')\n"
        put = requests.put(server.url + "davstore/__init__.py", data=code, timeout=10)
        assert put.status_code == 201
        os.kill(first[0], signal.SIGKILL)
        again = wait_for_workers(server, 2, besides=frozenset({first[0]}))
        assert first[1] in again
        assert set(_listing(server)) == {200}
        assert not marker.exists()
        assert server.stop(signal.SIGTERM, timeout=20) == 0
        assert "Traceback" not in server.stderr
    assert not marker.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_davstore_folder_in_the_share_leaves_the_listing_working(
    tmp_path: Path, folder: Path, workers: str
) -> None:
    """A folder named davstore in the current folder made every listing a 500."""
    (folder / "davstore" / "templates" / "webdav").mkdir(parents=True)
    (folder / "davstore" / "templates" / "webdav" / "listing.html").write_text("planted")
    (folder / "a.txt").write_bytes(b"a")
    args = ["--anonymous", "--workers", workers, "."]
    with start_serve(args, cwd=folder, env=_editable_env(tmp_path)) as server:
        if workers != "1":
            wait_for_workers(server, int(workers))
        assert set(_listing(server)) == {200}
        page = requests.get(server.url, headers={"Accept": "text/html"}, timeout=10).text
        assert "a.txt" in page and "planted" not in page
        assert server.stop(signal.SIGTERM, timeout=20) == 0
        assert "Traceback" not in server.stderr


def test_the_python_path_keeps_pythonpath_and_drops_shared_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = tmp_path / "share"
    (share / "lib").mkdir(parents=True)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(project), str(share / "lib"), "rel"]))
    monkeypatch.chdir(tmp_path)
    path = import_path([str(share)]).split(os.pathsep)
    assert str(project) in path and str(tmp_path / "rel") in path
    assert not [entry for entry in path if entry.startswith(str(share))]


@pytest.mark.parametrize("version", [(3, 10), (3, 11)])
def test_worker_commands_never_put_the_current_folder_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: tuple[int, int]
) -> None:
    """``-P`` on 3.11+, the bootstrap on 3.10 (run here by this interpreter: it works on
    both), for ``-m`` and for a script (manage.py), each printing its sys.path."""
    (tmp_path / "davstore").mkdir()  # would be a namespace package with the folder first
    script = tmp_path / "manage.py"
    script.write_text("import sys, json; print(json.dumps([sys.argv, sys.path]))\n")
    (tmp_path / "probe.py").write_text(script.read_text())
    monkeypatch.setattr(sys, "version_info", version)
    for command in (
        [sys.executable, "-Wdefault", str(script), "a", "b"],
        [sys.executable, "-m", "probe", "a", "b"],
    ):
        made = without_current_folder(command)
        env = {**os.environ, "PYTHONPATH": str(tmp_path) if "-m" in command else ""}
        if "-m" not in command:
            env.pop("PYTHONPATH")
        done = subprocess.run(
            made, cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
        )
        argv, path = json.loads(done.stdout)
        assert argv[1:] == ["a", "b"]
        on_path = [p for p in path if p in ("", str(tmp_path))]
        # -m probe needs the folder: here it comes from PYTHONPATH, as a user's would.
        assert on_path == ([str(tmp_path)] if "-m" in command else [])
