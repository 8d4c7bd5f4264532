"""``davstore mount`` and ``davstore umount``: arguments and runners for the CLI.

``davstore mount MOUNTPOINT [ROOT | --backend ... | --storage ...] [--read-only]
[--foreground] [--allow-other] [--uid N] [--gid N] [--cache-ttl SECONDS]
[--max-upload-size BYTES]`` takes the same
storage selection as ``serve``. The selection is checked before the mount process starts;
the Storage and its VFS are built in the process that serves the mount.
"""

from __future__ import annotations

import argparse

from davstore.options import Command, Door, add_arguments
from davstore.serving.arguments import add_storage_arguments, mount_options
from davstore.serving.logs import configure_logging
from davstore.serving.selection import open_share, selection_from_args
from davstore.serving.state_dir import prepare_state_dir
from davstore.vfs import VFS
from davstore.vfs.host_peers import share_with_host_peers

__all__ = ["add_mount_arguments", "add_umount_arguments", "mount_vfs", "run_mount", "run_umount"]


def add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``MOUNTPOINT``, the storage selection and the options of ``mount``."""
    parser.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty folder")
    add_storage_arguments(parser)
    add_arguments(parser, Command.MOUNT, Door.CLI)


def run_mount(args: argparse.Namespace) -> int:
    """Mount the selected storage; 0 once mounted (or, in the foreground, unmounted)."""
    from davstore.frontends.fuse.mount import mount

    configure_logging(args)
    selection_from_args(args)  # bad input fails here, before anything is started
    return mount(lambda: mount_vfs(args), args.mountpoint, mount_options(args))


def mount_vfs(args: argparse.Namespace) -> VFS:
    """The selected share's VFS (``--max-upload-size`` its largest file), joined to the
    other processes of this host serving it (a ``davstore serve`` of the same store uses
    the same state folder). Built in the process that serves the mount."""
    from davstore.serving.trash_command import install_trash
    from davstore.vfs.activity import attach

    share = open_share(args, max_file_size=getattr(args, "max_upload_size", None))
    state_dir = prepare_state_dir(None, share.identity)
    share_with_host_peers(share.vfs, state_dir)
    install_trash(share.vfs, args).start_purging(state_dir=state_dir)
    attach(share.vfs, state_dir)
    return share.vfs


def add_umount_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``MOUNTPOINT`` and the options of ``umount``."""
    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    add_arguments(parser, Command.UMOUNT, Door.CLI)


def run_umount(args: argparse.Namespace) -> int:
    """Unmount a davstore (or any FUSE) mount."""
    from davstore.frontends.fuse.mount import umount

    configure_logging(args)
    return umount(args.mountpoint, lazy=bool(args.lazy))
