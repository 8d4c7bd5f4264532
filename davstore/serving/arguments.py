"""The argparse groups of a running share, shared by ``davstore serve/mount`` and
``manage.py davstore serve/mount``: network, workers, users, WebDAV state, mount, logging,
and the storage selection of the standalone command.

Each ``add_*`` function adds one group to a parser; the parsed values are read by
:mod:`davstore.serving`.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from davstore.frontends.fuse.mount import MountOptions


__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "add_logging_arguments",
    "add_mount_options",
    "add_network_arguments",
    "add_share_arguments",
    "add_storage_arguments",
    "add_user_arguments",
    "add_webdav_arguments",
    "add_workers_arguments",
    "mount_options",
    "parse_option",
    "parse_size",
    "parse_user",
]

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*\Z", re.IGNORECASE)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


#: Seconds requests in progress get to finish on SIGTERM (Kubernetes waits 30 s by default).
DEFAULT_GRACE_PERIOD = 25.0


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


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port``, ``--threads``, ``--timeout``, ``--busy-poll``,
    ``--tls-cert/--tls-key`` and ``--grace-period``."""
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
    ``--max-upload-size``."""
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


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``ROOT``, ``--backend``, ``--option``, ``--storage``, ``--settings``,
    ``--read-only`` and ``--cache-ttl`` to a subcommand's parser."""
    group = parser.add_argument_group("storage selection")
    group.add_argument(
        "root",
        nargs="?",
        metavar="ROOT",
        help="a local folder to share (FileSystemStorage); default: ./media, "
        "or the project's default storage when Django settings are given",
    )
    group.add_argument(
        "--backend",
        metavar="DOTTED.PATH",
        help="a Storage class, e.g. storages.backends.s3.S3Storage",
    )
    group.add_argument(
        "--option",
        "-o",
        dest="options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        type=parse_option,
        help="a keyword argument for the backend; VALUE is JSON where it parses, "
        "else a string (repeatable)",
    )
    group.add_argument(
        "--storage",
        metavar="ALIAS",
        help="a key of the project's STORAGES setting (needs Django settings)",
    )
    group.add_argument(
        "--settings",
        metavar="MODULE",
        help="the Django settings module (default: $DJANGO_SETTINGS_MODULE)",
    )
    add_share_arguments(parser, group)


def add_share_arguments(
    parser: argparse.ArgumentParser, group: argparse._ArgumentGroup | None = None
) -> None:
    """Add ``--read-only`` and ``--cache-ttl`` (to ``group`` when given)."""
    group = group if group is not None else parser.add_argument_group("share")
    group.add_argument(
        "--read-only",
        action="store_true",
        help="refuse every change",
    )
    group.add_argument(
        "--cache-ttl",
        metavar="SECONDS",
        type=_non_negative_float,
        default=1.0,
        help="how long file and folder metadata is reused (default: 1; 0 turns it off)",
    )


def parse_option(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` as ``(key, value)``; VALUE parsed as JSON where it parses.

    Raises ``argparse.ArgumentTypeError`` (shown by argparse as a usage error).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE with KEY a Python identifier, got {text!r}"
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a numeric id: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_mount_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--foreground``, ``--allow-other``, ``--uid`` and ``--gid``."""
    group = parser.add_argument_group("mount")
    group.add_argument(
        "--foreground",
        "-f",
        action="store_true",
        help="stay in the foreground until unmounted (default: return once mounted)",
    )
    group.add_argument(
        "--allow-other",
        action="store_true",
        help="let other users in, read-only for them (needs root or user_allow_other)",
    )
    group.add_argument("--uid", type=_id, help="owner shown for every file (default: you)")
    group.add_argument("--gid", type=_id, help="group shown for every file (default: yours)")


def mount_options(args: argparse.Namespace) -> MountOptions:
    """The :class:`MountOptions` the parsed arguments ask for."""
    from davstore.frontends.fuse.mount import MountOptions

    return MountOptions(
        foreground=bool(args.foreground),
        allow_other=bool(args.allow_other),
        uid=args.uid,
        gid=args.gid,
        cache_ttl=float(args.cache_ttl),
        read_only=bool(args.read_only),
    )
