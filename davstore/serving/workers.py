"""``davstore serve --workers N``: N server processes on one listening socket.

One Python process answers with one core at a time (the GIL); on 16 connections of small
requests davstore's threads mostly hand the GIL to each other (benchmarks/README.md). The
parent binds the port, prints the banner, and starts N workers: ``davstore serve`` again
with the same arguments and ``--worker-socket FD``, each inheriting a listening socket of
its own on the port (``SO_REUSEPORT``: the kernel spreads new connections evenly over them;
one socket shared by all went mostly to one worker). What the workers must agree on is shared
through the share's state folder: the metadata cache (:mod:`davstore.vfs.host_peers`), locks and
dead properties (sqlite_locks.py), and the metrics (prometheus-client's multiprocess mode in
``<state>/metrics/<parent pid>``: every worker's ``/.davstore/metrics`` shows the sums, and
the process metrics of each process by pid: :class:`WorkerProcessMetrics`).

A worker never has the current folder on its import path: ``python -m`` (and ``python
script.py``) put the current folder (the script's) first on ``sys.path``, so a parent started
inside its own share (``cd /srv/files && davstore serve .``) would have its workers import
whatever a user uploaded there (``davstore/__init__.py``, or a ``davstore/`` folder that
makes the package a namespace package of the share's files) when they start again. Workers
run with ``-P`` (Python 3.11; a bootstrap that drops the entry on 3.10,
:func:`without_current_folder`), and the entry the parent had is handed over as an absolute
``PYTHONPATH`` entry only when it lies outside every shared folder (a project's folder, where
``manage.py`` and the settings are), as are the parent's own ``PYTHONPATH`` entries and the
folder ``--settings`` put on the parent's path (the project's, by its absolute path:
:func:`worker_environment`). A worker itself never puts its current folder on the path.

The parent forwards SIGTERM/SIGINT to the workers and waits for them (each finishes its
requests in progress, as a single server does); a second signal kills them. A worker that
dies is started again, unless workers keep dying right after their start: then the parent
stops the others and exits with an error. Once it has bound the port and printed the
banner, the parent does that as :mod:`davstore.serving.supervisor`, which it execs (same
pid): a process without the Django, wsgidav and server modules it imported to check the
share.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from davstore.options import DEFAULT_GRACE_PERIOD
from davstore.serving.exits import CommandError, UsageError
from davstore.serving.listen import netloc, why
from davstore.serving.supervisor import (
    MODULE,
    WORKER_INDEX_ENV,
    WORKER_PARENT_ENV,
    Workers,
    exec_supervisor,
)

__all__ = [
    "METRICS_DIR",
    "WORKER_INDEX_ENV",
    "WORKER_PARENT_ENV",
    "WORKER_PASSWORD_ENV",
    "Workers",
    "check_shareable",
    "children",
    "follow_parent",
    "import_path",
    "run_workers",
    "shared_folders",
    "start_worker",
    "without_current_folder",
    "worker_command",
    "worker_command_of",
    "worker_environment",
]

logger = logging.getLogger(__name__)

#: The folder of the workers' metrics, in the share's state folder (one folder per parent,
#: named by its pid, removed when it stops).
METRICS_DIR = "metrics"
#: The generated password the workers use (not on their command line).
WORKER_PASSWORD_ENV = "DAVSTORE_WORKER_PASSWORD"  # noqa: S105 - the name of a variable


def children(pid: int) -> list[int]:
    """The pids of the child processes of ``pid`` (Linux ``/proc``; empty elsewhere), from
    its threads' ``children`` files, else (a kernel without them, a thread that just ended)
    from every process's parent."""
    found: list[int] = []
    try:
        with os.scandir(f"/proc/{pid}/task") as tasks:
            for task in tasks:
                found += map(int, Path(task.path, "children").read_text().split())
        return sorted(found)
    except OSError:
        found = []
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(entry.path, "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
    return sorted(found)


def worker_command(argv: Sequence[str]) -> list[str]:
    """The command that runs ``davstore`` with ``argv`` in a new process (the current
    folder not on its import path)."""
    return worker_command_of("davstore", argv)


def worker_command_of(module: str, argv: Sequence[str] = ()) -> list[str]:
    """The command that runs ``python -m module`` with ``argv`` in a new process (the
    current folder not on its import path)."""
    return without_current_folder([sys.executable, "-m", module, *argv])


#: ``python -c`` on Python 3.10 (no ``-P``): drop the current folder Python put first on
#: the path, then run ``-m MODULE ARGS`` or ``SCRIPT ARGS`` as Python itself would.
_BOOTSTRAP = (
    "import runpy, sys; del sys.path[0]; kind = sys.argv.pop(1); del sys.argv[0]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True) if kind == '-m' "
    "else runpy.run_path(sys.argv[0], run_name='__main__')"
)


def without_current_folder(command: Sequence[str]) -> list[str]:
    """``command`` (``python [-W.. -X..] -m MODULE ARGS`` or ``python [...] SCRIPT ARGS``,
    as ``worker_command`` and Django's ``get_child_arguments`` make them) changed so that
    Python puts neither the current folder nor the script's folder on ``sys.path``.
    Anything else (a Windows ``.exe`` entry point) is left as it is."""
    command = [str(part) for part in command]
    if not command or command[0] != sys.executable:
        return command
    if sys.version_info >= (3, 11):
        return [command[0], "-P", *command[1:]]
    index = 1
    while index < len(command) and command[index][:2] in ("-W", "-X"):
        index += 1
    if index >= len(command):
        return command
    if command[index] == "-m":
        return [*command[:index], "-c", _BOOTSTRAP, *command[index:]]
    return [*command[:index], "-c", _BOOTSTRAP, "script", *command[index:]]


def _first_entry() -> str | None:
    """The folder Python put first on this process's path (the current one for ``-m``,
    the script's for a script), if it did and it is still there."""
    if getattr(sys.flags, "safe_path", False):
        return None
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:
        entry = os.getcwd()
    elif sys.argv and sys.argv[0] not in ("", "-c"):
        entry = os.path.dirname(os.path.realpath(sys.argv[0]))
    else:
        return None
    on_path = {os.path.realpath(p or os.curdir) for p in sys.path}
    return entry if os.path.realpath(entry) in on_path else None


def _inside(path: str, folders: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    for folder in folders:
        top = os.path.realpath(folder)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def import_path(shared: Sequence[str], project: str | None = None) -> str:
    """The workers' ``PYTHONPATH``: ``project`` (the folder this process put on its path
    for the Django settings), the entry Python put first on this process's path, and
    this process's ``PYTHONPATH`` entries, made absolute, less those inside ``shared``
    (the folders of the local shares: their content is uploaded by users)."""
    entries = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = _first_entry()
    if first is not None and first not in entries:
        entries.insert(0, first)
    if project is not None:
        project = os.path.abspath(project)
        if project in entries:
            entries.remove(project)
        entries.insert(0, project)
    kept = []
    for entry in entries:
        if _inside(entry, shared):
            logger.warning("%s is inside a shared folder: not on the workers' path", entry)
        else:
            kept.append(entry)
    return os.pathsep.join(kept)


def shared_folders(storages: Iterable[object]) -> list[str]:
    """The local folders among ``storages`` (``FileSystemStorage`` locations)."""
    from django.core.files.storage import FileSystemStorage

    return [str(s.location) for s in storages if isinstance(s, FileSystemStorage)]


def worker_environment(
    *,
    metrics_dir: Path,
    password: str | None,
    shared: Sequence[str] = (),
    project: str | None = None,
) -> dict[str, str]:
    """This process's environment for the workers: the metrics folder, the password, the
    import path (:func:`import_path`; ``shared``: the local shares' folders, ``project``:
    the folder put on this process's path for the settings)."""
    env = dict(os.environ)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    path = import_path(shared, project)
    if path:
        env["PYTHONPATH"] = path
    else:
        env.pop("PYTHONPATH", None)
    if password is not None:
        env[WORKER_PASSWORD_ENV] = password
    else:
        env.pop(WORKER_PASSWORD_ENV, None)
    return env


def follow_parent(parent: int) -> None:
    """In a worker: get SIGTERM when the parent (pid ``parent``) dies, however it dies
    (Linux ``PR_SET_PDEATHSIG``), so no worker is left serving alone."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError) as exc:  # not Linux: the parent's stop still works
        logger.debug("cannot follow the parent's death: %s", exc)
    if os.getppid() != parent:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def start_worker(args: argparse.Namespace) -> bool:
    """Whether this process is a worker of ``--workers`` (given ``--worker-socket``); a
    worker is made to get SIGTERM when its parent dies."""
    if getattr(args, "worker_socket", None) is None:
        return False
    if os.environ.get(WORKER_PARENT_ENV, "").isdigit():
        follow_parent(int(os.environ[WORKER_PARENT_ENV]))
    return True


def check_shareable(storage: Any, lock_storage: str | None, property_storage: str | None) -> None:
    """Raise UsageError unless every worker process can share the store and the state."""
    from django.core.files.storage import InMemoryStorage

    if isinstance(storage, InMemoryStorage):
        raise UsageError("--workers needs a store every process sees: not InMemoryStorage")
    for option, url in (("--lock-storage", lock_storage), ("--property-storage", property_storage)):
        if url is not None and url.split(":", 1)[0] in ("memory", "shelve"):
            raise UsageError(f"--workers needs {option} that every process shares, not {url}")


def run_workers(
    args: argparse.Namespace,
    *,
    command: Sequence[str],
    metrics_dir: Path,
    banner: Callable[[str], None],
    password: str | None = None,
    shared: Sequence[str] = (),
    project: str | None = None,
    supervise: bool = True,
    failure: str | None = None,
) -> int:
    """The parent of ``--workers N``: bind N sockets to the port (and N to
    ``--metrics-port``), call ``banner(url)``, run ``command`` (plus ``--worker-socket FD``)
    once per socket until SIGINT/SIGTERM, and return the exit status (:class:`Workers`).
    With ``supervise`` (the default) this process first becomes the lean supervisor
    (:func:`davstore.serving.supervisor.exec_supervisor`: it never returns then, and
    prints ``failure`` if the workers keep exiting); else, or if that fails, it
    supervises in place.
    The workers' metrics go to ``metrics_dir``; ``password`` is the generated one, handed
    over in the environment; ``shared``: the local folders served, kept off the workers'
    import path; ``project``: the folder put on this process's path for the settings,
    handed over by its absolute path."""
    from davstore.http.server import check_tls, listen_sockets
    from davstore.serving.listen import METRICS_PATH, metrics_host

    if args.tls_cert and args.tls_key:
        try:
            check_tls(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot use the TLS certificate and key: {why(exc)}") from exc
    try:
        sockets = listen_sockets(args.host, args.port, args.workers)
    except OSError as exc:
        raise CommandError(f"cannot listen on {netloc(args.host, args.port)}: {why(exc)}") from exc
    metrics_sockets = []
    if getattr(args, "metrics_port", None) is not None:
        host = metrics_host(args)
        try:
            metrics_sockets = listen_sockets(host, args.metrics_port, args.workers)
        except OSError as exc:
            for sock in sockets:
                sock.close()
            raise CommandError(
                f"cannot listen on {netloc(host, args.metrics_port)} (--metrics-port): {why(exc)}"
            ) from exc
        bound = int(metrics_sockets[0].getsockname()[1])
        logger.info("metrics at http://%s%s", netloc(host, bound), METRICS_PATH)
    try:
        port = int(sockets[0].getsockname()[1])
        banner(f"{'https' if args.tls_cert else 'http'}://{netloc(args.host, port)}/")
        env = worker_environment(
            metrics_dir=metrics_dir, password=password, shared=shared, project=project
        )
        grace_period = float(getattr(args, "grace_period", DEFAULT_GRACE_PERIOD))
        fds = [sock.fileno() for sock in sockets]
        metrics_fds = [sock.fileno() for sock in metrics_sockets]
        if supervise:  # returns only if the lean supervisor could not start
            exec_supervisor(
                worker_command_of(MODULE),
                command=command,
                sockets=fds,
                metrics_sockets=metrics_fds,
                env=env,
                metrics_dir=metrics_dir,
                grace_period=grace_period,
                failure=failure,
            )
        workers = Workers(
            command,
            fds,
            env=env,
            metrics_dir=metrics_dir,
            grace_period=grace_period,
            metrics_sockets=metrics_fds,
        )
        return workers.run()
    finally:
        for sock in [*sockets, *metrics_sockets]:
            sock.close()
