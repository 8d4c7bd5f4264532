"""A serving process caps glibc's malloc arenas (davstore.serving.malloc): a pool of
threads allocating at once shares two arenas instead of making one each, so what a load
freed goes back (benchmarks/README.md, "Memory at rest")."""

from __future__ import annotations

import os
import subprocess
import sys

from davstore.serving.malloc import IdleTrim

#: Start 12 threads that allocate at the same moment, then count the arenas glibc made:
#: each is a 64 MiB-aligned reservation of 64 MiB in /proc/self/maps (its used part, then
#: the rest unreadable).
PROBE = """
import sys, threading
if sys.argv[1] == "limited":
    from davstore.serving.malloc import limit_malloc_arenas
    assert limit_malloc_arenas()
barrier = threading.Barrier(12)
keep = []
def work():
    barrier.wait()
    keep.append([bytearray(200) for _ in range(20000)])
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
spans = []
for line in open("/proc/self/maps"):
    start, end = (int(x, 16) for x in line.split()[0].split("-"))
    spans.append((start, end, line.split()[1]))
arenas = 0
for (start, end, perms), (start2, end2, perms2) in zip(spans, spans[1:]):
    if perms == "rw-p" and perms2 == "---p" and end == start2 and start % (64 << 20) == 0:
        if end2 - start == 64 << 20:
            arenas += 1
print(arenas)
"""


def arenas(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"},
    )
    return int(out.stdout.strip())


def test_threads_allocating_at_once_share_two_arenas() -> None:
    assert arenas("default") > 2  # glibc's own choice: one per thread, up to 8 per core
    assert arenas("limited") <= 1  # the main arena and one more


#: Leave the heap full of holes (every other 1 KiB block freed, then all but the last),
#: then print RssAnon before and after one quiet IdleTrim call.
TRIM_PROBE = """
from davstore.serving.malloc import IdleTrim, limit_malloc_arenas
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
blocks = [bytearray(1024) for _ in range(40000)]
last = blocks[-1]
del blocks
trim = IdleTrim(clock=lambda: 1.0)
before = anon()
done = trim()
print(before, anon(), done)
"""


def test_a_quiet_process_hands_the_freed_heap_back() -> None:
    out = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"},
    )
    before, after, done = out.stdout.split()
    assert done == "True"
    assert int(before) - int(after) > 16 * 1024  # KiB: most of the ~40 MiB freed


def test_idle_trim_trims_once_after_work_when_quiet() -> None:
    cpu = [10.0]
    trims: list[float] = []
    trim = IdleTrim(busy=0.05, idle=0.005, clock=lambda: cpu[0], trim=lambda: trims.append(cpu[0]))
    assert trim()  # quiet after the start-up: what it freed goes back
    assert not trim()  # nothing done since
    cpu[0] += 1.0
    assert not trim()  # busy since the last call: not now
    cpu[0] += 0.001
    assert trim()  # quiet again after the work
    cpu[0] += 0.001
    assert not trim()  # a little CPU at rest is no load
    assert trims == [10.0, 11.001]


def test_idle_trim_releases_the_threads_then_trims_on_the_next_quiet_call() -> None:
    cpu = [10.0]
    calls: list[str] = []
    trim = IdleTrim(
        clock=lambda: cpu[0],
        trim=lambda: calls.append("trim"),
        release=lambda: calls.append("release"),
    )
    assert not trim()  # quiet after the start-up: the threads first
    assert trim()  # still quiet: the trim
    cpu[0] += 1.0
    assert not trim()  # busy
    assert not trim()  # quiet: release
    cpu[0] += 1.0
    assert not trim()  # busy again before the trim: nothing yet
    assert not trim()  # quiet: release again
    assert trim()
    assert calls == ["release", "trim", "release", "release", "trim"]


def test_a_trim_at_start_counts_as_the_trim_after_the_start_up() -> None:
    cpu = [10.0]
    calls: list[float] = []
    trim = IdleTrim(clock=lambda: cpu[0], trim=lambda: calls.append(cpu[0]))
    trim.trim_now()
    assert not trim()  # nothing done since
    cpu[0] += 1.0
    assert not trim()
    assert trim()
    assert calls == [10.0, 11.0]
