"""Two or three real ``davstore serve`` processes on one shared store (a folder, or S3 on
moto's server) and one real redis-server: locks, properties and listings are shared; many
clients lose no update; a replica killed mid-upload leaves the old content; Redis going
away stops writes (503), not reads."""

from __future__ import annotations

import concurrent.futures
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.process import ServeProcess
from tests.replicas.cluster import checked_body, replicas, verify_body
from tests.replicas.redis_server import RedisServer
from tests.replicas.webdav import (
    GET_COLOUR,
    SET_COLOUR,
    if_header,
    lock,
    names_in,
    token_of,
    unlock,
)
from tests.s3.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    new_bucket,
    running_moto,
)

#: Seconds the load test runs on local disk: the minute issue 7 asks for (S3 on moto: 10 s).
LOAD_SECONDS = float(os.environ.get("DAVSTORE_REPLICA_LOAD_SECONDS", "60"))
CLIENTS = 16
FILES = 4


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture(params=["filesystem", "s3"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The command-line selection of one store all replicas share."""
    if request.param == "filesystem":
        folder = tmp_path / "shared"
        folder.mkdir()
        return [str(folder)]
    moto: MotoServer = request.getfixturevalue("moto_server")
    options = {
        "bucket_name": new_bucket(moto),
        "endpoint_url": moto.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
        "file_overwrite": "true",
    }
    args = ["--backend", "storages.backends.s3.S3Storage"]
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    return args


def eventually(check: object, timeout: float = 3.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


def test_locks_properties_and_listings_are_shared(
    store_args: list[str], redis_url: str, tmp_path: Path
) -> None:
    with replicas(3, store_args, redis_url, tmp_path) as (a, b, c), requests.Session() as http:
        assert http.put(a.url + "f.txt", data=b"one").status_code == 201
        # Listed by the others at once, though their cache keeps entries for 30 s.
        assert names_in(http.request("PROPFIND", b.url, headers={"Depth": "1"})) >= {"f.txt"}
        http.put(c.url + "g.txt", data=b"two")
        seen = eventually(
            lambda: "g.txt" in names_in(http.request("PROPFIND", b.url, headers={"Depth": "1"}))
        )
        assert seen < 2
        http.put(a.url + "g.txt", data=b"changed")
        eventually(lambda: http.get(b.url + "g.txt").content == b"changed")

        taken = lock(http, a.url + "f.txt")
        assert taken.status_code == 200
        token = token_of(taken)
        for other in (b, c):
            assert http.put(other.url + "f.txt", data=b"no").status_code == 423
            assert lock(http, other.url + "f.txt").status_code == 423
        put = http.put(c.url + "f.txt", data=b"yes", headers=if_header(c.url + "f.txt", token))
        assert put.status_code == 204
        assert unlock(http, b.url + "f.txt", token).status_code == 204
        assert http.put(b.url + "f.txt", data=b"free").status_code == 204

        patched = http.request("PROPPATCH", a.url + "f.txt", data=SET_COLOUR.format(colour="teal"))
        assert patched.status_code == 207
        assert "200 OK" in patched.text, patched.text
        for other in (b, c):
            found = http.request(
                "PROPFIND", other.url + "f.txt", data=GET_COLOUR, headers={"Depth": "0"}
            )
            assert "teal" in found.text


def _client(number: int, servers: list[ServeProcess], deadline: float, done: dict[str, int]) -> int:
    """LOCK, GET, PUT (counter + 1), UNLOCK in a loop, on replicas chosen in turn."""
    rng = random.Random(number)
    cycles = 0
    guard = threading.Lock()
    with requests.Session() as http:
        while time.monotonic() < deadline:
            name = f"f{rng.randrange(FILES)}.bin"
            locker, writer = rng.sample(servers, 2)
            taken = lock(http, locker.url + name, owner=f"client{number}", timeout=30)
            if taken.status_code == 423:
                time.sleep(rng.uniform(0.002, 0.02))
                continue
            assert taken.status_code == 200, (taken.status_code, taken.text)
            token = token_of(taken)
            try:
                current = http.get(locker.url + name, timeout=30)
                assert current.status_code == 200
                counter = verify_body(current.content)
                body = checked_body(counter + 1, f"client{number}", rng.randrange(1, 64 << 10))
                put = http.put(
                    writer.url + name,
                    data=body,
                    headers=if_header(writer.url + name, token),
                    timeout=30,
                )
                assert put.status_code == 204, (put.status_code, put.text)
                # Read back where it was written: another replica learns of the change
                # a moment later (pub/sub), or at once when the file is locked there.
                assert http.get(writer.url + name, timeout=30).content == body
                with guard:
                    done[name] += 1
                cycles += 1
            finally:
                assert unlock(http, locker.url + name, token, timeout=30).status_code == 204
    return cycles


def test_many_clients_lose_no_update(store_args: list[str], redis_url: str, tmp_path: Path) -> None:
    """16 clients over 3 replicas, each cycle a read-modify-write of a counter under a
    LOCK: every cycle that completed is counted in the final files, none is damaged."""
    seconds = LOAD_SECONDS if store_args[0] != "--backend" else min(LOAD_SECONDS, 10)
    with replicas(3, store_args, redis_url, tmp_path) as servers, requests.Session() as http:
        for index in range(FILES):
            body = checked_body(0, "setup", 100)
            assert http.put(servers[0].url + f"f{index}.bin", data=body).status_code == 201
        done = {f"f{index}.bin": 0 for index in range(FILES)}
        deadline = time.monotonic() + seconds
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(_client, number, servers, deadline, done) for number in range(CLIENTS)
            ]
            cycles = [future.result(timeout=seconds + 120) for future in futures]
        assert sum(cycles) == sum(done.values())
        assert sum(cycles) >= CLIENTS  # everyone got through at least once, on average
        for name, count in done.items():
            for server in servers:
                assert verify_body(http.get(server.url + name).content) == count, name


def test_a_replica_killed_mid_upload_leaves_the_old_content(
    store_args: list[str], redis_url: str, tmp_path: Path
) -> None:
    with replicas(3, store_args, redis_url, tmp_path) as (a, b, c), requests.Session() as http:
        old = checked_body(1, "old", 1000)
        assert http.put(b.url + "big.bin", data=old).status_code == 201
        size = 8 << 20
        with socket.create_connection((a.host, a.port), timeout=30) as sock:
            head = f"PUT /big.bin HTTP/1.1\r\nHost: {a.host}\r\nContent-Length: {size}\r\n\r\n"
            sock.sendall(head.encode() + b"z" * (size // 2))
            time.sleep(0.5)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(10)
        for server in (b, c):
            assert http.get(server.url + "big.bin").content == old
            listing = http.request("PROPFIND", server.url, headers={"Depth": "1"})
            assert names_in(listing) == {"", "big.bin"}
        for server in (b, c):
            put = http.put(server.url + "after.txt", data=b"still serving")
            assert put.status_code in (201, 204)
        if store_args[0] != "--backend":
            # The killed replica's spool stays behind on disk, hidden from the share (its
            # name is reserved); nothing else does, but the trash (c's PUT replaced b's
            # after.txt: the first is kept there as a version; tests/vfs/test_trash.py).
            names = sorted(p.name for p in Path(store_args[0]).iterdir())
            visible = [
                n for n in names if not n.startswith(".davstore-upload-") and n != ".davstore-trash"
            ]
            assert visible == ["after.txt", "big.bin"], names


def test_without_redis_locks_are_503_reads_go_on_and_it_recovers(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "kept.txt").write_bytes(b"kept")
    with (
        replicas(2, [str(folder)], private_redis.url, tmp_path) as (a, b),
        requests.Session() as http,
    ):
        token = token_of(lock(http, a.url + "kept.txt"))
        private_redis.stop()
        assert lock(http, b.url + "kept.txt").status_code == 503
        assert lock(http, b.url + "new.txt").status_code == 503
        assert unlock(http, a.url + "kept.txt", token).status_code == 503
        assert http.put(b.url + "kept.txt", data=b"x").status_code == 503
        assert http.get(b.url + "kept.txt").content == b"kept"
        assert http.get(a.url + "kept.txt").content == b"kept"
        listing = http.request("PROPFIND", a.url, headers={"Depth": "1"})
        assert listing.status_code == 207
        assert names_in(listing) == {"", "kept.txt"}
        assert requests.get(a.url + ".davstore/health", timeout=10).status_code == 200
        private_redis.start()
        relock = lock(http, b.url + "kept.txt")
        assert relock.status_code == 200
        assert lock(http, a.url + "kept.txt").status_code == 423
        assert unlock(http, a.url + "kept.txt", token_of(relock)).status_code == 204
        # The change channel is back too: B lists what A writes at once again.
        http.request("PROPFIND", b.url, headers={"Depth": "1"})

        def listed() -> bool:
            http.put(a.url + "probe.txt", data=b"p")
            return "probe.txt" in names_in(http.request("PROPFIND", b.url, headers={"Depth": "1"}))

        eventually(listed, timeout=15)
