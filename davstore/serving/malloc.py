"""Fewer malloc arenas in a serving process: memory freed after a load goes back.

glibc gives each thread that allocates while the others hold their arenas an arena of its
own, up to 8 per core; a pool of request threads ends up with one per thread, and what a
burst allocated there stays in the process once the burst is over (a served
``--workers 2`` share grew from 126 to 168 MiB at rest after the benchmark's load, and to
136 MiB with two arenas; benchmarks/README.md). :func:`limit_malloc_arenas` caps them
before the pool starts, as ``MALLOC_ARENA_MAX=2`` in the environment would.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["ARENAS", "limit_malloc_arenas"]

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
