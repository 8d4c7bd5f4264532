"""Two WebDAV apps on one store and one Redis, in this process: locks, properties and
cache invalidation are shared; Redis going away is 503 for writes, reads go on."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav.state import open_lock_storage
from davstore.frontends.webdav.state.redis_state import (
    RedisLockManager,
    RedisLockStorage,
    RedisPropertyManager,
    parse_redis_url,
)
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
from tests.webdav.serving import Share, serve_share
from tests.webdav.state.test_state import check_replace_tree


@contextlib.contextmanager
def two_replicas(
    tmp_path: Path, url: str, *, cache_ttl: float = 30.0
) -> Iterator[tuple[Share, Share]]:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    options = {"lock_storage": url, "property_storage": url, "cache_ttl": cache_ttl}
    with (
        serve_share(FileSystemStorage(location=str(media)), tmp_path / "a", **options) as a,
        serve_share(FileSystemStorage(location=str(media)), tmp_path / "b", **options) as b,
    ):
        yield a, b


def test_redis_urls_pick_the_redis_state(tmp_path: Path, redis_url: str) -> None:
    storage = open_lock_storage(redis_url + "?prefix=one:", tmp_path)
    assert isinstance(storage, RedisLockStorage)
    assert storage.prefix == "one:"
    with pytest.raises(ValueError, match="host"):
        parse_redis_url("redis:///0")
    with two_replicas(tmp_path, redis_url) as (a, _b):
        assert isinstance(a.app.wsgidav.lock_manager, RedisLockManager)
        assert isinstance(a.app.wsgidav.prop_manager, RedisPropertyManager)


def test_a_lock_taken_on_one_replica_holds_on_the_other(tmp_path: Path, redis_url: str) -> None:
    with two_replicas(tmp_path, redis_url) as (a, b):
        assert a.request("PUT", "f.txt", data=b"one").status_code == 201
        taken = lock(a.session, a("f.txt"))
        assert taken.status_code == 200
        token = token_of(taken)
        assert b.request("PUT", "f.txt", data=b"two").status_code == 423
        assert b.request("DELETE", "f.txt").status_code == 423
        assert lock(b.session, b("f.txt")).status_code == 423
        put = b.request("PUT", "f.txt", data=b"three", headers=if_header(b("f.txt"), token))
        assert put.status_code == 204
        assert unlock(b.session, b("f.txt"), token).status_code == 204
        assert b.request("PUT", "f.txt", data=b"four").status_code == 204
        assert a.request("GET", "f.txt").content == b"four"


def test_lock_acquisition_is_atomic_across_replicas(tmp_path: Path, redis_url: str) -> None:
    """Many LOCKs at once through both apps: exactly one is granted each round."""
    with two_replicas(tmp_path, redis_url) as (a, b):
        a.request("PUT", "race.txt", data=b"x")
        for _round in range(5):
            barrier = threading.Barrier(8)

            def attempt(i: int, barrier: threading.Barrier = barrier) -> tuple[int, str | None]:
                share = (a, b)[i % 2]
                with requests.Session() as session:
                    session.auth = share.session.auth
                    barrier.wait()
                    got = lock(session, share("race.txt"), owner=f"c{i}")
                    return got.status_code, token_of(got) if got.status_code == 200 else None

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                results = list(pool.map(attempt, range(8)))
            granted = [token for status, token in results if status == 200]
            assert len(granted) == 1, results
            assert sorted(status for status, _ in results) == [200] + [423] * 7
            assert unlock(a.session, a("race.txt"), granted[0]).status_code == 204


def test_properties_are_shared_and_follow_moves(tmp_path: Path, redis_url: str) -> None:
    with two_replicas(tmp_path, redis_url) as (a, b):
        a.request("MKCOL", "d")
        a.request("PUT", "d/p.txt", data=b"p")
        patched = a.request("PROPPATCH", "d/p.txt", data=SET_COLOUR.format(colour="green"))
        assert patched.status_code == 207
        found = b.request("PROPFIND", "d/p.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" in found.text
        assert b.request("MOVE", "d", headers={"Destination": b("e")}).status_code == 201
        moved = a.request("PROPFIND", "e/p.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" in moved.text
        assert b.request("COPY", "e/p.txt", headers={"Destination": b("c.txt")}).status_code == 201
        copied = a.request("PROPFIND", "c.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" in copied.text
        # A folder's COPY is one call: the properties of its members go with it.
        assert b.request("COPY", "e", headers={"Destination": b("f")}).status_code == 201
        below = a.request("PROPFIND", "f/p.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" in below.text
        assert a.request("DELETE", "e").status_code == 204
        a.request("MKCOL", "e")
        a.request("PUT", "e/p.txt", data=b"new")
        fresh = b.request("PROPFIND", "e/p.txt", data=GET_COLOUR, headers={"Depth": "0"})
        assert "green" not in fresh.text


def _eventually(check: object, timeout: float = 2.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError("not within the time")


def test_changes_on_one_replica_are_listed_by_the_other_at_once(
    tmp_path: Path, redis_url: str
) -> None:
    """With a 30 s cache, only the change channel can make B see A's changes this soon."""
    with two_replicas(tmp_path, redis_url, cache_ttl=30) as (a, b):
        depth1 = {"Depth": "1"}
        assert names_in(b.request("PROPFIND", "", headers=depth1)) == {""}
        assert b.request("GET", "n.txt").status_code == 404  # a cached absence
        a.request("PUT", "n.txt", data=b"new")
        a.request("MKCOL", "folder")
        seen = _eventually(
            lambda: {"n.txt", "folder"} <= names_in(b.request("PROPFIND", "", headers=depth1))
        )
        assert seen < 2
        assert b.request("GET", "n.txt").content == b"new"
        a.request("PUT", "n.txt", data=b"longer content")
        _eventually(lambda: b.request("GET", "n.txt").content == b"longer content")
        a.request("MOVE", "folder", headers={"Destination": a("moved")})
        _eventually(
            lambda: (
                names_in(b.request("PROPFIND", "", headers=depth1)) >= {"moved"}
                and "folder" not in names_in(b.request("PROPFIND", "", headers=depth1))
            )
        )
        a.request("DELETE", "n.txt")
        _eventually(lambda: b.request("GET", "n.txt").status_code == 404)


def test_without_redis_writes_are_503_and_reads_go_on(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    with two_replicas(tmp_path, private_redis.url, cache_ttl=1) as (a, b):
        a.request("PUT", "keep.txt", data=b"kept")
        token = token_of(lock(a.session, a("keep.txt")))
        private_redis.stop()
        assert lock(b.session, b("other.txt")).status_code == 503
        assert not (tmp_path / "media" / "other.txt").exists()
        assert unlock(a.session, a("keep.txt"), token).status_code == 503
        assert b.request("PUT", "keep.txt", data=b"x").status_code == 503
        assert (
            b.request("PROPPATCH", "keep.txt", data=SET_COLOUR.format(colour="red")).status_code
            == 503
        )
        assert b.request("GET", "keep.txt").content == b"kept"
        assert b.request("HEAD", "keep.txt").status_code == 200
        listing = b.request("PROPFIND", "", headers={"Depth": "1"})
        assert listing.status_code == 207
        assert "keep.txt" in names_in(listing)
        allprop = b.request("PROPFIND", "keep.txt", headers={"Depth": "0"})
        assert allprop.status_code == 207
        private_redis.start()
        # Redis restarted empty (no persistence): the old lock is gone, writes work again.
        assert b.request("PUT", "keep.txt", data=b"back").status_code == 204
        relock = lock(b.session, b("keep.txt"))
        assert relock.status_code == 200
        assert lock(a.session, a("keep.txt")).status_code == 423
        assert unlock(a.session, a("keep.txt"), token_of(relock)).status_code == 204


def test_redis_locks_are_capped_and_leave_no_empty_file(tmp_path: Path, redis_url: str) -> None:
    """The bounds of docs/SECURITY.md on the Redis lock storage: Infinite is the cap, a
    longer lock kept from before is shortened when a replica connects, and the empty file
    of an unwritten LOCK goes with its UNLOCK."""
    import json
    from xml.etree import ElementTree

    from davstore.frontends.webdav.limits import DavLimits

    media = tmp_path / "media"
    media.mkdir()
    options = {"lock_storage": redis_url, "property_storage": redis_url}
    storage = FileSystemStorage(location=str(media))
    with serve_share(storage, tmp_path / "a", **options) as a:
        (media / "f.txt").write_bytes(b"f")
        taken = a.request("LOCK", "f.txt", data=LOCK_BODY, headers={"Timeout": "Infinite"})
        timeout = ElementTree.fromstring(taken.content).findtext(".//{DAV:}timeout") or ""
        assert 86400 - 60 <= int(timeout.removeprefix("Second-")) <= 86400
        redis_storage = a.app.wsgidav.lock_manager.storage
        client = redis_storage.redis
        (key,) = [k for k in client.scan_iter(match=f"{redis_storage.prefix}lock:*")]
        lock_record = json.loads(client.get(key))
        lock_record["expire"] = time.time() + 30 * 86400  # as wsgidav's four weeks left it
        client.set(key, json.dumps(lock_record))

        created = a.request("LOCK", "new.txt", data=LOCK_BODY)
        assert created.status_code == 201
        assert (media / "new.txt").exists()
        assert unlock(a.session, a("new.txt"), token_of(created)).status_code == 204
        assert not (media / "new.txt").exists()
    limits = DavLimits(max_lock_timeout=600)
    with serve_share(storage, tmp_path / "b", limits=limits, **options) as b:
        fresh = b.app.wsgidav.lock_manager.storage.redis
        assert json.loads(fresh.get(key))["expire"] <= time.time() + 600


LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def test_the_redis_property_manager_replaces_trees(redis_url: str) -> None:
    manager = RedisPropertyManager(parse_redis_url(redis_url))
    try:
        check_replace_tree(manager)
    finally:
        manager.close()


def test_the_redis_property_manager_writes_a_tree_in_one_transaction(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder's COPY (to a new name, onto a folder) and MOVE write the tree's dead
    properties in one MULTI/EXEC: with Redis lost after one round trip of writes, each
    still lands whole (before, a replace lost the destination's old properties and wrote
    none of the new)."""
    import redis

    manager = RedisPropertyManager(parse_redis_url(redis_url))
    try:
        for url in ("/src/", "/src/a.txt", "/src/sub/b.txt", "/dst/", "/dst/old.txt"):
            manager.write_property(url, "{x}p", url.encode())
        real = manager.redis.pipeline
        writes: list[int] = []

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real(*args, **kwargs)
            execute = pipe.execute

            def once(*a: Any, **k: Any) -> Any:
                if writes:
                    raise redis.ConnectionError("lost after one transaction")
                writes.append(1)
                return execute(*a, **k)

            pipe.execute = once
            return pipe

        monkeypatch.setattr(manager.redis, "pipeline", pipeline)

        def props(*urls: str) -> list[bytes | None]:
            return [manager.get_property(url, "{x}p") for url in urls]

        manager.replace_tree("/src/", "/dst/")
        assert props("/dst/", "/dst/a.txt", "/dst/sub/b.txt", "/dst/old.txt") == [
            b"/src/",
            b"/src/a.txt",
            b"/src/sub/b.txt",
            None,
        ]
        writes.clear()
        manager.copy_tree("/src/", "/copy/")
        assert props("/copy/", "/copy/a.txt", "/copy/sub/b.txt") == [
            b"/src/",
            b"/src/a.txt",
            b"/src/sub/b.txt",
        ]
        writes.clear()
        manager.move_properties("/copy/", "/moved/", with_children=True)
        assert props("/moved/", "/moved/a.txt", "/moved/sub/b.txt", "/copy/a.txt") == [
            b"/src/",
            b"/src/a.txt",
            b"/src/sub/b.txt",
            None,
        ]
    finally:
        manager.close()
