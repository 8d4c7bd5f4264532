"""The VFS's shared tables under many threads, without the locks they used to take.

The metadata cache and the registries of open handles are changed by one dict or list
operation at a time and walked through copies (davstore/vfs/cache.py, ``VFS._reading``).
These tests run threads against them at once and check that nothing raises ("dictionary
changed size during iteration") and that what is left afterwards is right.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.cache import MISSING, MetadataCache

THREADS = 4


def _run(work: Callable[[int], None]) -> None:
    """``work(k)`` on THREADS threads at once, switching often; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def body(k: int) -> None:
        start.wait()
        try:
            work(k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    try:
        threads = [threading.Thread(target=body, args=(k,)) for k in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    if errors:
        raise errors[0]


def test_cache_under_threads() -> None:
    cache: MetadataCache[str] = MetadataCache(60.0, max_entries=200)

    def work(k: int) -> None:
        for i in range(2000):
            path = f"/d{i % 7}/f{k}-{i % 50}"
            cache.put_stat(path, f"entry {k} {i}")
            got = cache.get_stat(path)
            assert got is None or isinstance(got, str)  # evicted meanwhile: None
            if i % 10 == 0:
                children = {f"/d{i % 7}/c{j}": f"child {j}" for j in range(30)}
                cache.put_listing(f"/d{i % 7}", list(children.values()), children)
                cache.get_listing(f"/d{i % 7}")
            if i % 25 == 0:
                cache.invalidate(f"/d{(i + k) % 7}", tree=True)
            if i % 3 == 0:
                cache.put_stat(f"/gone{k}", MISSING)
                assert cache.get_stat(f"/gone{k}") in (MISSING, None)

    _run(work)
    assert len(cache._stats) + len(cache._listings) <= 200 + THREADS * 40
    cache.put_stat("/last", "it")
    assert cache.get_stat("/last") == "it"
    cache.invalidate("/d1", tree=True)
    assert all(not key.startswith("/d1/") for key in cache._stats)
    cache.invalidate("/last")
    assert cache.get_stat("/last") is None


@contextmanager
def _collections_that_change(table: dict[str, object], value: object) -> Iterator[list[int]]:
    """Collect garbage at every allocation of a tracked object, adding a key each time.

    The deterministic form of the race CI once hit: a walk that allocates (each pair of
    ``list(table.items())`` is a new tuple) can start a collection, whose finalizers can
    hand the GIL to a thread that changes the table. Yields the list of added counts.
    """
    added = [0]

    def change(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            added[0] += 1
            table[f"/added-by-gc-{added[0]}"] = value

    thresholds = gc.get_threshold()
    # Pairs come from a free list first, which counts no allocation: empty it.
    held = [(i, -i) for i in range(10_000)]
    gc.callbacks.append(change)
    gc.set_threshold(1)
    try:
        yield added
    finally:
        del held
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(change)


def test_eviction_walks_a_copy_when_a_collection_changes_the_table() -> None:
    now = [0.0]
    cache: MetadataCache[str] = MetadataCache(1.0, max_entries=100, clock=lambda: now[0])
    for i in range(100):
        cache.put_stat(f"/f{i}", f"entry {i}")
    now[0] = 5.0  # all expired: the walk over (key, (expires, entry)) pairs runs
    with _collections_that_change(cache._stats, (0.0, "late")) as added:
        cache.put_stat("/new", "fresh")
    assert added[0] > 0  # the collection did run during the eviction
    assert cache.get_stat("/new") == "fresh"
    assert all(key.startswith("/added-by-gc-") or key == "/new" for key in cache._stats)


def test_stale_readers_walk_a_copy_when_a_collection_changes_the_registry(
    tmp_path: Path,
) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))), cache_ttl=1.0)
    vfs.mkdir("/d")
    for i in range(20):
        vfs.write_file(f"/d/f{i}.txt", b"x")
    readers = [vfs.open_read(f"/d/f{i}.txt") for i in range(20)]
    try:
        with _collections_that_change(vfs._readers, []) as added:  # type: ignore[arg-type]
            vfs._stale_readers("d", tree=True)
        assert added[0] > 0
        assert all(reader.stale for reader in readers)
    finally:
        for reader in readers:
            reader.close()


def test_handles_under_threads(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))), cache_ttl=1.0)
    vfs.mkdir("/d")

    def work(k: int) -> None:
        for i in range(150):
            own, shared = f"/d/own{k}-{i % 5}.txt", f"/d/shared{i % 3}.txt"
            with vfs.open_write(own) as handle:
                handle.write(b"x" * (i + 1))
                assert vfs.stat(own).size == i + 1  # pending or committed: the new size
            with vfs.open_write(shared) as handle:
                handle.write(b"s")
            reader = vfs.open_read(own, exact=True)
            try:
                assert reader.read(1000) == b"x" * (i + 1)
                vfs.stat(own)
            finally:
                reader.close()
            if i % 20 == 0:
                vfs.listdir("/d")

    _run(work)
    assert vfs._writers == {}
    assert vfs._readers == {}
    names = sorted(entry.name for entry in vfs.listdir("/d"))
    assert names == sorted(
        [f"d/own{k}-{j}.txt" for k in range(THREADS) for j in range(5)]
        + [f"d/shared{j}.txt" for j in range(3)]
    )


def test_a_move_retargets_open_handles(tmp_path: Path) -> None:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))), cache_ttl=1.0)
    vfs.mkdir("/a")
    vfs.write_file("/a/f.txt", b"old")
    handle = vfs.open_write("/a/f.txt")
    other = vfs.open_write("/a/g.txt")
    handle.write(b"new content")
    vfs.rename("/a", "/b")
    assert handle.path == "b/f.txt" and other.path == "b/g.txt"  # the VFS's own form
    assert vfs.stat("/b/f.txt").size == len(b"new content")  # pending, at the new name
    handle.close()
    other.close()
    assert (tmp_path / "b" / "f.txt").read_bytes() == b"new content"
    assert vfs._writers == {}
