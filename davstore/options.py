"""THE definition of a share's options: each one declared once, read by every door.

An :class:`Option` says everything about one setting: its name (the argparse ``dest`` and
the :class:`~davstore.conf.ShareConfig` field), its CLI flag, its ``DAVSTORE`` key and where
that key may stand (per share, at the top level, or both: a top-level value is every
share's default), its default, its help, how a command-line value is parsed and how a
``DAVSTORE`` value is checked. From :data:`OPTIONS` are generated:

- the argparse groups of ``davstore serve|mount|umount`` and of ``manage.py davstore
  serve|mount`` (:func:`add_arguments`);
- the keys ``DAVSTORE`` accepts and the checks of their values (:mod:`davstore.conf`);
- the options table of the docs (:func:`markdown_table`).

The two doors differ in one way only: where ``manage.py davstore`` is not given an option
that has a ``DAVSTORE`` key, the share's ``DAVSTORE`` value applies (its parser's default is
``None``, "not given"; :func:`given_or_configured`). An option only one door has says why
in :attr:`Option.only`. A new option is one more entry here, and its effect on what is
served is proved through both doors by ``tests/test_options.py``.

This module imports nothing of davstore and nothing of Django: the settings check and the
command lines both read it.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_METRICS_HOST",
    "OPTIONS",
    "Command",
    "Door",
    "Option",
    "Scope",
    "add_arguments",
    "check_rules",
    "check_seconds",
    "check_state_url",
    "given_or_configured",
    "keys",
    "markdown_table",
    "option",
    "options_page",
    "parse_option",
    "parse_size",
    "parse_user",
]

#: Seconds requests in progress get to finish on SIGTERM (Kubernetes waits 30 s by default).
DEFAULT_GRACE_PERIOD = 25.0
#: Where ``--metrics-port`` listens unless ``--metrics-host`` says otherwise.
DEFAULT_METRICS_HOST = "127.0.0.1"

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PERMISSION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[^\s.][^\s]*\Z")
_STATE_SCHEMES = ("memory", "sqlite", "shelve")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
#: The access rules without arguments.
KEYWORD_RULES = frozenset({"staff", "authenticated"})


class Command(enum.Flag):
    """The subcommands an option belongs to."""

    SERVE = enum.auto()
    MOUNT = enum.auto()
    UMOUNT = enum.auto()
    #: ``davstore trash list|restore|purge`` (each action has the option).
    TRASH = enum.auto()
    #: ``davstore activity`` (where the log is: the state folder, or Redis).
    ACTIVITY = enum.auto()
    NONE = 0


class Door(enum.Flag):
    """Which command lines have the option: ``davstore`` and/or ``manage.py davstore``."""

    CLI = enum.auto()
    MANAGE = enum.auto()
    BOTH = CLI | MANAGE
    NONE = 0


class Scope(enum.Flag):
    """Where the option's ``DAVSTORE`` key may stand."""

    SHARE = enum.auto()  #: in ``SHARES[name]``
    TOP = enum.auto()  #: at the top level (every share's default when also SHARE)
    NONE = 0


# -- command-line parsers (argparse ``type=``) -------------------------------------------


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


def _id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a numeric id: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# -- DAVSTORE value checks (``ValueError`` with the message; conf.py names the key) -------


def check_seconds(value: object) -> float:
    """A number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _check_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, not {value!r}")
    return value


def _check_bytes(value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"must be a whole number of bytes >= 1 or None, not {value!r}")
    return value


def _check_days(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"must be a number of days > 0, not {value!r}")
    return float(value)


def _check_whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number >= 1, not {value!r}")
    return value


def _check_port(value: object) -> int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535
    ):
        raise ValueError(f"must be a port number or None, not {value!r}")
    return value


def _check_host(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a host name or address, not {value!r}")
    return value


def _check_path(value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError(f"must be a folder path, not {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ValueError(f"must be an absolute path, not {str(value)!r}")
    return path


def check_state_url(value: object) -> str | None:
    """A lock or property storage URL in ``DAVSTORE``: ``memory:``, ``sqlite:///FILE``,
    ``shelve:///FILE`` or ``redis://...`` (None stays None: the SQLite default in the
    state folder). The command line's URLs are checked when the state is opened."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string, not {value!r}")
    scheme, sep, rest = value.partition(":")
    if sep and scheme in _REDIS_SCHEMES:
        return value  # shared by replicas: see davstore.frontends.webdav.state.redis_state
    if not sep or scheme not in _STATE_SCHEMES:
        raise ValueError(
            f"unknown state URL {value!r} (use memory:, sqlite:///FILE or shelve:///FILE)"
        )
    if scheme != "memory" and not rest.startswith("///"):
        raise ValueError(f"{value!r} must name an absolute file: {scheme}:///path/to/file")
    return value


def _check_choice(*choices: str, either: bool = False) -> Callable[[object], str]:
    named = " or ".join(map(repr, choices)) if either else None

    def check(value: object) -> str:
        if value not in choices:
            if named is not None:
                raise ValueError(f"must be {named}, not {value!r}")
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return str(value)

    return check


def check_rules(value: object) -> tuple[str, ...]:
    """Access rules: ``"app_label.codename"``, ``"group:NAME"``, ``"staff"``,
    ``"authenticated"``. The message of the ``ValueError`` starts with ``[index]`` when one
    rule is wrong."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of rules, not {value!r}")
    rules = []
    for index, rule in enumerate(value):
        if not isinstance(rule, str):
            raise ValueError(f"[{index}]: must be a string, not {rule!r}")
        if rule.startswith("group:"):
            if not rule[len("group:") :].strip():
                raise ValueError(f"[{index}]: {rule!r} names no group")
        elif rule not in KEYWORD_RULES and not _PERMISSION.match(rule):
            raise ValueError(
                f"[{index}]: unknown rule {rule!r} (use 'app_label.codename', 'group:NAME', "
                "'staff' or 'authenticated')"
            )
        rules.append(rule)
    return tuple(rules)


def _check_realm(value: object) -> str:
    if not isinstance(value, str) or not value or '"' in value or not value.isprintable():
        raise ValueError(f"must be a non-empty printable string without quotes: {value!r}")
    return value


# -- the definition -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a share (see the module docstring).

    :param name: the argparse ``dest``, the :class:`~davstore.conf.ShareConfig` (or
        ``DavstoreConfig``) field.
    :param flags: the command-line flags (none: a ``DAVSTORE`` key only).
    :param key: the ``DAVSTORE`` key (none: a command-line option only).
    :param parse: argparse's ``type`` for the flag's value.
    :param check: turns a ``DAVSTORE`` value into the option's value, or raises
        ``ValueError`` with the message.
    :param action: argparse's action; ``"boolean"`` is ``--flag/--no-flag``
        (``argparse.BooleanOptionalAction``).
    :param only: why the option is on one door only (required then).
    """

    name: str
    help: str
    group: str
    flags: tuple[str, ...] = ()
    key: str | None = None
    scope: Scope = Scope.NONE
    commands: Command = Command.NONE
    doors: Door = Door.BOTH
    default: Any = None
    parse: Callable[[str], Any] | None = None
    check: Callable[[Any], Any] | None = None
    action: str = "store"
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    hidden: bool = False
    exclusive: str | None = None
    only: str | None = None

    @property
    def option_strings(self) -> tuple[str, ...]:
        """Every flag the parser accepts: :attr:`flags`, and for ``action="boolean"``
        (``argparse.BooleanOptionalAction``) each long flag's ``--no-`` form too."""
        if self.action != "boolean":
            return self.flags
        strings: list[str] = []
        for flag in self.flags:
            strings.append(flag)
            if flag.startswith("--"):
                strings.append("--no-" + flag[2:])
        return tuple(strings)

    @property
    def flag(self) -> str | None:
        """The long flag (``--cache-ttl``)."""
        return next((flag for flag in self.flags if flag.startswith("--")), None)

    def configured(self) -> bool:
        """Whether ``DAVSTORE`` may set it for a share (and ``manage.py`` falls back to it)."""
        return self.key is not None and Scope.SHARE in self.scope


_SHARE_AND_TOP = Scope.SHARE | Scope.TOP
_SERVE_AND_MOUNT = Command.SERVE | Command.MOUNT
_ALL_COMMANDS = Command.SERVE | Command.MOUNT | Command.UMOUNT
_TRASH_COMMANDS = Command.SERVE | Command.MOUNT | Command.TRASH

#: Every option, in the order ``--help`` shows them.
OPTIONS: tuple[Option, ...] = (
    # -- share ------------------------------------------------------------------------------
    Option(
        "read_only",
        "refuse every change",
        "share",
        flags=("--read-only",),
        key="READ_ONLY",
        scope=Scope.SHARE,
        commands=_SERVE_AND_MOUNT,
        default=False,
        action="store_true",
        check=_check_bool,
    ),
    Option(
        "cache_ttl",
        "how long file and folder metadata is kept at most (default: 3600; changes made "
        "through davstore and the site's own writes reach every process at once through "
        "the share's change journal; 0 turns the cache off)",
        "share",
        flags=("--cache-ttl",),
        key="CACHE_TTL",
        scope=_SHARE_AND_TOP,
        commands=_SERVE_AND_MOUNT,
        default=3600.0,
        parse=_non_negative_number,
        check=check_seconds,
        metavar="SECONDS",
    ),
    Option(
        "revalidate",
        "seconds between two checks of the cached metadata against the store, for changes "
        "made behind davstore's back, by programs that write the store directly (default: "
        "60; 0: never)",
        "share",
        flags=("--revalidate",),
        key="REVALIDATE",
        scope=_SHARE_AND_TOP,
        commands=_SERVE_AND_MOUNT,
        default=60.0,
        parse=_non_negative_number,
        check=check_seconds,
        metavar="SECONDS",
    ),
    # -- network ----------------------------------------------------------------------------
    Option(
        "host",
        "address to listen on (default: 127.0.0.1)",
        "network",
        flags=("--host",),
        commands=Command.SERVE,
        default="127.0.0.1",
    ),
    Option(
        "port",
        "port to listen on (default: 8080)",
        "network",
        flags=("--port",),
        commands=Command.SERVE,
        default=8080,
        parse=_port,
    ),
    Option(
        "threads",
        "requests handled at once, each on its own thread (default: 64)",
        "network",
        flags=("--threads",),
        commands=Command.SERVE,
        default=64,
        parse=_positive_int,
    ),
    Option(
        "timeout",
        "seconds a kept-alive connection may stay silent before its next request (default: 300)",
        "network",
        flags=("--timeout",),
        commands=Command.SERVE,
        default=300,
        parse=_positive_int,
        metavar="SECONDS",
    ),
    Option(
        "header_timeout",
        "seconds a connection may take to send a whole request head, however it trickles "
        "in: beyond, 408 and closed (default: 20)",
        "network",
        flags=("--header-timeout",),
        commands=Command.SERVE,
        default=20.0,
        parse=_positive_number,
        metavar="SECONDS",
    ),
    Option(
        "max_connections_per_client",
        "connections one client address may hold open at once, per server process: beyond, "
        "a new one is refused with 503 (default: 256)",
        "network",
        flags=("--max-connections-per-client",),
        commands=Command.SERVE,
        default=256,
        parse=_positive_int,
        metavar="N",
    ),
    Option(
        "threads_per_client",
        "threads the requests of one client address may hold at once; its other requests "
        "wait (default: half of --threads; behind a reverse proxy every client has the "
        "proxy's address: raise it to --threads)",
        "network",
        flags=("--threads-per-client",),
        commands=Command.SERVE,
        parse=_positive_int,
        metavar="N",
    ),
    Option(
        "busy_poll",
        "how long the server keeps polling for the next request after an answer before it "
        "sleeps, as Go's scheduler does: lower latency for a client that asks again at once, "
        "for at most that much CPU per burst of requests; 0 turns it off (default: 300; 0 "
        "with less than two CPUs, a container's CPU limit included)",
        "network",
        flags=("--busy-poll",),
        commands=Command.SERVE,
        parse=_non_negative_number,
        metavar="MICROSECONDS",
    ),
    Option(
        "tls_cert",
        "serve HTTPS with this certificate",
        "network",
        flags=("--tls-cert",),
        commands=Command.SERVE,
        metavar="FILE",
    ),
    Option(
        "tls_key",
        "the private key for --tls-cert",
        "network",
        flags=("--tls-key",),
        commands=Command.SERVE,
        metavar="FILE",
    ),
    Option(
        "metrics_port",
        "serve /.davstore/metrics and /.davstore/health (with the details of a failure) on "
        "this port of their own, without credentials; the share's port then has no metrics "
        "(default: the metrics on the share's port, for its users only)",
        "network",
        flags=("--metrics-port",),
        key="METRICS_PORT",
        scope=Scope.TOP,
        commands=Command.SERVE,
        parse=_port,
        check=_check_port,
        metavar="PORT",
    ),
    Option(
        "metrics_host",
        f"the address of --metrics-port (default: {DEFAULT_METRICS_HOST}: this host only)",
        "network",
        flags=("--metrics-host",),
        key="METRICS_HOST",
        scope=Scope.TOP,
        commands=Command.SERVE,
        default=DEFAULT_METRICS_HOST,
        check=_check_host,
        metavar="HOST",
    ),
    Option(
        "grace_period",
        "on SIGTERM/SIGINT, how long requests in progress (uploads) may take to finish "
        f"(default: {DEFAULT_GRACE_PERIOD:g})",
        "network",
        flags=("--grace-period",),
        commands=Command.SERVE,
        default=DEFAULT_GRACE_PERIOD,
        parse=_non_negative_number,
        metavar="SECONDS",
    ),
    Option(
        "workers",
        "server processes sharing the port, each with --threads threads: more than one uses "
        "more than one core for Python (default: 1)",
        "network",
        flags=("--workers",),
        commands=Command.SERVE,
        default=1,
        parse=_positive_int,
    ),
    Option(
        "worker_socket",
        "the listening socket a worker of --workers is started with",
        "network",
        flags=("--worker-socket",),
        commands=Command.SERVE,
        parse=int,
        hidden=True,
    ),
    Option(
        "worker_metrics_socket",
        "the metrics port's listening socket a worker of --workers is started with",
        "network",
        flags=("--worker-metrics-socket",),
        commands=Command.SERVE,
        parse=int,
        hidden=True,
    ),
    # -- authentication ------------------------------------------------------------------------
    Option(
        "users",
        "allow this user (repeatable); default: user 'davstore' with a generated password",
        "authentication",
        flags=("--user",),
        commands=Command.SERVE,
        doors=Door.CLI,
        default=[],
        parse=parse_user,
        action="append",
        metavar="NAME:PASSWORD",
        exclusive="who",
        only="manage.py davstore serve lets the project's Django users in (READ, WRITE)",
    ),
    Option(
        "anonymous",
        "no authentication: anyone may connect",
        "authentication",
        flags=("--anonymous",),
        commands=Command.SERVE,
        doors=Door.CLI,
        default=False,
        action="store_true",
        exclusive="who",
        only="manage.py davstore serve lets the project's Django users in (READ, WRITE)",
    ),
    Option(
        "read",
        "who may read (access rules)",
        "authentication",
        key="READ",
        scope=Scope.SHARE,
        default=(),
        check=check_rules,
    ),
    Option(
        "write",
        "who may read and write (access rules)",
        "authentication",
        key="WRITE",
        scope=Scope.SHARE,
        default=("staff",),
        check=check_rules,
    ),
    Option(
        "auth_cache_ttl",
        "seconds verified credentials are reused",
        "authentication",
        key="AUTH_CACHE_TTL",
        scope=Scope.TOP,
        default=60.0,
        check=check_seconds,
    ),
    Option(
        "realm",
        "the HTTP Basic realm",
        "authentication",
        key="REALM",
        scope=Scope.TOP,
        default="davstore",
        check=_check_realm,
    ),
    # -- WebDAV ---------------------------------------------------------------------------------
    Option(
        "lock_storage",
        "where locks live: memory:, sqlite:///FILE, shelve:///FILE or redis://HOST:PORT/DB "
        "(shared by replicas) (default: a SQLite file in the state directory)",
        "WebDAV",
        flags=("--lock-storage",),
        key="LOCK_STORAGE",
        scope=_SHARE_AND_TOP,
        commands=Command.SERVE | Command.ACTIVITY,
        check=check_state_url,
        metavar="URL",
    ),
    Option(
        "property_storage",
        "where dead properties live, same forms (default: a SQLite file in the state directory)",
        "WebDAV",
        flags=("--property-storage",),
        key="PROPERTY_STORAGE",
        scope=_SHARE_AND_TOP,
        commands=Command.SERVE | Command.ACTIVITY,
        check=check_state_url,
        metavar="URL",
    ),
    Option(
        "state_dir",
        "folder for this share's state (default: $XDG_STATE_HOME/davstore/<share>; "
        "manage.py: one sub-folder per share)",
        "WebDAV",
        flags=("--state-dir",),
        key="STATE_DIR",
        scope=Scope.TOP,
        commands=Command.SERVE | Command.ACTIVITY,
        check=_check_path,
        metavar="DIR",
    ),
    Option(
        "mac_metadata",
        "macOS ._* and .DS_Store files: 'hide' keeps them beside the store (in the state "
        "folder), out of it and of listings; 'store' stores them as ordinary files "
        "(default: hide)",
        "WebDAV",
        flags=("--mac-metadata",),
        key="MAC_METADATA",
        scope=_SHARE_AND_TOP,
        commands=Command.SERVE,
        default="hide",
        choices=("hide", "store"),
        check=_check_choice("hide", "store"),
    ),
    Option(
        "max_upload_size",
        "refuse bigger files: an upload with 413, a mount's write or truncate with EFBIG "
        "(accepts 10M, 2G, ...; default: the store's own limit, e.g. 5 TiB on S3)",
        "share",
        flags=("--max-upload-size",),
        key="MAX_UPLOAD_SIZE",
        scope=Scope.SHARE,
        commands=_SERVE_AND_MOUNT,
        parse=parse_size,
        check=_check_bytes,
        metavar="BYTES",
    ),
    Option(
        "propfind_depth_infinity",
        "PROPFIND Depth: infinity on a folder: 'refuse' answers 403 propfind-finite-depth, "
        "as Apache does; 'stream' answers the whole tree, streamed (default: refuse)",
        "WebDAV",
        flags=("--propfind-depth-infinity",),
        key="PROPFIND_DEPTH_INFINITY",
        scope=Scope.SHARE,
        commands=Command.SERVE,
        default="refuse",
        choices=("refuse", "stream"),
        check=_check_choice("refuse", "stream", either=True),
    ),
    Option(
        "max_properties",
        "dead properties one file or folder may hold; more is 507 (default: 1000)",
        "WebDAV",
        flags=("--max-properties",),
        key="MAX_PROPERTIES",
        scope=Scope.SHARE,
        commands=Command.SERVE,
        default=1000,
        parse=_positive_int,
        check=_check_whole,
        metavar="N",
    ),
    Option(
        "max_properties_per_request",
        "properties one PROPPATCH may change; more is 413 (default: 100)",
        "WebDAV",
        flags=("--max-properties-per-request",),
        key="MAX_PROPERTIES_PER_REQUEST",
        scope=Scope.SHARE,
        commands=Command.SERVE,
        default=100,
        parse=_positive_int,
        check=_check_whole,
        metavar="N",
    ),
    Option(
        "max_lock_timeout",
        "the longest a lock lives, in seconds; Infinite and longer timeouts get this "
        "(default: 86400, one day)",
        "WebDAV",
        flags=("--max-lock-timeout",),
        key="MAX_LOCK_TIMEOUT",
        scope=Scope.SHARE,
        commands=Command.SERVE,
        default=86400,
        parse=_positive_int,
        check=_check_whole,
        metavar="SECONDS",
    ),
    # -- site guard (davstore.site.guard; DAVSTORE only: a project's models decide) ----------
    Option(
        "on_delete_referenced",
        "a person's delete of a file some model row names (or of a folder holding one): "
        "'refuse' (403 / EACCES naming the rows) or 'allow'",
        "site guard",
        key="ON_DELETE_REFERENCED",
        scope=Scope.SHARE,
        default="refuse",
        check=_check_choice("refuse", "allow"),
    ),
    Option(
        "on_move_referenced",
        "a person's move of such a file or folder: 'rewrite' the rows in one transaction "
        "with the move, 'refuse' it, or 'allow' it and leave the rows",
        "site guard",
        key="ON_MOVE_REFERENCED",
        scope=Scope.SHARE,
        default="rewrite",
        check=_check_choice("rewrite", "refuse", "allow"),
    ),
    Option(
        "on_replace_referenced",
        "new content at a name an ImageField row names: 'validate' (must be an image "
        "Pillow opens, else 415 / EINVAL; the row's width and height follow) or 'allow'; "
        "either way file_replaced is sent",
        "site guard",
        key="ON_REPLACE_REFERENCED",
        scope=Scope.SHARE,
        default="validate",
        check=_check_choice("validate", "allow"),
    ),
    # -- trash (davstore.vfs.trash) ------------------------------------------------------
    Option(
        "trash",
        "a person's delete or overwrite is kept in the share's hidden trash (--no-trash: "
        "final) (default: on)",
        "trash",
        flags=("--trash",),
        key="TRASH",
        scope=Scope.SHARE,
        commands=_TRASH_COMMANDS,
        default=True,
        action="boolean",
        check=_check_bool,
    ),
    Option(
        "trash_days",
        "days the trash keeps an entry (default: 30)",
        "trash",
        flags=("--trash-days",),
        key="TRASH_DAYS",
        scope=Scope.SHARE,
        commands=_TRASH_COMMANDS,
        default=30.0,
        parse=_positive_number,
        check=_check_days,
        metavar="DAYS",
    ),
    Option(
        "trash_versions",
        "entries the trash keeps per path (deleted or replaced), the newest (default: 5)",
        "trash",
        flags=("--trash-versions",),
        key="TRASH_VERSIONS",
        scope=Scope.SHARE,
        commands=_TRASH_COMMANDS,
        default=5,
        parse=_positive_int,
        check=_check_whole,
        metavar="N",
    ),
    Option(
        "trash_max_size",
        "bytes the trash may hold; past it the oldest entries go (accepts 10G, ...; "
        "default: no cap)",
        "trash",
        flags=("--trash-max-size",),
        key="TRASH_MAX_SIZE",
        scope=Scope.SHARE,
        commands=_TRASH_COMMANDS,
        parse=parse_size,
        check=_check_bytes,
        metavar="BYTES",
    ),
    # -- mount ----------------------------------------------------------------------------------
    Option(
        "foreground",
        "stay in the foreground until unmounted (default: return once mounted)",
        "mount",
        flags=("--foreground", "-f"),
        commands=Command.MOUNT,
        default=False,
        action="store_true",
    ),
    Option(
        "allow_other",
        "let other users in, read-only for them (needs root or user_allow_other)",
        "mount",
        flags=("--allow-other",),
        commands=Command.MOUNT,
        default=False,
        action="store_true",
    ),
    Option(
        "uid",
        "owner shown for every file (default: you)",
        "mount",
        flags=("--uid",),
        commands=Command.MOUNT,
        parse=_id,
    ),
    Option(
        "gid",
        "group shown for every file (default: yours)",
        "mount",
        flags=("--gid",),
        commands=Command.MOUNT,
        parse=_id,
    ),
    Option(
        "lazy",
        "detach now even if busy; finish when idle",
        "mount",
        flags=("--lazy", "-z"),
        commands=Command.UMOUNT,
        doors=Door.CLI,
        default=False,
        action="store_true",
        only="a mount of manage.py davstore mount is unmounted with davstore umount",
    ),
    # -- logging --------------------------------------------------------------------------------
    Option(
        "verbose",
        "log more (-v: debug for davstore, -vv: debug for everything)",
        "logging",
        flags=("-v", "--verbose"),
        commands=_ALL_COMMANDS,
        default=0,
        action="count",
    ),
    Option(
        "log_level",
        "the log level (default: INFO)",
        "logging",
        flags=("--log-level",),
        commands=_ALL_COMMANDS,
        parse=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    ),
)


def option(name: str) -> Option:
    """The option called ``name``; ``KeyError`` when there is none."""
    for candidate in OPTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def keys(scope: Scope) -> frozenset[str]:
    """The ``DAVSTORE`` keys options may have in ``scope`` (``SHARE`` or ``TOP``)."""
    return frozenset(o.key for o in OPTIONS if o.key is not None and scope in o.scope)


def add_arguments(parser: argparse.ArgumentParser, command: Command, door: Door) -> None:
    """Add the option groups of ``command`` on ``door`` to ``parser``.

    On ``Door.MANAGE`` an option ``DAVSTORE`` may set defaults to ``None`` ("not given":
    :func:`given_or_configured` then reads the share's ``DAVSTORE`` entry, or the top level
    for an option only the top level has)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for item in OPTIONS:
        if not item.flags or command not in item.commands or door not in item.doors:
            continue
        if item.hidden:
            target: Any = parser
        else:
            target = groups.get(item.group) or groups.setdefault(
                item.group, parser.add_argument_group(item.group)
            )
            if item.exclusive is not None:
                target = exclusive.get(item.exclusive) or exclusive.setdefault(
                    item.exclusive, target.add_mutually_exclusive_group()
                )
        default = item.default
        if door is Door.MANAGE and item.key is not None and item.action in ("store", "boolean"):
            default = None
        kwargs: dict[str, Any] = {
            "dest": item.name,
            "help": argparse.SUPPRESS if item.hidden else item.help,
            "action": argparse.BooleanOptionalAction if item.action == "boolean" else item.action,
            "default": list(default) if isinstance(default, list) else default,
        }
        if item.action in ("store", "append"):
            if item.parse is not None:
                kwargs["type"] = item.parse
            if item.metavar is not None:
                kwargs["metavar"] = item.metavar
            if item.choices is not None:
                kwargs["choices"] = list(item.choices)
        target.add_argument(*item.flags, **kwargs)


def given_or_configured(
    args: argparse.Namespace, configured: object, scope: Scope = Scope.SHARE
) -> dict[str, Any]:
    """For ``manage.py davstore``: every option ``DAVSTORE`` may set in ``scope``, with the
    value given on the command line, else the setting's (``configured``: a
    :class:`~davstore.conf.ShareConfig` for ``Scope.SHARE``, the
    :class:`~davstore.conf.DavstoreConfig` for ``Scope.TOP``, which then gives the options
    only the top level has). A flag (``--read-only``) can only add to the setting."""
    values: dict[str, Any] = {}
    for item in OPTIONS:
        wanted = Scope.SHARE in item.scope if scope is Scope.SHARE else item.scope == Scope.TOP
        if item.key is None or not wanted or not hasattr(args, item.name):
            continue
        given = getattr(args, item.name)
        setting = getattr(configured, item.name)
        if item.action == "store_true":
            values[item.name] = bool(given) or bool(setting)
        else:
            values[item.name] = setting if given is None else given
    return values


#: The heading of docs/OPTIONS.md, which is :func:`options_page` (a test keeps it so).
_PAGE_HEAD = """# Share options

Generated from `davstore/options.py` (`python -c "from davstore.options import options_page;
print(options_page(), end='')" > docs/OPTIONS.md`); `tests/test_options.py` fails when this
page and the definition differ. Every option of `davstore serve|mount|umount` and of
`manage.py davstore serve|mount`, with its `DAVSTORE` key where it has one (`share`: in a
share's entry; `top`: at the top level, every share's default when it may stand in both).
The README's tables say more about each.

"""


def options_page() -> str:
    """docs/OPTIONS.md: the heading and :func:`markdown_table`."""
    return _PAGE_HEAD + markdown_table()


def markdown_table(options: Iterable[Option] = OPTIONS) -> str:
    """The options as a Markdown table (flag, ``DAVSTORE`` key, commands, default, help)."""
    rows = [
        "| flag | `DAVSTORE` key | commands | doors | default | what |",
        "|---|---|---|---|---|---|",
    ]
    for item in options:
        if item.hidden:
            continue
        where = {Scope.SHARE: "share", Scope.TOP: "top", _SHARE_AND_TOP: "share, top"}
        key = f"`{item.key}` ({where[item.scope]})" if item.key else ""
        commands = ", ".join((c.name or "").lower() for c in Command if c and c in item.commands)
        doors = {Door.BOTH: "both", Door.CLI: "davstore", Door.MANAGE: "manage.py"}[item.doors]
        flag = ", ".join(f"`{f}`" for f in item.option_strings)
        default = "" if item.default in (None, [], ()) else f"`{item.default!r}`"
        rows.append(f"| {flag} | {key} | {commands} | {doors} | {default} | {item.help} |")
    return "\n".join(rows) + "\n"
