"""The argparse side of a running share that is not an option of the share itself.

The options (network, share, WebDAV state, mount, logging) are generated from
:data:`davstore.options.OPTIONS`; what stays here is the storage selection of the
standalone ``davstore`` command (which Storage: ``ROOT``, ``--backend``, ``--storage``,
see :mod:`davstore.serving.selection`) and :func:`mount_options`, the parsed options as
the FUSE frontend takes them.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from davstore.options import parse_option

if TYPE_CHECKING:
    from davstore.frontends.fuse.mount import MountOptions
    from davstore.frontends.webdav.limits import DavLimits

__all__ = ["SELECTION", "add_storage_arguments", "dav_limits", "mount_options"]

#: The options that make a share's :class:`~davstore.frontends.webdav.limits.DavLimits`.
_LIMITS = ("max_properties", "max_properties_per_request", "max_lock_timeout")

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


def dav_limits(args: argparse.Namespace, base: DavLimits | None = None) -> DavLimits:
    """The share's :class:`~davstore.frontends.webdav.limits.DavLimits`: the values given
    in ``args`` (``--propfind-depth-infinity``, ``--max-properties``, ...; None: not given)
    over ``base`` (the ``DAVSTORE`` setting's, for the management command) over the
    defaults."""
    from davstore.frontends.webdav.limits import DavLimits

    limits = base or DavLimits()
    changes: dict[str, Any] = {}
    depth = getattr(args, "propfind_depth_infinity", None)
    if depth is not None:
        changes["depth_infinity"] = depth == "stream"
    for name in _LIMITS:
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(limits, **changes) if changes else limits
