"""``manage.py davstore serve``: start-up checks, the shares with Django users, the site
(another process, FileSystemStorage) and the share seeing each other's files, and
``--workers``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.conftest import free_port
from tests.django.project import Project, make_project
from tests.fuse.mounting import force_unmount, is_mounted
from tests.process import ServeProcess, wait_for_workers, workers_of
from tests.webdav.state.test_state import LOCK_BODY

TTL = 1.0


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "site")
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_user('alice', password='pw', is_staff=True);"
        "User.objects.create_user('bob', password='pw')"
    )
    assert made.returncode == 0, made.stderr
    return project


@pytest.fixture
def server(project: Project) -> Iterator[ServeProcess]:
    with project.serve() as server:
        yield server


def dav(method: str, server: ServeProcess, path: str, **kwargs: object) -> requests.Response:
    kwargs.setdefault("auth", ("alice", "pw"))
    return requests.request(method, server.url + path.lstrip("/"), timeout=10, **kwargs)  # type: ignore[arg-type]


def listed(server: ServeProcess, folder: str) -> list[str]:
    answer = dav("PROPFIND", server, folder, headers={"Depth": "1"})
    assert answer.status_code == 207, answer.text
    import re

    hrefs = re.findall(r"<[dD]:href>([^<]*)</[dD]:href>", answer.text)
    return sorted(h[len("/" + folder.lstrip("/")) :] for h in hrefs[1:])


def test_bad_setting_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "bad", davstore={"SHARES": {"media": {"STORAGE": "nope"}}}, migrate=False
    )
    done = project.run("davstore", "serve")
    assert done.returncode != 0
    assert "DAVSTORE['SHARES']['media']['STORAGE']: unknown storage alias 'nope'" in done.stderr


def test_unknown_share_is_a_usage_error(project: Project) -> None:
    done = project.run("davstore", "serve", "--share", "nope")
    assert done.returncode == 2
    assert "no share named 'nope' in DAVSTORE (known: media)" in done.stderr


def test_serve_uses_django_users(server: ServeProcess) -> None:
    assert "/media/" in server.stdout
    assert dav("GET", server, "media/", auth=("alice", "wrong")).status_code == 401
    assert dav("GET", server, "media/", auth=("bob", "pw")).status_code == 403
    assert dav("GET", server, "media/").status_code == 200


def test_serve_has_the_operations_endpoints_and_access_log(server: ServeProcess) -> None:
    health = requests.get(server.url + ".davstore/health", timeout=10)
    assert health.status_code == 200  # no credentials needed
    assert health.json() == {"status": "ok"}  # no details without them
    health = requests.get(server.url + ".davstore/health", auth=("alice", "pw"), timeout=10)
    assert health.json() == {"status": "ok", "shares": {"media": "ok"}}
    # The metrics are for staff users only.
    assert requests.get(server.url + ".davstore/metrics", timeout=10).status_code == 401
    metrics_of_bob = requests.get(server.url + ".davstore/metrics", auth=("bob", "pw"), timeout=10)
    assert metrics_of_bob.status_code == 401
    assert dav("PUT", server, "media/new.txt", data=b"x" * 100).status_code == 201
    assert dav("GET", server, "media/new.txt", auth=("bob", "pw")).status_code == 403
    time.sleep(1.2)  # queued samples are folded at a scrape; the log within 0.1 s
    page = requests.get(server.url + ".davstore/metrics", auth=("alice", "pw"), timeout=10).text
    assert 'davstore_http_requests_total{method="PUT",status="201"} 1.0' in page
    assert 'davstore_http_requests_total{method="GET",status="403"} 1.0' in page
    assert re.search(r'davstore_store_calls_total\{call="\w+",outcome="ok"\} [1-9]', page)
    assert server.stop() == 0
    log = [line for line in server.stderr.splitlines() if "davstore.access" in line]
    assert any(re.search(r" alice PUT /media/new\.txt 201 in=100 out=\d+ ", x) for x in log), log
    assert any(re.search(r" bob GET /media/new\.txt 403 ", line) for line in log), log


def test_serve_has_a_metrics_port_of_its_own(tmp_path: Path) -> None:
    """``DAVSTORE['METRICS_PORT']`` (``--metrics-port``): the endpoints there without
    credentials (and with ``--workers``), the share's port without the metrics."""
    port = free_port()
    project = make_project(tmp_path / "site", davstore={"METRICS_PORT": port})
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_user('alice', password='pw', is_staff=True)"
    )
    assert made.returncode == 0, made.stderr
    with project.serve("--workers", "2") as server:
        wait_for_workers(server, 2)
        metrics = f"http://127.0.0.1:{port}/.davstore/metrics"
        assert dav("PUT", server, "media/new.txt", data=b"x").status_code == 201
        time.sleep(1.5)  # queued samples are folded at a scrape
        for _ in range(4):  # each on a new connection: either worker
            page = requests.get(metrics, timeout=10, headers={"Connection": "close"})
            assert page.status_code == 200
            assert 'davstore_http_requests_total{method="PUT",status="201"} 1.0' in page.text
        health = requests.get(f"http://127.0.0.1:{port}/.davstore/health", timeout=10)
        assert health.json() == {"status": "ok", "shares": {"media": "ok"}}
        assert dav("GET", server, ".davstore/metrics").status_code == 404
        assert requests.get(server.url + ".davstore/health", timeout=10).json() == {"status": "ok"}
        assert server.stop(signal.SIGTERM, timeout=20) == 0


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_mac_metadata_store_keeps_the_files_in_the_share(tmp_path: Path, how: str) -> None:
    """``manage.py davstore serve --mac-metadata store`` (or ``MAC_METADATA: "store"`` in
    the share's ``DAVSTORE`` entry) stores a Mac's ``._*`` files in the share as ordinary
    files. Before davstore/options.py the flag was parsed and ignored (the file went to the
    state folder) and the setting did not exist."""
    share: dict[str, object] = {"STORAGE": "default"}
    if how == "setting":
        share["MAC_METADATA"] = "store"
    project = make_project(tmp_path / "site", davstore={"SHARES": {"media": share}})
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_user('alice', password='pw', is_staff=True)"
    )
    assert made.returncode == 0, made.stderr
    flags = ("--mac-metadata", "store") if how == "flag" else ()
    with project.serve(*flags) as server:
        assert dav("PUT", server, "media/._report.txt", data=b"resource fork").status_code == 201
        assert (project.media / "._report.txt").read_bytes() == b"resource fork"
        assert "._report.txt" in listed(server, "media/")


def test_site_and_share_see_each_others_files(project: Project, server: ServeProcess) -> None:
    saved = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "print(s.save('report.txt', ContentFile(b'one')));"
        "print(s.save('report.txt', ContentFile(b'two')));"
        "print(s.save('uploads/2024/05/photo.jpg', ContentFile(b'jpg')))"
    )
    assert saved.returncode == 0, saved.stderr
    first, second, photo = saved.stdout.split()
    assert first == "report.txt" and second.startswith("report_") and second != first
    assert photo == "uploads/2024/05/photo.jpg"
    deadline = time.monotonic() + TTL + 2
    while second not in listed(server, "media/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listed(server, "media/") == sorted([first, second, "uploads/"])
    assert listed(server, "media/uploads/2024/05/") == ["photo.jpg"]
    assert dav("GET", server, f"media/{second}").content == b"two"

    assert dav("PUT", server, "media/report.txt", data=b"edited \x00 bytes").status_code == 204
    assert dav("DELETE", server, f"media/{second}").status_code == 204
    read = project.python(
        "from django.core.files.storage import default_storage as s;"
        "import sys;"
        "sys.stdout.write(s.open('report.txt').read().hex() + ' ' + "
        f"str(s.exists({second!r})) + ' ' + str(s.size('report.txt')))"
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == [b"edited \x00 bytes".hex(), "False", "14"]


def test_workers_serve_the_shares_with_django_users(project: Project) -> None:
    """``--workers 2``: two processes on the port, each with the project's users and each
    seeing the other's changes at once."""
    with project.serve("--workers", "2", "--cache-ttl", "60") as server:
        wait_for_workers(server, 2)
        assert server.stdout.count("davstore is serving") == 1
        assert "with 2 workers" in server.stdout
        assert "/media/" in server.stdout
        for _ in range(6):  # each request on a new connection: the kernel spreads them
            assert dav("GET", server, "media/", auth=("alice", "wrong")).status_code == 401
            assert dav("GET", server, "media/", auth=("bob", "pw")).status_code == 403
            assert dav("GET", server, "media/").status_code == 200

        # Every worker caches "no such folder" (for 60 s); a folder made through one is
        # there at once through the other.
        for index in range(6):
            assert dav("PROPFIND", server, f"media/d{index}/").status_code == 404
        for index in range(6):
            assert dav("MKCOL", server, f"media/d{index}/").status_code == 201
            put = dav("PUT", server, f"media/d{index}/f.txt", data=b"x" * index)
            assert put.status_code == 201, put.text
        for index in range(6):
            assert dav("GET", server, f"media/d{index}/f.txt").content == b"x" * index
        assert (project.media / "d5" / "f.txt").read_bytes() == b"xxxxx"

        # A lock taken through one worker holds in the other.
        assert dav("LOCK", server, "media/d1/f.txt", data=LOCK_BODY).status_code == 200
        for _ in range(6):
            assert dav("PUT", server, "media/d1/f.txt", data=b"y").status_code == 423
        # The metrics of both, summed, from either (queued samples folded within 1 s).
        time.sleep(1.5)
        for _ in range(4):
            page = requests.get(
                server.url + ".davstore/metrics", auth=("alice", "pw"), timeout=10
            ).text
            assert 'davstore_http_requests_total{method="PUT",status="423"} 6.0' in page
        assert server.stop(signal.SIGTERM, timeout=20) == 0
        assert "Traceback" not in server.stderr
        assert "starting it again" not in server.stderr  # no worker failed at its start
        assert workers_of(server) == []


def test_workers_refuse_state_one_process_keeps(project: Project) -> None:
    done = project.run("davstore", "serve", "--workers", "2", "--lock-storage", "memory:")
    assert done.returncode == 2, done.stderr
    assert "--workers needs --lock-storage that every process shares, not memory:" in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_need_the_command_line(tmp_path: Path) -> None:
    """From ``call_command`` there is no command line for the workers to run again."""
    with pytest.raises(CommandError, match="run it from the command line"):
        call_command("davstore", "serve", "--workers", "2", "--state-dir", str(tmp_path))


def test_workers_never_run_code_uploaded_to_a_share(project: Project, tmp_path: Path) -> None:
    """``python -m django davstore serve --workers 2`` started inside the media folder; a
    user uploads ``davstore/__init__.py`` there; a worker restarts (issue 20)."""
    marker = tmp_path / "ran"
    with project.serve("--workers", "2", cwd=project.media) as server:
        first = wait_for_workers(server, 2)
        assert dav("MKCOL", server, "media/davstore/").status_code == 201
        code = f"open({str(marker)!r}, 'w').write('uploaded code ran')\n"
        assert dav("PUT", server, "media/davstore/__init__.py", data=code).status_code == 201
        os.kill(first[0], signal.SIGKILL)
        wait_for_workers(server, 2, besides=frozenset({first[0]}))
        for _ in range(6):  # each on a new connection: both workers
            assert dav("GET", server, "media/", headers={"Accept": "text/html"}).status_code == 200
        assert not marker.exists()
        assert server.stop(signal.SIGTERM, timeout=20) == 0
        assert "Traceback" not in server.stderr
    assert not marker.exists()


def test_mount_without_a_share_name_mounts_the_only_share(project: Project, tmp_path: Path) -> None:
    """``manage.py davstore mount MOUNTPOINT`` was a bare argparse error (issue 24 item 7)."""
    (project.media / "only.txt").write_bytes(b"the only share")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log = tmp_path / "mount.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            project.command("davstore", "mount", str(mountpoint), "--foreground"),
            cwd=project.root,
            env=project.env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not is_mounted(mountpoint):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the mount did not show in 30 s"
                time.sleep(0.1)
            assert (mountpoint / "only.txt").read_bytes() == b"the only share"
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            force_unmount(mountpoint)


def test_mount_without_a_share_name_names_the_choices(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "two",
        davstore={
            "SHARES": {
                "media": {"STORAGE": "default"},
                "archive": {"STORAGE": "default", "READ_ONLY": True},
            }
        },
        migrate=False,
    )
    done = project.run("davstore", "mount", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "2 shares (media, archive): name the one to mount" in done.stderr
    assert "the following arguments are required" not in done.stderr
