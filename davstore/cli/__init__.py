"""The ``davstore`` command line.

Each subcommand is one :class:`Command`: a function that adds its arguments and a function
that runs it and returns the exit status. To add one, write the two functions and append a
``Command`` to :data:`COMMANDS`; share the storage selection with
:func:`davstore.serving.arguments.add_storage_arguments` and
:func:`davstore.serving.selection.open_share`, and logging with
:func:`davstore.serving.arguments.add_logging_arguments`. Nothing in the package imports
this one: the code that runs a share lives in :mod:`davstore.serving`, which the
management command uses too.

Exit status: 0 on success and on a clean stop by SIGINT/SIGTERM; 2 for bad input
(:class:`~davstore.serving.exits.UsageError`, argparse errors); 1 when the command could
not run (port in use, ...: :class:`~davstore.serving.exits.CommandError`). Errors are
printed as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from davstore.cli.mount import add_mount_arguments, add_umount_arguments, run_mount, run_umount
from davstore.cli.serve import add_serve_arguments, serve
from davstore.serving.exits import CommandError, UsageError
from davstore.serving.trash_command import (
    add_activity_arguments,
    add_trash_actions,
    run_activity,
    run_trash,
)

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` then ``run(args) -> exit status``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command("serve", "share a Django Storage over WebDAV", add_serve_arguments, serve),
    Command("mount", "mount a Django Storage as a folder (FUSE)", add_mount_arguments, run_mount),
    Command("umount", "unmount a davstore mount", add_umount_arguments, run_umount),
    Command("trash", "list, restore and purge a share's trash", add_trash_actions, run_trash),
    Command("activity", "who changed what in a share", add_activity_arguments, run_activity),
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
