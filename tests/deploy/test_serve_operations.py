"""Operations of ``davstore serve``: health and metrics endpoints (also of several shares), the
access log, a graceful stop that lets an upload in progress finish, and HTTPS checked with
curl."""

from __future__ import annotations

import logging
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from django.core.files.storage import InMemoryStorage

from davstore.errors import StoreUnavailable
from davstore.serving.observability import (
    ACCESS_LOG_DELAY,
    HEALTH_PATH,
    METRICS_PATH,
    flush_access_log,
    instrument,
    instrument_shares,
)
from davstore.store import adapt
from davstore.store.base import ObjectInfo
from davstore.store.memory import MemoryStore
from davstore.vfs import VFS
from tests.conftest import free_port
from tests.process import run_davstore, start_serve
from tests.webdav.serving import serve_share


@pytest.fixture
def served_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "hello.txt").write_bytes(b"hello")
    return folder


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of Prometheus' text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health_metrics_and_access_log(tmp_path: Path, served_folder: Path) -> None:
    args = ["--user", "alice:pw", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        health = requests.get(server.url.rstrip("/") + HEALTH_PATH, timeout=10)
        assert health.status_code == 200  # no credentials needed
        assert health.json() == {"status": "ok"}  # and no details without them
        auth = ("alice", "pw")
        health = requests.get(server.url.rstrip("/") + HEALTH_PATH, auth=auth, timeout=10)
        assert health.json() == {"status": "ok", "store": "ok"}
        assert requests.get(server.url + "hello.txt", timeout=10).status_code == 401
        assert requests.get(server.url + "hello.txt", auth=auth, timeout=10).content == b"hello"
        put = requests.put(server.url + "new.txt", data=b"x" * 1000, auth=auth, timeout=10)
        assert put.status_code == 201
        listing = requests.request(
            "PROPFIND", server.url, headers={"Depth": "1"}, auth=auth, timeout=10
        )
        assert listing.status_code == 207
        metrics_url = server.url.rstrip("/") + METRICS_PATH
        refused = requests.get(metrics_url, timeout=10)
        assert refused.status_code == 401  # the metrics are for the share's users
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="davstore"')
        assert requests.get(metrics_url, auth=("alice", "bad"), timeout=10).status_code == 401
        text = requests.get(metrics_url, auth=auth, timeout=10).text
        assert metric(text, "davstore_http_requests_total", method="PUT", status="201") == 1
        assert metric(text, "davstore_http_requests_total", method="GET", status="401") == 1
        assert metric(text, "davstore_http_requests_total", method="GET", status="200") >= 1
        assert metric(text, "davstore_http_received_bytes_total", method="PUT") == 1000
        assert metric(text, "davstore_http_sent_bytes_total", method="GET") >= 5
        assert metric(text, "davstore_http_request_seconds_count", method="PROPFIND") == 1
        assert metric(text, "davstore_http_errors_total", method="PUT") == 0
        assert 'davstore_http_errors_total{method="PUT"} 0.0' in text  # present at 0
        assert metric(text, "davstore_store_calls_total", call="commit", outcome="ok") == 1
        assert metric(text, "davstore_store_calls_total", call="list", outcome="ok") >= 1
        assert metric(text, "davstore_store_call_seconds_count", call="commit") == 1
        assert metric(text, "process_resident_memory_bytes") > 0
        assert server.stop() == 0
        log = [line for line in server.stderr.splitlines() if "davstore.access" in line]
    assert any(re.search(r" alice PUT /new\.txt 201 in=1000 out=\d+ [\d.]+ms$", x) for x in log)
    assert any(re.search(r" - GET /hello\.txt 401 ", line) for line in log)
    assert any(re.search(r" alice GET /hello\.txt 200 in=0 out=5 ", line) for line in log)
    assert not any("/.davstore/" in line for line in log)  # probes are not logged


class _BrokenStore(MemoryStore):
    def head(self, name: str) -> ObjectInfo:
        raise StoreUnavailable(name, "the backend is down")


def test_health_is_503_when_the_store_fails(tmp_path: Path) -> None:
    storage = InMemoryStorage()
    with serve_share(storage, tmp_path / "state") as share:
        observability = instrument(share.app, share.vfs)
        health = requests.get(share.url + HEALTH_PATH, timeout=10)
        assert health.status_code == 200
        share.vfs.store = _BrokenStore(storage)
        health = requests.get(share.url + HEALTH_PATH, timeout=10)
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable"}  # what failed: for users only
        health = requests.get(share.url + HEALTH_PATH, auth=share.session.auth, timeout=10)
        assert health.status_code == 503
        assert "down" in health.json()["store"]
        assert requests.post(share.url + HEALTH_PATH, timeout=10).status_code == 405
        assert observability.metrics.requests.value(("GET", "503")) == 0
    assert adapt(storage) is not None


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_metrics_port_of_its_own(tmp_path: Path, served_folder: Path) -> None:
    """``--metrics-port``: both endpoints there without credentials, on loopback; the
    share's port keeps the health (without details) and has no metrics."""
    port = free_port()
    args = ["--user", "alice:pw", "--metrics-port", str(port), str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        auth = ("alice", "pw")
        assert requests.get(server.url + "hello.txt", auth=auth, timeout=10).status_code == 200
        assert (
            requests.get(server.url + ".davstore/metrics", auth=auth, timeout=10).status_code == 404
        )
        health = requests.get(server.url + ".davstore/health", auth=auth, timeout=10)
        assert health.json() == {"status": "ok"}
        text = requests.get(f"http://127.0.0.1:{port}{METRICS_PATH}", timeout=10).text
        assert metric(text, "davstore_http_requests_total", method="GET", status="200") >= 1
        health = requests.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=10)
        assert health.json() == {"status": "ok", "store": "ok"}
        assert requests.get(f"http://127.0.0.1:{port}/hello.txt", timeout=10).status_code == 404
        assert listening_addresses(port) == {"127.0.0.1"}  # loopback only
        assert server.stop() == 0
        assert f"metrics at http://127.0.0.1:{port}/.davstore/metrics" in server.stderr


def test_a_taken_metrics_port_is_refused(tmp_path: Path, served_folder: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            done = run_davstore(
                [
                    "serve",
                    "--anonymous",
                    "--port",
                    "0",
                    "--metrics-port",
                    str(port),
                    "--workers",
                    workers,
                    str(served_folder),
                ],
                cwd=tmp_path,
            )
            assert done.returncode == 1, done.stderr
            assert f"cannot listen on 127.0.0.1:{port} (--metrics-port)" in done.stderr
            assert "Traceback" not in done.stderr


def test_anonymous_share_metrics_need_no_credentials(tmp_path: Path, served_folder: Path) -> None:
    with start_serve(["--anonymous", str(served_folder)], cwd=tmp_path) as server:
        assert requests.get(server.url + ".davstore/metrics", timeout=10).status_code == 200
        health = requests.get(server.url + ".davstore/health", timeout=10)
        assert health.json() == {"status": "ok", "store": "ok"}


def test_health_of_several_shares_names_each(tmp_path: Path) -> None:
    """``manage.py davstore serve``: one endpoint for every share, 503 when any store fails."""
    storages = {"media": InMemoryStorage(), "static": InMemoryStorage()}
    shares = {name: VFS(adapt(storage)) for name, storage in storages.items()}

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("204 No Content", [])
        return [b""]

    observability = instrument_shares(app, shares)
    try:
        assert observability.health() == (
            200,
            {"status": "ok", "shares": {"media": "ok", "static": "ok"}},
        )
        shares["static"].store = _BrokenStore(storages["static"])
        code, document = observability.health()
        assert code == 503
        assert document["status"] == "unavailable"
        assert document["shares"]["media"] == "ok"
        assert "the backend is down" in document["shares"]["static"]
    finally:
        observability.close()


def test_stop_lets_an_upload_in_progress_finish(tmp_path: Path, served_folder: Path) -> None:
    size = 1 << 20
    args = ["--anonymous", "--grace-period", "20", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            head = (
                f"PUT /hello.txt HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                f"Content-Length: {size}\r\n\r\n"
            )
            sock.sendall(head.encode() + b"y" * (size // 2))
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # stopping: no new connections, the upload goes on
            assert server.running
            with pytest.raises(OSError):
                socket.create_connection((server.host, server.port), timeout=2).close()
            sock.sendall(b"y" * (size - size // 2))
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 204"), answer
        assert server.proc.wait(20) == 0
        assert "Traceback" not in server.stderr
    assert (served_folder / "hello.txt").read_bytes() == b"y" * size


def test_tls_with_curl(tmp_path: Path, served_folder: Path) -> None:
    if shutil.which("curl") is None or shutil.which("openssl") is None:
        pytest.fail("needs curl and openssl (tests/run.sh installs them)")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    args = ["--user", "bob:pw", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]
    with start_serve([*args, str(served_folder)], cwd=tmp_path) as server:
        curl = [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--cacert",
            str(tmp_path / "cert.pem"),
        ]
        got = subprocess.run(
            [*curl, "-u", "bob:pw", server.url + "hello.txt"], capture_output=True, check=True
        )
        assert got.stdout == b"hello"
        (tmp_path / "up.txt").write_bytes(b"over tls")
        subprocess.run(
            [*curl, "-u", "bob:pw", "-T", str(tmp_path / "up.txt"), server.url + "up.txt"],
            capture_output=True,
            check=True,
        )
        assert (served_folder / "up.txt").read_bytes() == b"over tls"
        health = subprocess.run(
            [*curl, server.url.rstrip("/") + HEALTH_PATH], capture_output=True, check=True
        )
        assert b'"ok"' in health.stdout
        untrusted = subprocess.run(
            ["curl", "--silent", server.url + "hello.txt"], capture_output=True, check=False
        )
        assert untrusted.returncode == 60  # certificate not trusted without --cacert


def test_access_log_lines_come_in_order_off_the_request_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Requests only queue their line; the background writer hands them to logging in
    order, stamped with the time each request ended, within ACCESS_LOG_DELAY."""
    caplog.set_level(logging.INFO, logger="davstore.access")
    with serve_share(InMemoryStorage(), tmp_path / "state") as share:
        instrument(share.app, share.vfs)
        before = time.time()
        for k in range(20):
            assert share.request("PUT", f"f{k}.txt", data=b"x" * k).status_code == 201
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [r for r in caplog.records if r.name == "davstore.access"]
            if len(lines) == 20:
                break
            time.sleep(ACCESS_LOG_DELAY / 2)
        flush_access_log()
    lines = [r for r in caplog.records if r.name == "davstore.access"]
    assert [r.getMessage().split()[3] for r in lines] == [f"/f{k}.txt" for k in range(20)]
    assert all(f" in={k} " in r.getMessage() for k, r in enumerate(lines))
    stamps = [r.created for r in lines]
    assert stamps == sorted(stamps) and before <= stamps[0] <= stamps[-1] <= time.time()
