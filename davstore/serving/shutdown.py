"""Serving until SIGINT/SIGTERM, then stopping in order (the grace period of uploads)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from davstore.serving.exits import CommandError
from davstore.serving.listen import why as _why

__all__ = ["exit_if_cut_off", "run_until_signalled"]

logger = logging.getLogger(__name__)


def run_until_signalled(
    server: Any,
    flush: Callable[[], None],
    discard: Callable[[], None] | None = None,
    *,
    tick: Callable[[], object] | None = None,
) -> int:
    """Serve on a thread until SIGINT/SIGTERM, then stop in order: no new connections,
    requests in progress finished, open write handles committed (``flush``).

    Requests still in progress after the grace period (``server.shutdown_timeout``) are
    cut off: what they were uploading is dropped (``discard``), never committed half,
    and the caller ends the process with :func:`exit_if_cut_off` once its state is
    closed. ``tick`` is called on the main thread twice a second while it serves (e.g.
    :class:`davstore.serving.malloc.IdleTrim`)."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:
            logger.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(1)
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.serve()
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=run, name="davstore-serve", daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            if tick is not None:
                tick()
        if received:
            logger.info("%s received: stopping", signal.Signals(received[0]).name)
        server.stop()  # returns once requests in progress are done (or the grace period is)
        cut_off = server.in_progress
        if cut_off:
            logger.warning(
                "%d request(s) still in progress after the grace period: cut off, "
                "their uploads dropped",
                cut_off,
            )
            if discard is not None:
                discard()
        else:
            thread.join(10)
            flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure and not received:
        raise CommandError(f"the server stopped: {_why(failure[0])}") from failure[0]
    logger.info("stopped")
    return 0


def exit_if_cut_off(server: Any) -> None:
    """End the process now when ``server`` stopped with requests still in progress.

    Their threads wait on clients that went silent, and the HTTP engine waits for them;
    the process has closed its state already, so it leaves without them (status 0: the
    stop itself went as asked)."""
    if server.in_progress:
        from davstore.serving.observability import flush_access_log

        flush_access_log()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
