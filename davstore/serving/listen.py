"""Binding a share's HTTP server to its port, and the messages when that fails."""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from davstore.options import DEFAULT_GRACE_PERIOD, DEFAULT_METRICS_HOST
from davstore.serving.exits import CommandError, UsageError

__all__ = [
    "METRICS_PATH",
    "bound_port",
    "check_tls_arguments",
    "listen",
    "metrics_host",
    "netloc",
    "one_line",
    "serve_metrics",
    "server_url",
    "why",
]

logger = logging.getLogger(__name__)

#: Where the metrics are, on the share's port or on ``--metrics-port``.
METRICS_PATH = "/.davstore/metrics"


def check_tls_arguments(args: argparse.Namespace) -> None:
    """Raise UsageError unless ``--tls-cert`` and ``--tls-key`` are both absent or both files."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for tls_file in (args.tls_cert, args.tls_key):
        if tls_file and not Path(tls_file).is_file():
            raise UsageError(f"no such file: {tls_file}")


def server_url(server: Any, args: argparse.Namespace) -> str:
    """The URL a listening server answers at (``http://127.0.0.1:8080/``)."""
    return f"{'https' if args.tls_cert else 'http'}://{netloc(args.host, bound_port(server))}/"


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
        raise UsageError(f"cannot use the TLS certificate and key: {why(exc)}") from exc
    # On stop, the server waits this long for requests in progress (then they are cut off).
    server.shutdown_timeout = getattr(args, "grace_period", DEFAULT_GRACE_PERIOD)
    try:
        server.prepare()
    except OSError as exc:
        raise CommandError(f"cannot listen on {netloc(args.host, args.port)}: {why(exc)}") from exc
    return server


def metrics_host(args: argparse.Namespace) -> str:
    """The address ``--metrics-port`` listens on."""
    return getattr(args, "metrics_host", None) or DEFAULT_METRICS_HOST


def _nothing() -> None:
    pass


def serve_metrics(
    observed: Any, args: argparse.Namespace, make_server: Callable[..., Any] | None = None
) -> Callable[[], None]:
    """Serve the health and metrics endpoints of ``observed`` (an
    :class:`~davstore.serving.observability.Observability`) on ``--metrics-port`` (a
    worker: on the socket its parent made) on a thread of their own; returns what stops
    them. Nothing without ``--metrics-port``. ``make_server``: the HTTP server's (default:
    :func:`davstore.http.server.make_server`)."""
    port = getattr(args, "metrics_port", None)
    inherited = getattr(args, "worker_metrics_socket", None)
    if port is None and inherited is None:
        return _nothing
    if make_server is None:
        from davstore.http.server import make_server as http_server

        make_server = http_server

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
            f"cannot listen on {netloc(host, port or 0)} (--metrics-port): {why(exc)}"
        ) from exc
    thread = threading.Thread(target=server.serve, name="davstore-metrics", daemon=True)
    thread.start()
    if inherited is None:
        logger.info("metrics at http://%s%s", netloc(host, bound_port(server)), METRICS_PATH)

    def stop() -> None:
        server.stop()
        thread.join(5)

    return stop


def bound_port(server: Any) -> int:
    """The port the server listens on (port 0 resolved to the real one)."""
    return int(server.bind_addr[1])


def netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    text = " ".join(str(exc).split())
    # Messages that carry an errno inside: "... [Errno 98] Address already in use ..."
    match = re.search(r"\[Errno \d+\] ([^)]*)", text)
    if match:
        return match.group(1).lower()
    return text or type(exc).__name__
