"""The shared ranged reader (davstore/store/ranged.py) on a fake source: what it asks for."""

from __future__ import annotations

import io
import os
import threading

import pytest

from davstore.errors import Conflict, DavstoreError, StoreUnavailable
from davstore.store.ranged import RangedReader, RangeResponse, Windows

MiB = 1 << 20


class _Body:
    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after

    def read(self, size: int = -1, /) -> bytes:
        if self._fail_after is not None and self._data.tell() >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        return self._data.read(size)

    def close(self) -> None:
        self._data.close()


class FakeSource:
    """An object in memory; every window opened is noted as (start, length, version)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.version = "v1"
        self.opened: list[tuple[int, int, str | None]] = []
        self.drop_prefetched = False
        self._lock = threading.Lock()

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        with self._lock:
            self.opened.append((start, length, version))
            if version is not None and version != self.version:
                raise Conflict("f", "replaced")
            if start >= len(self.data):
                return None
            piece = self.data[start : start + length]
            # A window opened ahead "loses its connection" after the bytes read ahead.
            prefetched = threading.current_thread().name.startswith("davstore-prefetch")
            fail_after = 1 * MiB if self.drop_prefetched and prefetched else None
            body = _Body(piece, fail_after)
            return RangeResponse(body, start, len(piece), len(self.data), self.version, "e", 1.0)

    def body_error(self, exc: Exception) -> DavstoreError:
        return StoreUnavailable("f", str(exc))


def test_a_window_read_ahead_that_lost_its_connection_is_asked_again_once() -> None:
    data = os.urandom(12 * MiB)
    source = FakeSource(data)
    source.drop_prefetched = True
    windows = Windows(prefetch=1 * MiB)
    with RangedReader(source, "f", 0, windows, label="fake") as reader:
        assert reader.read() == data
    # 1, 2 (in the foreground), then 4 and 8 MiB ahead, the rest of each asked again once
    # past its first MiB (the order of the last ones depends on the threads).
    assert sorted(source.opened[2:]) == [
        (3 * MiB, 4 * MiB, "v1"),
        (4 * MiB, 3 * MiB, "v1"),
        (7 * MiB, 8 * MiB, "v1"),
        (8 * MiB, 4 * MiB, "v1"),
    ]
    assert source.opened[:2] == [(0, MiB, None), (MiB, 2 * MiB, "v1")]


def test_a_replaced_object_is_a_conflict_not_a_mix() -> None:
    data = os.urandom(4 * MiB)
    source = FakeSource(data)
    with RangedReader(source, "f", 0, Windows(prefetch=0), label="fake") as reader:
        assert reader.read(MiB) == data[:MiB]
        source.version = "v2"
        with pytest.raises(Conflict):
            reader.read(MiB)


def test_memory_kept_is_bounded() -> None:
    data = os.urandom(40 * MiB)
    source = FakeSource(data)
    windows = Windows()
    with RangedReader(source, "f", 0, windows, label="fake") as reader:
        while reader.read(MiB):
            limit = windows.keep + max(windows.prefetch, windows.skip_limit)
            assert reader._kept_bytes <= limit + 2 * (256 << 10)
