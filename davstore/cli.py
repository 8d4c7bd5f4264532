"""The ``davstore`` command line.

Each subcommand is one :class:`Command`: a function that adds its arguments and a function
that runs it and returns the exit status. To add one, write the two functions and append a
``Command`` to :data:`COMMANDS`; share the storage selection with
:func:`davstore.selection.add_storage_arguments` and
:func:`davstore.selection.open_share`, and logging with :func:`add_logging_arguments`.

Exit status: 0 on success and on a clean stop by SIGINT/SIGTERM; 2 for bad input
(:class:`~davstore.selection.UsageError`, argparse errors); 1 when the command could not
run (port in use, ...: :class:`CommandError`). Errors are printed as one line on stderr,
never as a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from davstore.frontends.fuse.command import (
    add_mount_arguments,
    add_umount_arguments,
    run_mount,
    run_umount,
)
from davstore.selection import Share, UsageError, add_storage_arguments, open_share

if TYPE_CHECKING:
    from davstore.frontends.webdav.limits import DavLimits

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "add_logging_arguments",
    "add_network_arguments",
    "add_serve_arguments",
    "add_user_arguments",
    "add_webdav_arguments",
    "add_workers_arguments",
    "build_parser",
    "check_shareable",
    "check_tls_arguments",
    "configure_logging",
    "dav_limits",
    "default_state_root",
    "exit_if_cut_off",
    "listen",
    "main",
    "metrics_host",
    "parse_size",
    "parse_user",
    "prepare_state_dir",
    "run_until_signalled",
    "run_workers",
    "serve_metrics",
    "server_url",
    "start_worker",
]

logger = logging.getLogger(__name__)

#: The user name of the generated account when neither --user nor --anonymous is given.
GENERATED_USER = "davstore"

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
#: Seconds requests in progress get to finish on SIGTERM (Kubernetes waits 30 s by default).
DEFAULT_GRACE_PERIOD = 25.0
#: Where ``--metrics-port`` listens unless ``--metrics-host`` says otherwise.
DEFAULT_METRICS_HOST = "127.0.0.1"
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class CommandError(Exception):
    """The command could not do its work (say, the port is taken); one line, exit 1."""

    exit_code: int = 1


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` then ``run(args) -> exit status``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- shared argument helpers -----------------------------------------------------------


def parse_size(text: str) -> int:
    """A byte count: ``1048576``, ``512K``, ``10M``, ``2G``, ``1.5GiB`` (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 1048576, 10M, 2G)")
    number, unit, _ = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def parse_user(text: str) -> tuple[str, str]:
    """``NAME:PASSWORD`` as ``(name, password)``; the password may contain colons."""
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD with both parts non-empty")
    return name, password


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def _non_negative_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    value = _non_negative_number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` and ``--log-level``."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v: debug for davstore, -vv: debug for everything)",
    )
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="the log level (default: INFO)",
    )


class _Formatter(logging.Formatter):
    """``logging.Formatter`` with the date part of ``asctime`` made once per second: the
    access log writes a line per request. Same text as the default formatter."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            cached = self._second = (second, text)
        return f"{cached[1]},{int(record.msecs):03d}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """``logging.StreamHandler`` on stderr that writes the access log a batch at a time.

    A record with ``more_follow`` set (see observability.py's access log) is formatted and
    held; the next record without it writes everything held with its own line in one
    write. stderr is line-buffered: a write per line was a system call per request.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "more_follow", False):
            if self._held:
                self._held.append(self.format(record) + self.terminator)
                text, self._held = "".join(self._held), []
                try:
                    self.stream.write(text)
                    self.flush()
                except Exception:
                    self.handleError(record)
                return
            super().emit(record)
            return
        try:
            self._held.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)


def configure_logging(args: argparse.Namespace) -> None:
    """Log to stderr at the level ``args`` ask for."""
    verbose = int(getattr(args, "verbose", 0) or 0)
    level_name: str | None = getattr(args, "log_level", None)
    level = logging.getLevelName(level_name) if level_name else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(_LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if verbose >= 1:
        logging.getLogger("davstore").setLevel(logging.DEBUG)
    if verbose >= 2:
        logging.getLogger().setLevel(logging.DEBUG)


def default_state_root(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/davstore``, else ``~/.local/state/davstore``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "davstore"


def prepare_state_dir(explicit: str | None, identity: str) -> Path:
    """The share's state folder, created and checked writable.

    ``explicit`` (``--state-dir``) is used as given; else a folder per share identity
    under :func:`default_state_root`, so the state of different shares never mixes.
    Raises UsageError when it cannot be created or written.
    """
    path = Path(explicit).expanduser() if explicit else default_state_root() / identity
    path = path.absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".davstore-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"state directory {path} is not writable: {exc.strerror or exc} "
            "(choose another with --state-dir)"
        ) from exc
    return path


# -- serve -----------------------------------------------------------------------------


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_storage_arguments(parser)
    add_network_arguments(parser)
    add_workers_arguments(parser)
    add_user_arguments(parser)
    add_webdav_arguments(parser)
    add_logging_arguments(parser)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port``, ``--threads``, ``--timeout``, ``--header-timeout``,
    ``--max-connections-per-client``, ``--threads-per-client``, ``--busy-poll``,
    ``--tls-cert/--tls-key``, ``--metrics-port/--metrics-host`` and ``--grace-period``."""
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    net.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080)")
    net.add_argument(
        "--threads",
        type=_positive_int,
        default=64,
        help="requests handled at once, each on its own thread (default: 64)",
    )
    net.add_argument(
        "--timeout",
        type=_positive_int,
        default=300,
        metavar="SECONDS",
        help="seconds a kept-alive connection may stay silent before its next request "
        "(default: 300)",
    )
    net.add_argument(
        "--header-timeout",
        type=_positive_number,
        default=20,
        metavar="SECONDS",
        help="seconds a connection may take to send a whole request head, however it "
        "trickles in: beyond, 408 and closed (default: 20)",
    )
    net.add_argument(
        "--max-connections-per-client",
        type=_positive_int,
        default=256,
        metavar="N",
        help="connections one client address may hold open at once, per server process: "
        "beyond, a new one is refused with 503 (default: 256)",
    )
    net.add_argument(
        "--threads-per-client",
        type=_positive_int,
        metavar="N",
        help="threads the requests of one client address may hold at once; its other "
        "requests wait (default: half of --threads; behind a reverse proxy every client "
        "has the proxy's address: raise it to --threads)",
    )
    net.add_argument(
        "--busy-poll",
        type=_non_negative_number,
        metavar="MICROSECONDS",
        help="how long the server keeps polling for the next request after an answer "
        "before it sleeps, as Go's scheduler does: lower latency for a client that asks "
        "again at once, for at most that much CPU per burst of requests; 0 turns it off "
        "(default: 300; 0 with less than two CPUs, a container's CPU limit included)",
    )
    net.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    net.add_argument("--tls-key", metavar="FILE", help="the private key for --tls-cert")
    net.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve /.davstore/metrics and /.davstore/health (with the details of a "
        "failure) on this port of their own, without credentials; the share's port then "
        "has no metrics (default: the metrics on the share's port, for its users only)",
    )
    net.add_argument(
        "--metrics-host",
        metavar="HOST",
        help=f"the address of --metrics-port (default: {DEFAULT_METRICS_HOST}: this host only)",
    )
    net.add_argument(
        "--grace-period",
        type=_non_negative_number,
        default=DEFAULT_GRACE_PERIOD,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long requests in progress (uploads) may take to finish "
        f"(default: {DEFAULT_GRACE_PERIOD:g})",
    )


def add_workers_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers`` and the hidden ``--worker-socket FD`` a worker is started with."""
    parser.add_argument_group("network").add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="server processes sharing the port, each with --threads threads: more than one "
        "uses more than one core for Python (default: 1)",
    )
    parser.add_argument("--worker-socket", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-metrics-socket", type=int, help=argparse.SUPPRESS)


def start_worker(args: argparse.Namespace) -> bool:
    """Whether this process is a worker of ``--workers`` (given ``--worker-socket``); a
    worker is made to get SIGTERM when its parent dies."""
    if getattr(args, "worker_socket", None) is None:
        return False
    from davstore.workers import WORKER_PARENT_ENV, follow_parent

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
) -> int:
    """The parent of ``--workers N``: bind N sockets to the port, call ``banner(url)``, run
    ``command`` (plus ``--worker-socket FD``) once per socket until SIGINT/SIGTERM, and
    return the exit status (:class:`davstore.workers.Workers`). The workers' metrics go to
    ``metrics_dir``; ``password`` is the generated one, handed over in the environment;
    ``shared``: the local folders served, kept off the workers' import path."""
    from davstore.frontends.webdav.server import check_tls, listen_sockets
    from davstore.workers import Workers, worker_environment

    if args.tls_cert and args.tls_key:
        try:
            check_tls(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot use the TLS certificate and key: {_why(exc)}") from exc
    try:
        sockets = listen_sockets(args.host, args.port, args.workers)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {_netloc(args.host, args.port)}: {_why(exc)}"
        ) from exc
    metrics_sockets = []
    if getattr(args, "metrics_port", None) is not None:
        host = metrics_host(args)
        try:
            metrics_sockets = listen_sockets(host, args.metrics_port, args.workers)
        except OSError as exc:
            for sock in sockets:
                sock.close()
            raise CommandError(
                f"cannot listen on {_netloc(host, args.metrics_port)} (--metrics-port): {_why(exc)}"
            ) from exc
        bound = int(metrics_sockets[0].getsockname()[1])
        logger.info("metrics at http://%s%s", _netloc(host, bound), _METRICS)
    try:
        port = int(sockets[0].getsockname()[1])
        banner(f"{'https' if args.tls_cert else 'http'}://{_netloc(args.host, port)}/")
        workers = Workers(
            command,
            sockets,
            env=worker_environment(metrics_dir=metrics_dir, password=password, shared=shared),
            metrics_dir=metrics_dir,
            grace_period=getattr(args, "grace_period", DEFAULT_GRACE_PERIOD),
            metrics_sockets=metrics_sockets,
        )
        return workers.run()
    finally:
        for sock in [*sockets, *metrics_sockets]:
            sock.close()


def add_user_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--user NAME:PASSWORD`` and ``--anonymous``."""
    auth = parser.add_argument_group("authentication")
    who = auth.add_mutually_exclusive_group()
    who.add_argument(
        "--user",
        dest="users",
        action="append",
        type=parse_user,
        default=[],
        metavar="NAME:PASSWORD",
        help="allow this user (repeatable); default: user 'davstore' with a generated password",
    )
    who.add_argument(
        "--anonymous", action="store_true", help="no authentication: anyone may connect"
    )


def add_webdav_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--lock-storage``, ``--property-storage``, ``--state-dir``, ``--mac-metadata``,
    ``--max-upload-size`` and the bounds of limits.py (``--propfind-depth-infinity``,
    ``--max-properties``, ``--max-properties-per-request``, ``--max-lock-timeout``)."""
    dav = parser.add_argument_group("WebDAV")
    dav.add_argument(
        "--lock-storage",
        metavar="URL",
        help="where locks live: memory:, sqlite:///FILE, shelve:///FILE or "
        "redis://HOST:PORT/DB (shared by replicas) (default: a SQLite file in the state "
        "directory)",
    )
    dav.add_argument(
        "--property-storage",
        metavar="URL",
        help="where dead properties live, same forms (default: a SQLite file in the "
        "state directory)",
    )
    dav.add_argument(
        "--state-dir",
        metavar="DIR",
        help="folder for this share's state (default: $XDG_STATE_HOME/davstore/<share>)",
    )
    dav.add_argument(
        "--mac-metadata",
        choices=["hide", "store"],
        default="hide",
        help="macOS ._* and .DS_Store files: 'hide' keeps them beside the store (in the state "
        "folder), out of it and of listings; 'store' stores them as ordinary files "
        "(default: hide)",
    )
    dav.add_argument(
        "--max-upload-size",
        type=parse_size,
        metavar="BYTES",
        help="refuse bigger uploads with 413 (accepts 10M, 2G, ...)",
    )
    dav.add_argument(
        "--propfind-depth-infinity",
        choices=["refuse", "stream"],
        help="PROPFIND Depth: infinity on a folder: 'refuse' answers 403 "
        "propfind-finite-depth, as Apache does; 'stream' answers the whole tree, streamed "
        "(default: refuse)",
    )
    dav.add_argument(
        "--max-properties",
        type=_positive_int,
        metavar="N",
        help="dead properties one file or folder may hold; more is 507 (default: 1000)",
    )
    dav.add_argument(
        "--max-properties-per-request",
        type=_positive_int,
        metavar="N",
        help="properties one PROPPATCH may change; more is 413 (default: 100)",
    )
    dav.add_argument(
        "--max-lock-timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="the longest a lock lives, in seconds; Infinite and longer timeouts get this "
        "(default: 86400, one day)",
    )


def dav_limits(args: argparse.Namespace, base: DavLimits | None = None) -> DavLimits:
    """The share's :class:`~davstore.frontends.webdav.limits.DavLimits`: the flags given
    in ``args`` over ``base`` (the ``DAVSTORE`` setting's, for the management command)
    over the defaults (which the flags' help repeats)."""
    from davstore.frontends.webdav.limits import DavLimits

    limits = base or DavLimits()
    changes: dict[str, Any] = {}
    depth = getattr(args, "propfind_depth_infinity", None)
    if depth is not None:
        changes["depth_infinity"] = depth == "stream"
    for name in ("max_properties", "max_properties_per_request", "max_lock_timeout"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(limits, **changes) if changes else limits


def serve(args: argparse.Namespace) -> int:
    """``davstore serve``: share the selected storage over WebDAV until SIGINT/SIGTERM.

    With ``--workers N`` (N > 1) this process binds the port and runs N workers
    (:mod:`davstore.workers`); a worker is this function again, given ``--worker-socket``.
    """
    configure_logging(args)
    check_tls_arguments(args)
    worker = start_worker(args)

    generated: str | None = None
    users: dict[str, str] | None
    if args.anonymous:
        users = None
    elif args.users:
        users = dict(args.users)
    else:
        from davstore.workers import WORKER_PASSWORD_ENV

        generated = (os.environ.get(WORKER_PASSWORD_ENV) if worker else None) or (
            secrets.token_urlsafe(12)
        )
        users = {GENERATED_USER: generated}

    share = open_share(args, max_file_size=args.max_upload_size)
    state_dir = prepare_state_dir(args.state_dir, share.identity)
    if getattr(args, "workers", 1) > 1 and not worker:
        return _serve_workers(args, share, state_dir, users, generated)

    try:
        from davstore.frontends.webdav import create_app, make_server
    except ImportError as exc:
        raise CommandError(f"the WebDAV frontend is not available: {exc}") from exc

    try:
        app = create_app(
            share.vfs,
            users=users,
            realm="davstore",
            lock_storage=args.lock_storage,
            property_storage=args.property_storage,
            state_dir=state_dir,
            max_upload_size=args.max_upload_size,
            mac_metadata=getattr(args, "mac_metadata", "hide"),
            limits=dav_limits(args),
            share_name=share.name,
        )
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot open the share's state in {state_dir}: {_why(exc)}") from exc
    stop_metrics: Callable[[], None] = _nothing
    try:
        from davstore.frontends.webdav.observability import instrument

        observed = instrument(
            app, share.vfs, metrics_elsewhere=getattr(args, "metrics_port", None) is not None
        )
        server = listen(make_server, app, args)
        stop_metrics = serve_metrics(observed, args)
        url = server_url(server, args)
        if worker:
            from davstore.workers import WORKER_INDEX_ENV

            logger.info("worker %s serving at %s", os.environ.get(WORKER_INDEX_ENV), url)
        else:
            _print_banner(
                url=url,
                share=share.vfs.describe(),
                read_only=bool(args.read_only),
                state_dir=state_dir,
                users=users,
                generated=generated,
            )
            logger.info("serving %s at %s (state in %s)", share.vfs.describe(), url, state_dir)
        status = run_until_signalled(server, share.vfs.flush_all, share.vfs.abort_all)
    finally:
        stop_metrics()
        app.close()
    exit_if_cut_off(server)
    return status


def _serve_workers(
    args: argparse.Namespace,
    share: Share,
    state_dir: Path,
    users: dict[str, str] | None,
    generated: str | None,
) -> int:
    """The parent of ``--workers N``: check the share can be shared, then run the workers."""
    from davstore.workers import METRICS_DIR, shared_folders, worker_command

    check_shareable(share.storage, args.lock_storage, args.property_storage)

    def banner(url: str) -> None:
        _print_banner(
            url=url,
            share=share.vfs.describe() + f", {args.workers} workers",
            read_only=bool(args.read_only),
            state_dir=state_dir,
            users=users,
            generated=generated,
        )
        logger.info(
            "serving %s at %s with %d workers (state in %s)",
            share.vfs.describe(),
            url,
            args.workers,
            state_dir,
        )

    return run_workers(
        args,
        command=worker_command(args.argv),
        metrics_dir=state_dir / METRICS_DIR / str(os.getpid()),
        banner=banner,
        password=generated,
        shared=shared_folders([share.storage]),
    )


def check_tls_arguments(args: argparse.Namespace) -> None:
    """Raise UsageError unless ``--tls-cert`` and ``--tls-key`` are both absent or both files."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for tls_file in (args.tls_cert, args.tls_key):
        if tls_file and not Path(tls_file).is_file():
            raise UsageError(f"no such file: {tls_file}")


def server_url(server: Any, args: argparse.Namespace) -> str:
    """The URL a listening server answers at (``http://127.0.0.1:8080/``)."""
    return f"{'https' if args.tls_cert else 'http'}://{_netloc(args.host, _bound_port(server))}/"


def listen(make_server: Callable[..., Any], app: Any, args: argparse.Namespace) -> Any:
    """The HTTP server for ``app``, bound to its port (not serving yet)."""
    inherited = getattr(args, "worker_socket", None)
    try:
        server = make_server(
            app,
            args.host,
            args.port,
            threads=args.threads,
            timeout=args.timeout,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            sock=None if inherited is None else socket.socket(fileno=inherited),
            busy_poll=None if args.busy_poll is None else args.busy_poll / 1e6,
            header_timeout=getattr(args, "header_timeout", 20),
            max_connections_per_client=getattr(args, "max_connections_per_client", 256),
            threads_per_client=getattr(args, "threads_per_client", None),
        )
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot use the TLS certificate and key: {_why(exc)}") from exc
    # On stop, the server waits this long for requests in progress (then they are cut off).
    server.shutdown_timeout = getattr(args, "grace_period", DEFAULT_GRACE_PERIOD)
    try:
        server.prepare()
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {_netloc(args.host, args.port)}: {_why(exc)}"
        ) from exc
    return server


_METRICS = "/.davstore/metrics"


def metrics_host(args: argparse.Namespace) -> str:
    """The address ``--metrics-port`` listens on."""
    return getattr(args, "metrics_host", None) or DEFAULT_METRICS_HOST


def _nothing() -> None:
    pass


def serve_metrics(observed: Any, args: argparse.Namespace) -> Callable[[], None]:
    """Serve the health and metrics endpoints of ``observed`` (an
    :class:`~davstore.frontends.webdav.observability.Observability`) on ``--metrics-port``
    (a worker: on the socket its parent made) on a thread of their own; returns what stops
    them. Nothing without ``--metrics-port``."""
    port = getattr(args, "metrics_port", None)
    inherited = getattr(args, "worker_metrics_socket", None)
    if port is None and inherited is None:
        return _nothing
    from davstore.frontends.webdav import make_server

    host = metrics_host(args)
    server = make_server(
        observed.endpoints,
        host,
        port or 0,
        threads=4,
        timeout=30,
        sock=None if inherited is None else socket.socket(fileno=inherited),
    )
    server.shutdown_timeout = 1.0
    try:
        server.prepare()
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {_netloc(host, port or 0)} (--metrics-port): {_why(exc)}"
        ) from exc
    thread = threading.Thread(target=server.serve, name="davstore-metrics", daemon=True)
    thread.start()
    if inherited is None:
        logger.info("metrics at http://%s%s", _netloc(host, _bound_port(server)), _METRICS)

    def stop() -> None:
        server.stop()
        thread.join(5)

    return stop


def _print_banner(
    *,
    url: str,
    share: str,
    read_only: bool,
    state_dir: Path,
    users: dict[str, str] | None,
    generated: str | None,
) -> None:
    lines = [
        "davstore is serving " + share + (" (read-only)" if read_only else ""),
        f"  URL:      {url}",
    ]
    if users is None:
        lines.append("  Auth:     none (--anonymous): anyone who can connect may read and write")
    elif generated is not None:
        lines += [f"  User:     {GENERATED_USER}", f"  Password: {generated}"]
    else:
        lines.append("  Users:    " + ", ".join(sorted(users)))
    lines += [f"  State:    {state_dir}", "Press Ctrl+C to stop."]
    print("\n".join(lines), flush=True)  # noqa: T201 -- the CLI's user-facing output


def run_until_signalled(
    server: Any, flush: Callable[[], None], discard: Callable[[], None] | None = None
) -> int:
    """Serve on a thread until SIGINT/SIGTERM, then stop in order: no new connections,
    requests in progress finished, open write handles committed (``flush``).

    Requests still in progress after the grace period (``server.shutdown_timeout``) are
    cut off: what they were uploading is dropped (``discard``), never committed half,
    and the caller ends the process with :func:`exit_if_cut_off` once its state is
    closed."""
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
            pass
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
        from davstore.frontends.webdav.observability import flush_access_log

        flush_access_log()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _bound_port(server: Any) -> int:
    """The port the server listens on (port 0 resolved to the real one)."""
    return int(server.bind_addr[1])


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    text = " ".join(str(exc).split())
    # Messages that carry an errno inside: "... [Errno 98] Address already in use ..."
    match = re.search(r"\[Errno \d+\] ([^)]*)", text)
    if match:
        return match.group(1).lower()
    return text or type(exc).__name__


# -- entry point -----------------------------------------------------------------------

COMMANDS: list[Command] = [
    Command("serve", "share a Django Storage over WebDAV", add_serve_arguments, serve),
    Command("mount", "mount a Django Storage as a folder (FUSE)", add_mount_arguments, run_mount),
    Command("umount", "unmount a davstore mount", add_umount_arguments, run_umount),
]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per :class:`Command`."""
    parser = _Parser(
        prog="davstore",
        description="Serve any Django Storage as a WebDAV share or mount it with FUSE.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS if commands is None else commands:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # workers run it again
    # Until a command installs its own handlers, SIGTERM interrupts like Ctrl+C does.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.run(args))
    except (UsageError, CommandError) as exc:
        print(f"davstore {args.command}: error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
