"""The change journal across hosts (journal_redis.py): replicas sharing a Redis stream
forget exactly the paths another replica or the site changed; a reader whose cursor fell
behind the stream's trimming forgets everything, one that did not goes on from its cursor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.core.files.storage import FileSystemStorage

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.journal import Record
from davstore.vfs.journal_redis import StreamFollower, append, stream_key

KEY = stream_key("test:")


def _until(condition: Callable[[], bool], bound: float = 10.0) -> bool:
    """Poll ``condition`` (a bound, not a timing: the follower is a thread)."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def connect(redis_url: str) -> Callable[[], redis.Redis]:
    return lambda: redis.Redis.from_url(redis_url)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def followers(
    root: Path, connect: Callable[[], redis.Redis]
) -> Iterator[Callable[..., tuple[VFS, StreamFollower]]]:
    started: list[StreamFollower] = []

    def make(cursor: str | None = None) -> tuple[VFS, StreamFollower]:
        vfs = VFS(adapt(FileSystemStorage(location=str(root))), cache_ttl=600)
        follower = StreamFollower(vfs, connect, key=KEY).start(cursor)
        started.append(follower)
        assert follower.connected.wait(10)
        return vfs, follower

    yield make
    for follower in started:
        follower.close()


def test_a_replica_forgets_what_another_changed_and_keeps_the_rest(
    root: Path, followers: Callable[..., tuple[VFS, StreamFollower]]
) -> None:
    (root / "kept.txt").write_bytes(b"kept")
    writer, _ = followers()
    reader, follower = followers()
    assert reader.lookup("new.txt") is None
    assert reader.stat("kept.txt").size == 4
    with writer.open_write("new.txt") as handle:
        handle.write(b"hello")
    assert _until(lambda: follower.applied == 1)
    assert reader.stat("new.txt").size == 5  # TTL 600 s
    assert reader.cache.get_stat("kept.txt") is not None
    assert follower.dropped == 0


def test_a_site_record_in_the_stream_is_applied(
    root: Path,
    followers: Callable[..., tuple[VFS, StreamFollower]],
    connect: Callable[[], redis.Redis],
) -> None:
    reader, follower = followers()
    assert reader.lookup("uploads/site.txt") is None
    assert reader.lookup("uploads") is None
    (root / "uploads").mkdir()
    (root / "uploads" / "site.txt").write_bytes(b"site")
    append(connect(), KEY, Record("created", "uploads/site.txt", origin="site", writer="site"))
    assert _until(lambda: follower.applied == 1)
    assert reader.stat("uploads/site.txt").size == 4
    assert reader.stat("uploads").is_dir


def test_a_reader_behind_the_trimming_forgets_everything(
    root: Path,
    followers: Callable[..., tuple[VFS, StreamFollower]],
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    cursor = append(client, KEY, Record("created", "first.txt", writer="w"))
    for number in range(50):
        append(client, KEY, Record("created", f"{number}.txt", writer="w"))
    client.xtrim(KEY, maxlen=5, approximate=False)
    _, behind = followers(cursor)
    assert _until(lambda: behind.dropped == 1)
    assert _until(lambda: behind.applied == 5)  # and follows the rest


def test_a_reader_within_the_retention_goes_on_from_its_cursor(
    root: Path,
    followers: Callable[..., tuple[VFS, StreamFollower]],
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    cursor = append(client, KEY, Record("created", "first.txt", writer="w"))
    for number in range(3):
        append(client, KEY, Record("created", f"{number}.txt", writer="w"))
    _, resumed = followers(cursor)
    assert _until(lambda: resumed.applied == 3)
    assert resumed.dropped == 0


def test_a_stream_record_is_told_to_the_watchers_with_a_folders_files(
    root: Path,
    followers: Callable[..., tuple[VFS, StreamFollower]],
    connect: Callable[[], redis.Redis],
) -> None:
    """What a replica learns from the stream reaches its frontends' own caches (a FUSE
    kernel: VFS.watch), and a folder's record keeps the files it names."""
    reader, follower = followers()
    told: list[tuple[str, bool]] = []
    reader.watch(lambda path, tree: told.append((path, tree)))
    record = Record("moved", "d", target="e", is_dir=True, writer="elsewhere", files=("d/a",))
    append(connect(), KEY, record)
    assert _until(lambda: follower.applied == 1)
    assert ("d", True) in told and ("e", True) in told
    (_, fields), *_ = connect().xrange(KEY)
    assert json.loads(fields[b"r"])["files"] == ["d/a"]
