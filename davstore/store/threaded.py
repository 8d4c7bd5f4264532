"""Run every call of a store on long-lived worker threads that davstore owns.

Why: a FUSE binding calls back on threads libfuse made, and ctypes gives each callback a
fresh Python thread state, so ``threading.local`` data (Django's database connections,
django-storages' per-thread boto3 sessions) is built again on every callback and thrown
away after it. :class:`ThreadedStore` hands each store call to a small pool of Python
threads that live as long as the store, so per-thread clients are made once per worker and
reused, and calls for different files still run side by side (up to ``workers`` at once).

What runs on a worker: every :class:`~davstore.store.ObjectStore` method, and the
``read``/``seek``/``close`` of streams and the ``commit``/``abort`` of uploads the wrapped
store hands out. ``Upload.file`` is used where it is (it is a local spool by contract).
Listings are read to the end on the worker. A call made from a worker thread runs inline,
so a store that calls itself never waits on its own pool.

Stores with no per-thread state and nothing slow to overlap (local disk, memory) need no
wrapper: :func:`needs_workers` says which ones do.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO, TypeVar, cast

from davstore.store.base import ObjectStore
from davstore.store.wrapper import StoreWrapper

__all__ = ["ThreadedStore", "needs_workers"]

T = TypeVar("T")

_local = threading.local()


def needs_workers(store: ObjectStore) -> bool:
    """False for the stores that keep no per-thread state (local disk, memory)."""
    from davstore.store.filesystem import FileSystemStore
    from davstore.store.memory import MemoryStore

    return type(store) not in (FileSystemStore, MemoryStore)


class _Pool:
    def __init__(self, workers: int, name: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=name, initializer=self._mark
        )

    def _mark(self) -> None:
        _local.pool = self

    def run(self, func: Callable[[], T]) -> T:
        if getattr(_local, "pool", None) is self:
            return func()
        return self._executor.submit(func).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class ThreadedStore(StoreWrapper):
    """``inner`` with every call run on a pool of ``workers`` long-lived threads."""

    def __init__(self, inner: ObjectStore, *, workers: int = 16) -> None:
        super().__init__(inner)
        self._pool = _Pool(workers, "davstore-store")

    def close(self) -> None:
        """Stop the workers (calls in progress finish; queued ones are dropped)."""
        self._pool.shutdown()

    def _call(self, kind: str, func: Callable[[], T]) -> T:
        return self._pool.run(func)

    def _wrap_stream(self, stream: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, _PooledStream(stream, self._pool))


class _PooledStream:
    """A stream whose reads, seeks and close run on the pool."""

    def __init__(self, stream: BinaryIO, pool: _Pool) -> None:
        self._stream = stream
        self._pool = pool
        self.wrapped_stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._pool.run(lambda: self._stream.read(size))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._pool.run(lambda: self._stream.seek(offset, whence))

    def tell(self) -> int:
        return self._stream.tell()

    def seekable(self) -> bool:
        return self._stream.seekable()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._pool.run(self._stream.close)

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    def __enter__(self) -> _PooledStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
