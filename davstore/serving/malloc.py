"""Fewer malloc arenas in a serving process, trimmed when idle: memory freed after a load
goes back.

glibc gives each thread that allocates while the others hold their arenas an arena of its
own, up to 8 per core; a pool of request threads ends up with one per thread, and what a
burst allocated there stays in the process once the burst is over (a served
``--workers 2`` share grew from 126 to 168 MiB at rest after the benchmark's load, and to
136 MiB with two arenas; benchmarks/README.md). :func:`limit_malloc_arenas` caps them
before the pool starts, as ``MALLOC_ARENA_MAX=2`` in the environment would.

What ``free`` gave back inside the heap stays resident until glibc trims it, which it does
only from the top of the main heap. :class:`IdleTrim` calls ``malloc_trim(0)`` (every
arena, every free page handed back to the kernel) once a process that has been working
goes quiet: after the start-up, and after each load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

__all__ = ["ARENAS", "IdleTrim", "limit_malloc_arenas", "malloc_trim", "process_cpu"]

logger = logging.getLogger(__name__)

#: The arenas a serving process keeps (the main one and one for every other thread).
ARENAS = 2
#: ``M_ARENA_MAX`` of glibc's ``<malloc.h>``.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (call before threads start); whether it did.

    ``MALLOC_ARENA_MAX`` set in the environment is left to glibc, which has applied it
    already; another C library (musl has no arenas to cap) is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, arenas))
    if not done:
        logger.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return done


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (hand every free page of every arena back), or None with
    another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim  # the GIL is released during the call
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class IdleTrim:
    """Called every fraction of a second on a serving process's main thread: trims malloc
    (:func:`malloc_trim`) once the process has used at least ``busy`` seconds of CPU since
    the last trim and at most ``idle`` seconds since the previous call (it went quiet).
    The first quiet call after the start-up trims what the start-up freed. ``release``,
    if given, is called on the first quiet call after work (a server lets its idle
    threads end: their stacks and thread states go back), the trim coming on the next
    quiet one. ``clock``: the process's CPU time (seconds)."""

    def __init__(
        self,
        *,
        busy: float = 0.05,
        idle: float = 0.005,
        clock: Callable[[], float] | None = None,
        trim: Callable[[], object] | None = None,
        release: Callable[[], object] | None = None,
    ) -> None:
        self.busy = busy
        self.idle = idle
        self._release = release
        self._released = False
        self._clock = clock or process_cpu
        self._trim = trim or malloc_trim()
        self._previous = self._clock()
        self._trimmed = -busy  # the start-up counts as work

    def trim_now(self) -> None:
        """Trim at once (a process about to serve: what its start-up freed goes back)."""
        if self._trim is not None:
            self._trim()
            self._trimmed = self._previous = self._clock()

    def __call__(self) -> bool:
        """Whether it trimmed now."""
        now = self._clock()
        quiet = now - self._previous <= self.idle
        self._previous = now
        if self._trim is None or not quiet or now - self._trimmed < self.busy:
            self._released = False
            return False
        if self._release is not None and not self._released:
            self._release()
            self._released = True
            return False
        self._released = False
        self._trim()
        self._trimmed = self._previous = self._clock()
        return True


def process_cpu() -> float:
    """The CPU time this process has used, in seconds (user and system)."""
    times = os.times()
    return times.user + times.system
