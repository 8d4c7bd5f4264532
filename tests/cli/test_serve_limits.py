"""The limits of a real ``davstore serve`` facing hostile clients, with one process and with
``--workers 2``: the limit of open files (raised at start; idle connections closed first
near it), the deadline of a request head, connections per client address, and slow clients
that cost a connection, not a thread."""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.process import ServeProcess, open_files_limit, start_serve, wait_for_workers
from tests.webdav.rawhttp import SlowClients
from tests.webdav.serving import PASSWORD, USER
from tests.webdav.test_slow_clients import BIG, answered_while_they_hang

WORKERS = [1, 2]


@pytest.fixture
def served_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "hello.txt").write_bytes(b"hello")
    return folder


@contextlib.contextmanager
def serving(
    tmp_path: Path,
    folder: Path,
    workers: int,
    *args: str,
    open_files: tuple[int, int] | None = None,
) -> Iterator[tuple[ServeProcess, list[int]]]:
    """``davstore serve`` and the pids of the processes that serve (its workers), once each
    has started its server: the port answers as soon as one worker does, and a worker
    raises its soft limit of open files to the hard one when its server starts."""
    with start_serve(
        [str(folder), "--workers", str(workers), *args], cwd=tmp_path, open_files=open_files
    ) as server:
        pids = wait_for_workers(server, workers) if workers > 1 else [server.proc.pid]
        deadline = time.monotonic() + 30
        while not all(soft >= min(hard, 1 << 20) for soft, hard in map(open_files_limit, pids)):
            assert time.monotonic() < deadline, [open_files_limit(pid) for pid in pids]
            time.sleep(0.1)
        yield server, pids


@contextlib.contextmanager
def connections(server: ServeProcess, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection((server.host, server.port), timeout=10))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_or_answered(sock: socket.socket) -> bool:
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


@pytest.fixture(autouse=True)
def _enough_open_files() -> None:
    """The test process itself holds hundreds of connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))


@pytest.mark.parametrize("workers", WORKERS)
def test_the_soft_limit_of_open_files_is_raised_to_the_hard_one(
    tmp_path: Path, served_folder: Path, workers: int
) -> None:
    with serving(tmp_path, served_folder, workers, "--anonymous", open_files=(256, 4096)) as (
        _,
        pids,
    ):
        assert [open_files_limit(pid) for pid in pids] == [(4096, 4096)] * workers


@pytest.mark.parametrize("workers", WORKERS)
def test_idle_connections_past_the_limit_of_open_files_leave_the_server_answering(
    tmp_path: Path, served_folder: Path, workers: int
) -> None:
    """600 idle connections against a hard limit of 256 open files a process: the longest
    idle are closed, and a new client is answered."""
    with (
        serving(
            tmp_path,
            served_folder,
            workers,
            "--anonymous",
            "--max-connections-per-client",
            "100000",
            open_files=(256, 256),
        ) as (server, _),
        connections(server, 600) as idle,
    ):
        for _ in range(3):
            answer = requests.get(server.url + "hello.txt", timeout=20)
            assert answer.status_code == 200 and answer.content == b"hello"
        time.sleep(0.5)
        held = sum(not closed_or_answered(sock) for sock in idle)
        assert 0 < held <= 256 * workers
        assert server.running


@pytest.mark.parametrize("workers", WORKERS)
def test_a_trickled_head_is_cut_at_the_header_timeout(
    tmp_path: Path, served_folder: Path, workers: int
) -> None:
    with (
        serving(tmp_path, served_folder, workers, "--anonymous", "--header-timeout", "1") as (
            server,
            _,
        ),
        connections(server, 4) as trickles,
    ):
        for sock in trickles:
            sock.sendall(b"GET /hello.txt HTTP/1.1\r\n")
        deadline = time.monotonic() + 20  # bounds a failing test only
        while time.monotonic() < deadline and not all(map(closed_or_answered, trickles)):
            for sock in trickles:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            time.sleep(0.2)
        for sock in trickles:
            assert sock.recv(1024).startswith(b"HTTP/1.1 408 ")
        assert requests.get(server.url + "hello.txt", timeout=20).status_code == 200


@pytest.mark.parametrize("workers", WORKERS)
def test_connections_per_client_address_are_capped(
    tmp_path: Path, served_folder: Path, workers: int
) -> None:
    """Each process keeps 3 of one address's connections; the others get 503."""
    with (
        serving(
            tmp_path, served_folder, workers, "--anonymous", "--max-connections-per-client", "3"
        ) as (server, _),
        connections(server, 20) as socks,
    ):
        time.sleep(1)
        refused = [sock for sock in socks if closed_or_answered(sock)]
        for sock in refused:
            assert sock.recv(1024).startswith(b"HTTP/1.1 503 ")
        assert 3 <= len(socks) - len(refused) <= 3 * workers
        kept = next(sock for sock in socks if sock not in refused)
        kept.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(1024).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("workers", WORKERS)
def test_slow_clients_hold_no_thread(tmp_path: Path, served_folder: Path, workers: int) -> None:
    """Six slow PUTs and six unread GETs against two threads a process."""
    (served_folder / "big.bin").write_bytes(b"b" * BIG)
    (served_folder / "locked.txt").write_bytes(b"locked")
    (served_folder / "moved.txt").write_bytes(b"moved")
    with (
        serving(
            tmp_path, served_folder, workers, "--user", f"{USER}:{PASSWORD}", "--threads", "2"
        ) as (server, _),
        SlowClients(server.url.rstrip("/")) as slow,
        requests.Session() as session,
    ):
        session.auth = (USER, PASSWORD)
        for k in range(6):
            slow.put(f"/slow-{k}.bin", 500_000)
            slow.get("/big.bin")
        answered_while_they_hang(session, server.url.rstrip("/"))
        assert slow.all_pending()
