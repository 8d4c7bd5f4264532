"""Two apps (as two processes: own SQLite connections, own lock managers) on one state
folder share their locks and dead properties exactly (sqlite_locks.py, state.py)."""

from __future__ import annotations

import base64
import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav.state import sqlite_locks
from davstore.frontends.webdav.state.sqlite_locks import SqliteLockManager, _SqliteWrites
from tests.webdav.serving import Share, serve_share
from tests.webdav.state.test_state import GET_COLOUR, LOCK_BODY, SET_COLOUR


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Share, Share]]:
    with ExitStack() as stack:
        shares = [
            stack.enter_context(
                serve_share(
                    FileSystemStorage(location=str(tmp_path / "media")),
                    tmp_path / "state",
                    cache_ttl=60,
                )
            )
            for _ in range(2)
        ]
        yield shares[0], shares[1]


def test_a_lock_made_through_one_holds_on_the_other(two: tuple[Share, Share]) -> None:
    one, other = two
    assert one.request("PUT", "l.txt", data=b"l").status_code == 201
    locked = one.request("LOCK", "l.txt", data=LOCK_BODY)
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    assert other.request("PUT", "l.txt", data=b"x").status_code == 423
    assert other.request("DELETE", "l.txt").status_code == 423
    assert other.request("LOCK", "l.txt", data=LOCK_BODY).status_code == 423
    put = other.request("PUT", "l.txt", data=b"mine", headers={"If": f"({token})"})
    assert put.status_code == 204
    assert other.request("UNLOCK", "l.txt", headers={"Lock-Token": token}).status_code == 204
    assert one.request("PUT", "l.txt", data=b"free").status_code == 204
    assert other.request("GET", "l.txt").content == b"free"


def test_dead_properties_set_through_one_show_on_the_other(two: tuple[Share, Share]) -> None:
    one, other = two
    one.request("PUT", "p.txt", data=b"p")
    depth = {"Depth": "0"}
    assert "green" not in other.request("PROPFIND", "p.txt", data=GET_COLOUR, headers=depth).text
    assert one.request("PROPPATCH", "p.txt", data=SET_COLOUR).status_code == 207
    assert "green" in other.request("PROPFIND", "p.txt", data=GET_COLOUR, headers=depth).text
    assert one.request("DELETE", "p.txt").status_code == 204
    other.request("PUT", "p.txt", data=b"new")
    assert "green" not in one.request("PROPFIND", "p.txt", data=GET_COLOUR, headers=depth).text


def test_one_of_many_racing_locks_wins(two: tuple[Share, Share]) -> None:
    one, other = two
    one.request("PUT", "race.txt", data=b"r")

    def lock(index: int) -> int:
        share = (one, other)[index % 2]
        return share.request("LOCK", "race.txt", data=LOCK_BODY).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lock, range(16)))
    assert sorted(codes) == [200] + [423] * 15


def test_a_lock_waits_out_a_put_in_progress_on_the_other(two: tuple[Share, Share]) -> None:
    one, other = two
    size = 3 << 20  # past the small-PUT path: wsgidav's write transaction
    host, port = urlsplit(one.url).netloc.split(":")
    auth = one.session.auth
    assert auth is not None
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            f"PUT /big.bin HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"b" * (size // 2))
        # The other app sees the PUT in progress (its mark in the shared table)...
        marks = other.app.wsgidav.lock_manager._active_writes
        deadline = time.monotonic() + 20
        while not marks.get("/big.bin") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marks.get("/big.bin") == 1
        # ... so a LOCK through it is refused until the PUT is done.
        assert other.request("LOCK", "big.bin", data=LOCK_BODY).status_code == 423
        sock.sendall(b"b" * (size - size // 2))
        assert sock.recv(4096).startswith(b"HTTP/1.1 201")
    assert other.request("LOCK", "big.bin", data=LOCK_BODY).status_code == 200


def test_the_small_put_path_waits_for_lock_creation(two: tuple[Share, Share]) -> None:
    one, _ = two
    manager = one.app.wsgidav.lock_manager
    assert isinstance(manager, SqliteLockManager)
    done = threading.Event()

    def put() -> None:
        one.request("PUT", "small.txt", data=b"s")
        done.set()

    with manager.mutex.hold(shared=False):  # as another process creating a lock
        thread = threading.Thread(target=put)
        thread.start()
        assert not done.wait(0.5)
    assert done.wait(10)
    thread.join()
    assert one.request("GET", "small.txt").content == b"s"


def test_writes_of_a_process_that_stopped_refreshing_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "locks.sqlite3")
    alive, dead = _SqliteWrites(path, "alive"), _SqliteWrites(path, "dead")
    monkeypatch.setattr(sqlite_locks, "WRITES_TTL", 0.3)
    dead.begin("/a")
    alive.begin("/b")
    assert dict(alive.items()) == {"/a": 1, "/b": 1}
    time.sleep(0.4)
    alive.refresh()  # the live one renews its rows; the dead one's are dropped
    assert dict(alive.items()) == {"/b": 1}
    assert alive.get("/a") == 0
    alive.end("/b")
    assert alive.items() == []
    alive.close()
    dead.close()


def test_the_file_mutex_excludes_threads_and_may_be_held_again(tmp_path: Path) -> None:
    mutex = sqlite_locks.FileMutex(str(tmp_path / "m.mutex"))
    entered = threading.Event()

    def other() -> None:
        with mutex.hold(shared=True):
            entered.set()

    with mutex.hold(shared=False):
        with mutex.hold(shared=True):  # held again by this thread: nothing changes
            pass
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.3)  # another thread waits, as another process would
    assert entered.wait(5)
    thread.join()
    with mutex.hold(shared=True), pytest.raises(RuntimeError), mutex.hold(shared=False):
        pass


_OPEN_STATE = """
import sys, time
from davstore.frontends.webdav.state.hidden_files import SqliteHiddenFiles
from davstore.frontends.webdav.state.sqlite_locks import _SqliteWrites
from davstore.frontends.webdav.state import SqliteLockStorage, SqlitePropertyManager
folder, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
SqliteLockStorage(folder + "/locks.sqlite3")
SqlitePropertyManager(folder + "/properties.sqlite3")
_SqliteWrites(folder + "/locks.sqlite3", owner=str(time.time()))
SqliteHiddenFiles(folder + "/macmeta.sqlite3", 1 << 20)
"""


def test_processes_starting_together_share_a_new_state_folder(tmp_path: Path) -> None:
    """Workers open a new state folder at the same moment: none is refused with "database is
    locked" (a worker that was exited at its start, and was started again)."""
    import subprocess
    import sys

    for round_ in range(4):
        folder = tmp_path / f"state{round_}"
        folder.mkdir()
        start = time.time() + 1.0  # every process is imported by then
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_STATE, str(folder), str(start)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
