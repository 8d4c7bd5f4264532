"""Binding a share's HTTP server to its port, and the messages when that fails."""

from __future__ import annotations

import argparse
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from davstore.options import DEFAULT_GRACE_PERIOD
from davstore.serving.exits import CommandError, UsageError

__all__ = ["bound_port", "check_tls_arguments", "listen", "netloc", "one_line", "server_url", "why"]


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
