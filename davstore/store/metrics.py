"""Count and time every call a store makes, for Prometheus.

:class:`MetricsStore` wraps any :class:`~davstore.store.ObjectStore` (as
:class:`~davstore.store.threaded.ThreadedStore` does) and records, per kind of call
(``head``, ``list``, ``open_read``, ``commit``, ``delete``, ``copy``, ...):

- ``davstore_store_calls_total{call, outcome}``: ``outcome`` is ``ok`` or the name of the
  :mod:`davstore.errors` class raised (``NotFound`` from ``head`` is an everyday answer);
- ``davstore_store_call_seconds{call}``: how long the calls took.

A ``list`` is timed until the listing has been read to its end. Reads from streams are
not counted one by one (a GET of a large file is one ``open_read``). The metrics live in the
``CollectorRegistry`` given to :class:`StoreMetrics`, never in a process-global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from davstore.store.base import Capabilities, ObjectInfo, ObjectStore, Upload, Usage

__all__ = ["MetricsStore", "StoreMetrics"]

T = TypeVar("T")

#: Seconds: local disks answer in microseconds, object stores in tens of milliseconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class StoreMetrics:
    """The store-call counters and histograms, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "davstore_store_calls",
            "Calls made to the store, by kind and outcome",
            ["call", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "davstore_store_call_seconds",
            "Duration of store calls, by kind",
            ["call"],
            buckets=BUCKETS,
            registry=registry,
        )

    def record(self, call: str, started: float, error: BaseException | None) -> None:
        self.seconds.labels(call).observe(time.perf_counter() - started)
        self.calls.labels(call, "ok" if error is None else type(error).__name__).inc()

    def timed(self, call: str, func: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = func()
        except BaseException as exc:
            self.record(call, started, exc)
            raise
        self.record(call, started, None)
        return result


class MetricsStore(ObjectStore):
    """``inner`` with every call counted and timed in ``metrics``."""

    def __init__(self, inner: ObjectStore, metrics: StoreMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.capabilities: Capabilities = inner.capabilities

    def head(self, name: str) -> ObjectInfo:
        return self.metrics.timed("head", lambda: self.inner.head(name))

    def list(self, name: str) -> Iterator[ObjectInfo]:
        return iter(self.metrics.timed("list", lambda: list(self.inner.list(name))))

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        return self.metrics.timed("open_read", lambda: self.inner.open_read(name, offset))

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        upload = self.metrics.timed(
            "start_upload",
            lambda: self.inner.start_upload(name, spool_dir=spool_dir, spool_memory=spool_memory),
        )
        return _CountedUpload(upload, self.metrics)

    def delete(self, name: str) -> None:
        self.metrics.timed("delete", lambda: self.inner.delete(name))

    def delete_many(self, names: Sequence[str]) -> None:
        self.metrics.timed("delete_many", lambda: self.inner.delete_many(names))

    def make_dir(self, name: str) -> None:
        self.metrics.timed("make_dir", lambda: self.inner.make_dir(name))

    def remove_dir(self, name: str) -> None:
        self.metrics.timed("remove_dir", lambda: self.inner.remove_dir(name))

    def copy(self, source: str, target: str) -> ObjectInfo:
        return self.metrics.timed("copy", lambda: self.inner.copy(source, target))

    def rename(self, source: str, target: str) -> None:
        self.metrics.timed("rename", lambda: self.inner.rename(source, target))

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        self.metrics.timed("set_mtime", lambda: self.inner.set_mtime(name, mtime_ns))

    def url(self, name: str) -> str:
        return self.metrics.timed("url", lambda: self.inner.url(name))

    def usage(self) -> Usage:
        return self.metrics.timed("usage", self.inner.usage)

    def describe(self) -> str:
        return self.inner.describe()


class _CountedUpload(Upload):
    def __init__(self, upload: Upload, metrics: StoreMetrics) -> None:
        self._upload = upload
        self._metrics = metrics
        self.file = upload.file

    def commit(self) -> ObjectInfo:
        return self._metrics.timed("commit", self._upload.commit)

    def abort(self) -> None:
        self._metrics.timed("abort", self._upload.abort)
