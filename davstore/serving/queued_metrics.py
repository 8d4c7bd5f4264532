"""Prometheus counters, histograms and a gauge that cost the request path one append.

prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock and run some
Python each, and a small WebDAV request makes many such updates (its own and its store
calls'): together a measurable part of a small request (benchmarks/README.md). Here an
update only queues ``(metric, labels, value)`` on a ``collections.deque`` (``append`` is
atomic under the GIL: no lock, nothing lost) and the samples are folded into totals later:

- by a scrape (:meth:`QueuedMetrics.collect` folds everything queued before it answers,
  so a scrape sees every update made before it);
- by the update that finds :data:`FOLD_AT` samples queued (unless another thread is folding
  then), so the queue stays small between scrapes. A fold runs on the thread that asks
  for it: a background thread would hold the GIL for the whole batch while request threads
  wait for it (measured: that cost more than the updates it took off their path).

With ``davstore serve --workers`` (prometheus-client's multiprocess mode,
``PROMETHEUS_MULTIPROC_DIR`` set), a fold also adds what it folded to prometheus-client's
own metrics, whose per-process files every worker's scrape sums, and a thread folds every
:data:`FOLD_INTERVAL` seconds so that the other workers' scrapes see them. A fold adds its
sums there once per series and bucket, not once per sample: each such addition takes a
lock, asks the kernel for the process id and writes the file, which made per sample was a
large part of a worker's busy time under small GETs (benchmarks/README.md).

prometheus_client still names, renders and serves the figures: :class:`QueuedMetrics` is
a collector registered in a ``CollectorRegistry``, and yields the same families its
``Counter``, ``Histogram`` and ``Gauge`` would (names, labels, buckets, the ``_total``,
``_bucket``, ``_sum`` and ``_count`` samples; no ``_created`` samples).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "FOLD_AT",
    "QueuedCounter",
    "QueuedEvent",
    "QueuedGauge",
    "QueuedHistogram",
    "QueuedMetrics",
    "fold_all",
    "multiprocess",
]

logger = logging.getLogger(__name__)


def multiprocess() -> bool:
    """Whether prometheus-client's multiprocess mode is on (``davstore serve --workers``):
    folds then go to its per-process files, which every process's scrape sums."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


#: Queued samples that make the next update fold them (about 0.3 ms of work).
FOLD_AT = 1024
#: Seconds between the folds of multiprocess mode's thread.
FOLD_INTERVAL = 1.0

Labels = tuple[str, ...]
#: How prometheus_client writes a bucket bound (``1.0``, ``0.005``, ``+Inf``).
_go_float: Callable[[float], str] = floatToGoString
M = TypeVar("M", bound="_Queued")


class _Sink:
    """Something queued samples are folded into."""

    def __init__(self, owner: QueuedMetrics) -> None:
        self._owner = owner

    def _queue(self, labels: Labels, value: Any) -> None:
        owner = self._owner
        queue = owner.queue
        queue.append((self, labels, value))
        if len(queue) >= FOLD_AT:
            owner.fold_if_free()

    def apply(self, labels: Labels, value: Any) -> None:
        """Fold one queued sample into the totals (the owner's fold lock is held)."""
        raise NotImplementedError


class QueuedEvent(_Sink):
    """One sample that stands for several updates: ``fold(labels, value)`` makes them, with
    the metrics' own :meth:`apply` (a request's counters and histogram: one append)."""

    def __init__(self, owner: QueuedMetrics, fold: Callable[[Labels, Any], None]) -> None:
        super().__init__(owner)
        self._fold = fold

    def apply(self, labels: Labels, value: Any) -> None:
        self._fold(labels, value)

    #: Queue one sample (the name its callers know; no call more on a request's path).
    record = _Sink._queue


class _Queued(_Sink):
    """One metric family: its name, help text, label names and folded totals; in
    multiprocess mode also prometheus-client's own metric, which folds are applied to."""

    #: The family's type, as prometheus-client names it.
    kind = "untyped"

    def __init__(
        self, owner: QueuedMetrics, name: str, documentation: str, labelnames: Sequence[str]
    ) -> None:
        super().__init__(owner)
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._shared: Any = None
        self._children: dict[Labels, Any] = {}
        #: Multiprocess mode: what folds added since the last :meth:`share`, by labels.
        self._unshared: dict[Labels, Any] = {}

    def _shared_child(self, labels: Labels) -> Any:
        """prometheus-client's child for ``labels`` (``labels()`` costs µs: kept)."""
        if not labels:
            return self._shared
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._shared.labels(*labels)
        return child

    def family(self) -> Metric:
        """The family with its current totals (the owner's fold lock is held)."""
        raise NotImplementedError

    def share(self) -> None:
        """Add what folds added since the last call to prometheus-client's metric (the
        owner's fold lock is held)."""
        if not self._unshared:
            return
        unshared, self._unshared = self._unshared, {}
        for labels, added in unshared.items():
            self._add_shared(self._shared_child(labels), added)

    def _add_shared(self, child: Any, added: Any) -> None:
        raise NotImplementedError


class QueuedCounter(_Queued):
    """A counter by label values (rendered ``<name>_total``)."""

    kind = "counter"

    def __init__(
        self, owner: QueuedMetrics, name: str, documentation: str, labelnames: Sequence[str]
    ) -> None:
        super().__init__(owner, name, documentation, labelnames)
        self._totals: dict[Labels, float] = {}
        if multiprocess():
            self._shared = Counter(name, documentation, self.labelnames, registry=None)

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        """Add ``amount`` (not negative) to the counter of ``labels``."""
        self._queue(labels, amount)

    def apply(self, labels: Labels, value: float) -> None:
        self._totals[labels] = self._totals.get(labels, 0) + value
        if self._shared is not None:
            self._unshared[labels] = self._unshared.get(labels, 0) + value

    def _add_shared(self, child: Any, added: float) -> None:
        child.inc(added)  # also when 0: the series exists from its first sample on

    def value(self, labels: Labels = ()) -> float:
        """The current total of ``labels`` (folds what is queued first)."""
        with self._owner.folded():
            return self._totals.get(labels, 0)

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, total in self._totals.items():
            family.add_metric(labels, total)
        return family


class QueuedHistogram(_Queued):
    """A histogram by label values, with fixed bucket upper bounds (``+Inf`` added)."""

    kind = "histogram"

    def __init__(
        self,
        owner: QueuedMetrics,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(owner, name, documentation, labelnames)
        self.bounds = sorted(float(bound) for bound in buckets)
        self._names = [_go_float(bound) for bound in self.bounds] + ["+Inf"]
        # labels -> [count per bucket (not cumulative; the last is +Inf), sum]
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}
        if multiprocess():
            self._shared = Histogram(
                name, documentation, self.labelnames, buckets=self.bounds, registry=None
            )

    def observe(self, labels: Labels, value: float) -> None:
        """Count one observation of ``value`` for ``labels``."""
        self._queue(labels, value)

    def apply(self, labels: Labels, value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        bucket = bisect.bisect_left(self.bounds, value)
        series[0][bucket] += 1
        series[1][0] += value
        if self._shared is not None:
            added = self._unshared.get(labels)
            if added is None:
                added = self._unshared[labels] = ([0] * (len(self.bounds) + 1), [0.0])
            added[0][bucket] += 1
            added[1][0] += value

    def _add_shared(self, child: Any, added: tuple[list[int], list[float]]) -> None:
        # What ``Histogram.observe`` adds value by value, added once per bucket. ``_sum``
        # and ``_buckets`` (by upper bound, not cumulative) are prometheus-client's own
        # values, the ones its multiprocess collector sums; test_queued_metrics.py checks
        # a multiprocess scrape against ``observe``'s.
        counts, total = added
        child._sum.inc(total[0])
        for value, count in zip(child._buckets, counts, strict=True):
            if count:
                value.inc(count)

    def count(self, labels: Labels = ()) -> int:
        """Observations made for ``labels`` (folds what is queued first)."""
        with self._owner.folded():
            series = self._series.get(labels)
            return 0 if series is None else sum(series[0])

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (counts, total) in self._series.items():
            cumulative = 0
            buckets = []
            for name, count in zip(self._names, counts, strict=True):
                cumulative += count
                buckets.append((name, cumulative))
            family.add_metric(labels, buckets, total[0])
        return family


class QueuedGauge(_Queued):
    """A gauge without labels, moved up and down."""

    kind = "gauge"

    def __init__(self, owner: QueuedMetrics, name: str, documentation: str) -> None:
        super().__init__(owner, name, documentation, ())
        self._value = 0.0
        if multiprocess():
            self._shared = Gauge(name, documentation, registry=None, multiprocess_mode="livesum")

    def inc(self, amount: float = 1) -> None:
        self._queue((), amount)

    def dec(self, amount: float = 1) -> None:
        self._queue((), -amount)

    def apply(self, labels: Labels, value: float) -> None:
        self._value += value
        if self._shared is not None:
            self._unshared[labels] = self._unshared.get(labels, 0) + value

    def _add_shared(self, child: Any, added: float) -> None:
        if added:
            child.inc(added)

    def value(self) -> float:
        """The current value (folds what is queued first)."""
        with self._owner.folded():
            return self._value

    def family(self) -> Metric:
        return GaugeMetricFamily(self.name, self.documentation, value=self._value)


class QueuedMetrics(Collector):
    """A set of queued metrics, registered in ``registry`` as one collector.

    Make the metrics with :meth:`counter`, :meth:`histogram` and :meth:`gauge` before the
    first update. Label values are passed as a tuple, in ``labelnames`` order.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.queue: collections.deque[tuple[_Sink, Labels, Any]] = collections.deque()
        self._metrics: list[_Queued] = []
        self._fold_lock = threading.Lock()
        if registry is not None:
            registry.register(self)
        if multiprocess():  # the other processes' scrapes see this one's samples within 1 s
            _folder.add(self)

    def counter(
        self, name: str, documentation: str, labelnames: Sequence[str] = ()
    ) -> QueuedCounter:
        return self._add(QueuedCounter(self, name, documentation, labelnames))

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> QueuedHistogram:
        return self._add(QueuedHistogram(self, name, documentation, labelnames, buckets))

    def gauge(self, name: str, documentation: str) -> QueuedGauge:
        return self._add(QueuedGauge(self, name, documentation))

    def event(self, fold: Callable[[Labels, Any], None]) -> QueuedEvent:
        """A :class:`QueuedEvent` folded by ``fold`` (which calls this set's ``apply``)."""
        return QueuedEvent(self, fold)

    def _add(self, metric: M) -> M:
        self._metrics.append(metric)
        return metric

    def fold(self) -> None:
        """Fold every queued sample into the totals."""
        with self._fold_lock:
            self._fold()

    def fold_if_free(self) -> None:
        """Fold now unless another thread is folding already."""
        if self._fold_lock.acquire(blocking=False):
            try:
                self._fold()
            finally:
                self._fold_lock.release()

    def _fold(self) -> None:
        popleft = self.queue.popleft
        while True:
            try:
                metric, labels, value = popleft()
            except IndexError:
                break
            try:
                metric.apply(labels, value)
            except Exception:  # a bad sample is dropped, never fails the request folding it
                logger.exception("dropped a metrics sample %r %r", labels, value)
        for queued in self._metrics:
            try:
                queued.share()
            except Exception:  # as for a bad sample: the figures stay off, requests go on
                logger.exception("could not add the samples of %s to its files", queued.name)

    @contextlib.contextmanager
    def folded(self) -> Iterator[None]:
        """A context in which the totals are current and stay still."""
        with self._fold_lock:
            self._fold()
            yield

    def collect(self) -> Iterator[Metric]:
        with self._fold_lock:
            self._fold()
            families = [metric.family() for metric in self._metrics]
        yield from families

    def describe(self) -> Iterator[Metric]:
        """The families without samples (the registry checks names with it)."""
        for metric in self._metrics:
            yield Metric(metric.name, metric.documentation, metric.kind)


class _Folder:
    """In multiprocess mode, one thread folds every live :class:`QueuedMetrics` each second."""

    def __init__(self) -> None:
        self.owners: weakref.WeakSet[QueuedMetrics] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def add(self, owner: QueuedMetrics) -> None:
        with self._starting:
            self.owners.add(owner)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="davstore-metrics", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FOLD_INTERVAL)
            for owner in list(self.owners):
                owner.fold_if_free()


_folder = _Folder()


def fold_all() -> None:
    """In multiprocess mode, fold this process's queued samples into its files now (a
    scrape does, before it sums every process's files)."""
    for owner in list(_folder.owners):
        owner.fold()
