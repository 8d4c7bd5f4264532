"""davstore.serving.queued_metrics: the same figures as prometheus_client's own metrics, no lock."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from davstore.serving import queued_metrics
from davstore.serving.queued_metrics import QueuedMetrics

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape but the ``_created`` ones, by name and labels."""
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


updates = st.lists(
    st.tuples(
        st.sampled_from(["GET", "PUT", "PROPFIND"]),
        st.sampled_from(["200", "201", "404"]),
        st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
    max_size=60,
)


def update_both(
    made: list[tuple[str, str, float]],
    theirs: CollectorRegistry | None,
    ours: QueuedMetrics,
    *,
    prefixes: tuple[str, str] = ("", ""),
    fold_every: int = 0,
) -> None:
    """Make the updates ``made`` to prometheus-client's own metrics (in ``theirs``) and to
    queued ones of ``ours``, named alike after ``prefixes``; with ``fold_every``, fold
    ``ours`` along the way."""
    other, mine = prefixes
    counter = Counter(f"{other}requests", "Requests", ["method", "status"], registry=theirs)
    histogram = Histogram(
        f"{other}seconds", "Seconds", ["method"], buckets=BUCKETS, registry=theirs
    )
    gauge = Gauge(
        f"{other}in_progress", "In progress", registry=theirs, multiprocess_mode="livesum"
    )
    q_counter = ours.counter(f"{mine}requests", "Requests", ["method", "status"])
    q_histogram = ours.histogram(f"{mine}seconds", "Seconds", ["method"], BUCKETS)
    q_gauge = ours.gauge(f"{mine}in_progress", "In progress")
    for index, (method, status, value) in enumerate(made):
        counter.labels(method, status).inc(value)
        q_counter.inc((method, status), value)
        histogram.labels(method).observe(value)
        q_histogram.observe((method,), value)
        gauge.inc()
        q_gauge.inc()
        if status == "404":
            gauge.dec(2)
            q_gauge.dec(2)
        if fold_every and index % fold_every == 0:
            ours.fold()


@settings(max_examples=60, deadline=None)
@given(updates)
def test_a_scrape_shows_what_prometheus_client_would(made: list[tuple[str, str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    update_both(made, theirs, QueuedMetrics(ours))
    assert samples(ours) == samples(theirs)


def test_a_bucket_bound_counts_a_value_equal_to_it() -> None:
    queued = QueuedMetrics(registry := CollectorRegistry())
    histogram = queued.histogram("seconds", "Seconds", [], BUCKETS)
    histogram.observe((), 0.01)
    found = samples(registry)
    assert found[("seconds_bucket", frozenset({("le", "0.001")}))] == 0
    assert found[("seconds_bucket", frozenset({("le", "0.01")}))] == 1
    assert found[("seconds_count", frozenset())] == 1
    assert histogram.count() == 1


def test_no_update_is_lost_between_threads() -> None:
    queued = QueuedMetrics(CollectorRegistry())
    counter = queued.counter("hits", "Hits", ["kind"])
    histogram = queued.histogram("seconds", "Seconds", ["kind"], BUCKETS)
    rounds, threads = 5000, 8

    def hammer() -> None:
        for _ in range(rounds):
            counter.inc(("a",))
            histogram.observe(("a",), 0.5)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.value(("a",)) == rounds * threads
    assert histogram.count(("a",)) == rounds * threads


def test_the_queue_is_folded_as_it_grows() -> None:
    queued = QueuedMetrics(CollectorRegistry())
    counter = queued.counter("hits", "Hits")
    for _ in range(queued_metrics.FOLD_AT * 3 + 5):
        counter.inc()
        assert len(queued.queue) < queued_metrics.FOLD_AT
    assert counter.value() == queued_metrics.FOLD_AT * 3 + 5
    assert not queued.queue


def test_metric_names_are_checked_at_registration() -> None:
    registry = CollectorRegistry()
    Counter("requests", "Requests", registry=registry)
    queued = QueuedMetrics()
    queued.counter("requests", "Requests")
    try:
        registry.register(queued)
    except ValueError as exc:
        assert "requests" in str(exc)
    else:
        raise AssertionError("a duplicate metric name was accepted")


def test_an_event_is_one_sample_for_several_updates() -> None:
    queued = QueuedMetrics(registry := CollectorRegistry())
    calls = queued.counter("calls", "Calls", ["call", "outcome"])
    seconds = queued.histogram("seconds", "Seconds", ["call"], BUCKETS)

    def fold(labels: tuple[str, ...], elapsed: float) -> None:
        calls.apply(labels, 1)
        seconds.apply(labels[:1], elapsed)

    event = queued.event(fold)
    event.record(("head", "ok"), 0.002)
    event.record(("head", "NotFound"), 0.5)
    assert len(queued.queue) == 2
    found = samples(registry)
    assert found[("calls_total", frozenset({("call", "head"), ("outcome", "ok")}))] == 1
    assert found[("calls_total", frozenset({("call", "head"), ("outcome", "NotFound")}))] == 1
    assert found[("seconds_count", frozenset({("call", "head")}))] == 2
    assert found[("seconds_sum", frozenset({("call", "head")}))] == 0.502


def test_a_bad_sample_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    queued = QueuedMetrics(CollectorRegistry())
    counter = queued.counter("hits", "Hits")

    def broken(labels: tuple[str, ...], value: object) -> None:
        raise TypeError("not a number")

    event = queued.event(broken)
    with caplog.at_level(logging.ERROR, logger="davstore.serving.queued_metrics"):
        for _ in range(queued_metrics.FOLD_AT):  # the last one folds, on this thread
            event.record(("x",), None)
            counter.inc()
        assert counter.value() == queued_metrics.FOLD_AT
    assert "dropped a metrics sample" in caplog.text


#: Run with PROMETHEUS_MULTIPROC_DIR set (prometheus-client picks its file-backed values at
#: import): the updates of argv[1] made to prometheus-client's metrics ("theirs_") and to
#: queued ones ("ours_"), folded several times along the way, as ``--workers`` does.
_MULTIPROCESS_UPDATES = """
import json, sys
from davstore.serving.queued_metrics import QueuedMetrics
from tests.serving.test_queued_metrics import update_both
queued = QueuedMetrics()
update_both(json.loads(sys.argv[1]), None, queued, prefixes=("theirs_", "ours_"), fold_every=97)
queued.fold()
"""


def test_multiprocess_files_hold_what_prometheus_client_would_write(tmp_path: Path) -> None:
    """With ``--workers``, a fold adds its sums to prometheus-client's files once per series
    and bucket; a scrape summing those files sees what updates made one by one write."""
    chance = random.Random(7)
    made = [
        (
            chance.choice(["GET", "PUT", "PROPFIND"]),
            chance.choice(["200", "201", "404"]),
            chance.choice([0.0, 0.001, 0.01, 100.0, chance.uniform(0, 20)]),
        )
        for _ in range(500)
    ]
    for _ in range(2):  # two processes' files, summed
        subprocess.run(
            [sys.executable, "-c", _MULTIPROCESS_UPDATES, json.dumps(made)],
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            cwd=Path(__file__).parents[2],
            check=True,
            timeout=60,
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    ours, theirs = {}, {}
    for (name, labels), value in samples(registry).items():
        side, _, rest = name.partition("_")
        (ours if side == "ours" else theirs)[(rest, labels)] = value
    assert ours == pytest.approx(theirs)
    assert ours[("requests_total", frozenset({("method", "GET"), ("status", "200")}))] > 0
    assert ours[("in_progress", frozenset())] == 2 * sum(
        1 if status != "404" else -1 for _, status, _ in made
    )
