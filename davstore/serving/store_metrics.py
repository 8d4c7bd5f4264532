"""Count and time every call a store makes, for Prometheus.

:class:`MetricsStore` wraps any :class:`~davstore.store.ObjectStore` (as
:class:`~davstore.store.threaded.ThreadedStore` does) and records, per kind of call
(``find``, ``head``, ``list``, ``open_read``, ``read_small``, ``commit``, ``delete``,
``copy``, ...):

- ``davstore_store_calls_total{call, outcome}``: ``outcome`` is ``ok`` or the name of the
  :mod:`davstore.errors` class raised (the VFS asks ``find`` whether a name exists: an
  absent name is ``ok`` there; ``NotFound`` from ``head`` is an everyday answer too);
- ``davstore_store_call_seconds{call}``: how long the calls took.

A ``list`` is timed until the listing has been read to its end. Reads from streams are
not counted one by one (a GET of a large file is one ``open_read``, of a small one one
``read_small``). The metrics live in the
``CollectorRegistry`` given to :class:`StoreMetrics`, never in a process-global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry

from davstore.serving.queued_metrics import QueuedMetrics
from davstore.store.base import ObjectStore
from davstore.store.wrapper import StoreWrapper

__all__ = ["MetricsStore", "StoreMetrics"]

T = TypeVar("T")

#: Seconds: local disks answer in microseconds, object stores in tens of milliseconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class StoreMetrics:
    """The store-call counters and histograms, registered in ``registry``.

    They are :mod:`davstore.serving.queued_metrics`: recording a call queues one sample, no lock.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        metrics = QueuedMetrics(registry)
        self.calls = metrics.counter(
            "davstore_store_calls",
            "Calls made to the store, by kind and outcome",
            ["call", "outcome"],
        )
        self.seconds = metrics.histogram(
            "davstore_store_call_seconds", "Duration of store calls, by kind", ["call"], BUCKETS
        )
        self._call = metrics.event(self._fold_call)

    def _fold_call(self, labels: tuple[str, ...], elapsed: float) -> None:
        self.calls.apply(labels, 1)
        self.seconds.apply(labels[:1], elapsed)

    def record(self, call: str, started: float, error: BaseException | None) -> None:
        outcome = "ok" if error is None else type(error).__name__
        self._call.record((call, outcome), time.perf_counter() - started)


class MetricsStore(StoreWrapper):
    """``inner`` with every call counted and timed in ``metrics``."""

    def __init__(self, inner: ObjectStore, metrics: StoreMetrics) -> None:
        super().__init__(inner)
        self.metrics = metrics

    def _call(self, kind: str, func: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = func()
        except BaseException as exc:
            self.metrics.record(kind, started, exc)
            raise
        self.metrics.record(kind, started, None)
        return result
