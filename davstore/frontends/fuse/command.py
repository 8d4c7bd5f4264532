"""``davstore mount`` and ``davstore umount``: arguments and runners for the CLI.

``davstore mount MOUNTPOINT [ROOT | --backend ... | --storage ...] [--read-only]
[--foreground] [--allow-other] [--uid N] [--gid N] [--cache-ttl SECONDS]`` takes the same
storage selection as ``serve``. The selection is checked before the mount process starts;
the Storage and its VFS are built in the process that serves the mount.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from davstore.frontends.fuse.mount import MountOptions
    from davstore.vfs import VFS

__all__ = [
    "add_mount_arguments",
    "add_mount_options",
    "add_umount_arguments",
    "mount_options",
    "run_mount",
    "run_umount",
]


def _id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a numeric id: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _size(text: str) -> int:
    from davstore.cli import parse_size

    return parse_size(text)


def add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    from davstore.cli import add_logging_arguments
    from davstore.selection import add_storage_arguments

    parser.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty folder")
    add_storage_arguments(parser)
    add_mount_options(parser)
    add_logging_arguments(parser)


def add_mount_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--foreground``, ``--allow-other``, ``--uid``, ``--gid`` and
    ``--max-upload-size``."""
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
    group.add_argument(
        "--max-upload-size",
        type=_size,
        metavar="BYTES",
        help="refuse files bigger than this with EFBIG, writes and truncates alike (accepts "
        "10M, 2G, ...; default: the store's own limit, e.g. 5 TiB on S3)",
    )
    from davstore.trash_command import add_trash_arguments

    add_trash_arguments(parser)


def run_mount(args: argparse.Namespace) -> int:
    """Mount the selected storage; 0 once mounted (or, in the foreground, unmounted)."""
    from davstore.cli import configure_logging
    from davstore.frontends.fuse.mount import mount
    from davstore.selection import open_share, selection_from_args

    configure_logging(args)
    selection_from_args(args)  # bad input fails here, before anything is started
    limit = getattr(args, "max_upload_size", None)

    def build() -> VFS:
        from davstore.cli import prepare_state_dir
        from davstore.trash_command import install_trash
        from davstore.vfs.activity import attach

        share = open_share(args, max_file_size=limit)
        install_trash(share.vfs, args).start_purging()
        attach(share.vfs, prepare_state_dir(None, share.identity))
        return share.vfs

    return mount(build, args.mountpoint, mount_options(args))


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


def add_umount_arguments(parser: argparse.ArgumentParser) -> None:
    from davstore.cli import add_logging_arguments

    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    parser.add_argument(
        "--lazy", "-z", action="store_true", help="detach now even if busy; finish when idle"
    )
    add_logging_arguments(parser)


def run_umount(args: argparse.Namespace) -> int:
    """Unmount a davstore (or any FUSE) mount."""
    from davstore.cli import configure_logging
    from davstore.frontends.fuse.mount import umount

    configure_logging(args)
    return umount(args.mountpoint, lazy=bool(args.lazy))
