"""The argparse side of a running share that is not an option of the share itself.

The options (network, share, WebDAV state, mount, logging) are generated from
:data:`davstore.options.OPTIONS`; what stays here is the storage selection of the
standalone ``davstore`` command (which Storage: ``ROOT``, ``--backend``, ``--storage``,
see :mod:`davstore.serving.selection`) and :func:`mount_options`, the parsed options as
the FUSE frontend takes them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from davstore.options import parse_option

if TYPE_CHECKING:
    from davstore.frontends.fuse.mount import MountOptions

__all__ = ["SELECTION", "add_storage_arguments", "mount_options"]

#: The ``dest`` of the storage selection's arguments (not share options).
SELECTION = ("root", "backend", "options", "storage", "settings")


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the storage selection: ``ROOT``, ``--backend``, ``--option``, ``--storage``,
    ``--settings``."""
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
