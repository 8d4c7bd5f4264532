"""The supervising parent of ``--workers N``, once the workers run: a process of its own.

The parent that checked the share, bound the port and printed the banner has imported
Django, wsgidav, the event loop and the share's store; all it does from then on is start the
workers, forward SIGTERM/SIGINT to them and start again one that died. So it replaces itself
(``os.execve``: same pid, the listening sockets kept open) with ``python -m
davstore.serving.supervisor``, which imports nothing but this module, the standard library
it needs and the logging setup (:func:`exec_supervisor`; memory at rest: benchmarks/README.md).
The spec of the workers to run is handed over as JSON in :data:`SPEC_ENV`; SIGTERM/SIGINT
stay blocked across the exec until :class:`Workers` has its handlers, so a signal sent
right after the banner stops the workers as it did before.

:class:`Workers` itself, which the parent also runs in place when it cannot exec, lives
here so that this module stays lean (see tests/serving/test_lean_worker.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from davstore.serving.logs import configure

__all__ = [
    "MODULE",
    "SPEC_ENV",
    "WORKER_INDEX_ENV",
    "WORKER_PARENT_ENV",
    "Workers",
    "exec_supervisor",
    "main",
    "mark_dead",
]

logger = logging.getLogger("davstore.serving.workers")

#: A worker's number (0, 1, ...) and its parent's pid, in the worker's environment.
WORKER_INDEX_ENV = "DAVSTORE_WORKER_INDEX"
WORKER_PARENT_ENV = "DAVSTORE_WORKER_PARENT"
#: The module the supervisor runs (``python -m``).
MODULE = "davstore.serving.supervisor"
#: The JSON spec of the workers, in the supervisor's environment (removed at its start).
SPEC_ENV = "DAVSTORE_SUPERVISOR_SPEC"
#: A worker that exits within this many seconds of its start counts as failing to start.
_EARLY = 5.0
#: Early exits in a row after which the parent gives up.
_GIVE_UP = 3
#: prometheus-client's live gauge modes: their files go with the process
#: (``prometheus_client.multiprocess.mark_process_dead``, not imported here).
_LIVE_MODES = ("liveall", "livemin", "livemax", "livesum", "livemostrecent")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Workers:
    """Run one copy of ``command`` per listening socket (file descriptors ``sockets``,
    given ``--worker-socket FD``) until SIGTERM/SIGINT; :meth:`run` returns the exit status."""

    def __init__(
        self,
        command: Sequence[str],
        sockets: Sequence[int],
        *,
        env: Mapping[str, str],
        metrics_dir: str | os.PathLike[str],
        grace_period: float,
        metrics_sockets: Sequence[int] = (),
    ) -> None:
        self.command = list(command)
        self.sockets = list(sockets)
        #: One per worker too, given as ``--worker-metrics-socket FD`` (``--metrics-port``).
        self.metrics_sockets = list(metrics_sockets)
        self.count = len(self.sockets)
        self.env = dict(env)
        self.metrics_dir = os.fspath(metrics_dir)
        self.grace_period = grace_period
        self._procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self._stop = threading.Event()
        self._signals: list[int] = []

    def _start(self, index: int) -> None:
        fd = self.sockets[index]  # a worker started again gets its queue back
        fds, more = [fd], []
        if self.metrics_sockets:
            metrics_fd = self.metrics_sockets[index]
            fds.append(metrics_fd)
            more = ["--worker-metrics-socket", str(metrics_fd)]
        proc = subprocess.Popen(
            [*self.command, "--worker-socket", str(fd), *more],
            pass_fds=tuple(fds),
            env={
                **self.env,
                WORKER_INDEX_ENV: str(index),
                WORKER_PARENT_ENV: str(os.getpid()),
            },
            stdin=subprocess.DEVNULL,
        )
        self._procs[index] = (proc, time.monotonic())
        logger.info("worker %d started (pid %d)", index, proc.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signals:
            for proc, _ in self._procs.values():
                with contextlib.suppress(OSError):
                    proc.kill()
        self._signals.append(signum)
        self._stop.set()

    def run(self) -> int:
        _drop_stale_metrics(os.path.dirname(self.metrics_dir))
        os.makedirs(self.metrics_dir, exist_ok=True)
        try:
            return self._run()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _run(self) -> int:
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        # Blocked across the exec (exec_supervisor): the handlers are there now. Before
        # the workers start, which would inherit the mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        early = 0
        status = 0
        try:
            for index in range(self.count):
                self._start(index)
            while not self._stop.wait(0.2):
                for index, (proc, started) in list(self._procs.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    mark_dead(self.metrics_dir, proc.pid)
                    lived = time.monotonic() - started
                    early = early + 1 if lived < _EARLY else 0
                    if early >= _GIVE_UP:
                        logger.error(
                            "workers keep exiting right after their start (last: status %s):"
                            " stopping",
                            code,
                        )
                        status = 1
                        self._stop.set()
                        break
                    logger.warning(
                        "worker %d (pid %d) exited with %s: starting it again",
                        index,
                        proc.pid,
                        code,
                    )
                    self._start(index)
            self._terminate()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if self._signals:
            logger.info("%s received: workers stopped", signal.Signals(self._signals[0]).name)
        return status

    def _terminate(self) -> None:
        for proc, _ in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period + 15
        for proc, _ in self._procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker pid %d did not stop: killed", proc.pid)
                proc.kill()
                proc.wait()
            mark_dead(self.metrics_dir, proc.pid)


def _drop_stale_metrics(parent: str) -> None:
    """Remove the metrics folders of parents that are gone (``<state>/metrics/<pid>``)."""
    if not os.path.isdir(parent):
        return
    for name in os.listdir(parent):
        if name.isdigit():
            try:
                os.kill(int(name), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            except OSError:
                pass


def mark_dead(metrics_dir: str, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sums), as
    ``prometheus_client.multiprocess.mark_process_dead`` does."""
    for mode in _LIVE_MODES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(metrics_dir, f"gauge_{mode}_{pid}.db"))


def exec_supervisor(
    argv: Sequence[str],
    *,
    command: Sequence[str],
    sockets: Sequence[int],
    metrics_sockets: Sequence[int],
    env: Mapping[str, str],
    metrics_dir: str | os.PathLike[str],
    grace_period: float,
    failure: str | None = None,
) -> None:
    """Replace this process with the supervisor (``argv``: Python running this module as
    ``__main__``, :data:`MODULE`; with ``env``) running ``command`` on ``sockets``;
    returns only if the exec failed (OSError, logged), with everything as it was.
    ``failure``: the line the supervisor prints on stderr when it gives up."""
    root = logging.getLogger()
    davstore = logging.getLogger("davstore")
    spec: dict[str, Any] = {
        "command": list(command),
        "sockets": list(sockets),
        "metrics_sockets": list(metrics_sockets),
        "metrics_dir": os.fspath(metrics_dir),
        "grace_period": grace_period,
        "level": root.getEffectiveLevel(),
        "davstore_level": davstore.getEffectiveLevel(),
        "failure": failure,
    }
    fds = [*sockets, *metrics_sockets]
    inheritable = [os.get_inheritable(fd) for fd in fds]
    for fd in fds:
        os.set_inheritable(fd, True)
    for handler in root.handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        os.execve(argv[0], list(argv), {**env, SPEC_ENV: json.dumps(spec)})  # noqa: S606
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for fd, was in zip(fds, inheritable, strict=True):
            os.set_inheritable(fd, was)
        logger.warning("cannot start the lean supervisor (%s): supervising in place", exc)


def main() -> int:
    """The supervisor's entry point: run the workers of :data:`SPEC_ENV`."""
    spec = json.loads(os.environ.pop(SPEC_ENV))
    configure(int(spec["level"]), int(spec["davstore_level"]))
    for fd in [*spec["sockets"], *spec["metrics_sockets"]]:
        os.set_inheritable(fd, False)  # each worker gets its own through pass_fds
    status = Workers(
        spec["command"],
        spec["sockets"],
        env=os.environ,
        metrics_dir=spec["metrics_dir"],
        grace_period=float(spec["grace_period"]),
        metrics_sockets=spec["metrics_sockets"],
    ).run()
    if status and spec.get("failure"):
        print(spec["failure"], file=sys.stderr)  # noqa: T201 -- the command's error line
    return status


if __name__ == "__main__":
    sys.exit(main())
