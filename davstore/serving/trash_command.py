"""``davstore trash list|restore|purge`` and the trash flags of ``serve`` and ``mount``.

The trash itself is :mod:`davstore.vfs.trash`; this module is the command line around it,
shared by the standalone ``davstore`` command and ``manage.py davstore trash``:

- :func:`add_trash_arguments`: ``--trash/--no-trash``, ``--trash-days``,
  ``--trash-versions``, ``--trash-max-size`` of ``trash``, as :mod:`davstore.options`
  defines them (``serve`` and ``mount`` get the same entries from their option groups);
- :func:`install_trash`: the share's :class:`~davstore.vfs.trash.Trash` added to its VFS
  with the retention the flags (over a base, the ``DAVSTORE`` setting's) ask for;
- :data:`TRASH_COMMAND`: ``davstore trash ACTION`` with the storage selection of
  ``serve`` (``ROOT``, ``--backend/--option``, ``--storage/--settings``, ``--state-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING, Any, Protocol

from davstore.errors import DavstoreError
from davstore.options import Command, Door, add_arguments
from davstore.options import _positive_int as _whole
from davstore.vfs.trash import Retention, Trash, trash_of

if TYPE_CHECKING:
    from davstore.vfs import VFS

__all__ = [
    "add_activity_arguments",
    "add_trash_actions",
    "add_trash_arguments",
    "install_trash",
    "print_activity",
    "retention_from_args",
    "run_activity",
    "run_trash",
    "run_trash_action",
    "trash_of",
]


def add_trash_arguments(parser: argparse.ArgumentParser, door: Door = Door.MANAGE) -> None:
    """Add ``--trash/--no-trash``, ``--trash-days``, ``--trash-versions`` and
    ``--trash-max-size`` as :data:`davstore.options.OPTIONS` defines them for
    ``davstore trash`` on ``door`` (on ``Door.MANAGE`` unset: the ``DAVSTORE``
    setting's, else the defaults)."""
    add_arguments(parser, Command.TRASH, door)


def retention_from_args(args: argparse.Namespace, base: Retention | None = None) -> Retention:
    """The flags given in ``args`` over ``base`` over the defaults."""
    retention = base or Retention()
    changes: dict[str, Any] = {}
    for flag, field in (
        ("trash", "enabled"),
        ("trash_days", "days"),
        ("trash_versions", "versions"),
        ("trash_max_size", "max_size"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    return dataclasses.replace(retention, **changes) if changes else retention


def install_trash(vfs: VFS, args: argparse.Namespace, base: Retention | None = None) -> Trash:
    """Add the trash with the retention ``args`` ask for to ``vfs`` (unless turned off,
    or there already); returns it (also when off: listing and restoring still work)."""
    found = trash_of(vfs)
    if found is not None:
        found.retention = retention_from_args(args, found.retention)
        return found
    return Trash(vfs, retention_from_args(args, base)).install()


def add_trash_actions(parser: argparse.ArgumentParser, *, selection: bool = True) -> None:
    """``list [--json]``, ``restore ID [--to PATH]``, ``purge [--all]``; with
    ``selection``, each takes the storage selection of ``serve``."""
    from davstore.serving.arguments import add_storage_arguments

    actions = parser.add_subparsers(dest="trash_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="what the trash holds, oldest first")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    restore = actions.add_parser("restore", help="put an entry back")
    restore.add_argument("id", metavar="ID", help="the entry's id (see trash list)")
    restore.add_argument("--to", metavar="PATH", help="restore at PATH instead of its path")
    purge = actions.add_parser("purge", help="remove what retention says goes")
    purge.add_argument("--all", action="store_true", help="empty the whole trash")
    purge.add_argument(
        "--budget", type=float, metavar="SECONDS", help="stop after this long (default: none)"
    )
    for child in (listing, restore, purge):
        if selection:
            add_storage_arguments(child)
            child.set_defaults(read_only=False, cache_ttl=0.0)
            child.add_argument(
                "--state-dir",
                metavar="DIR",
                help="accepted as serve takes it; the trash lives in the store itself",
            )
        add_trash_arguments(child, Door.CLI if selection else Door.MANAGE)


class _Output(Protocol):
    def write(self, text: str, /) -> Any: ...


def run_trash_action(trash: Trash, args: argparse.Namespace, out: _Output) -> int:
    """Do ``args.trash_action`` on ``trash``, printing to ``out``; the exit status.
    Raises DavstoreError (the caller prints it as one line)."""
    action = args.trash_action
    if action == "list":
        entries = [e for e in trash.entries()]
        if args.json:
            out.write(json.dumps([e.public() for e in entries], indent=2) + "\n")
            return 0
        for e in entries:
            out.write(
                f"{e.id}  {e.public()['when']}  {e.kind:8}  {e.user or '-'}  "
                f"{e.origin or '-'}  {e.size:>12}  /{e.path}{'/' if e.is_dir else ''}"
                f"{'' if e.state == 'done' else '  (' + e.state + ')'}\n"
            )
        total = sum(e.size for e in entries)
        out.write(f"{len(entries)} entries, {total} bytes in the trash\n")
        return 0
    if action == "restore":
        entry = trash.restore(args.id, args.to)
        out.write(f"restored {entry.id} to /{entry.path}\n")
        return 0
    from davstore.serving.progress import terminal_progress

    with terminal_progress("trash purge", unit="entries", out=out) as progress:
        result = trash.purge(budget=args.budget, everything=args.all, progress=progress)
    out.write(
        f"purged {result.removed} entries ({result.freed} bytes); "
        f"{result.entries} entries, {result.size} bytes left"
        f"{'' if result.complete else ' (stopped before the end: run it again)'}\n"
    )
    return 0


def run_trash(args: argparse.Namespace) -> int:
    """``davstore trash ACTION``: the selected share's trash."""
    import sys

    from davstore.serving.exits import CommandError
    from davstore.serving.logs import configure_logging
    from davstore.serving.selection import open_share

    configure_logging(args)
    share = open_share(args)
    trash = Trash(share.vfs, retention_from_args(args))
    try:
        return run_trash_action(trash, args, sys.stdout)
    except DavstoreError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        share.vfs.close()


# -- davstore activity -----------------------------------------------------------------


def add_activity_arguments(parser: argparse.ArgumentParser, *, selection: bool = True) -> None:
    """``[--json] [--limit N]``; with ``selection``, the storage selection of ``serve``
    and where the log is: ``--state-dir``, and ``--lock-storage`` or ``--property-storage``
    where replicas share Redis (the stream of every host's records), as ``serve`` takes
    them."""
    parser.add_argument("--json", action="store_true", help="a JSON list of objects")
    parser.add_argument("--limit", type=_whole, metavar="N", help="the last N records only")
    if selection:
        from davstore.serving.arguments import add_storage_arguments

        add_storage_arguments(parser)
        parser.set_defaults(read_only=False, cache_ttl=0.0)
        add_arguments(parser, Command.ACTIVITY, Door.CLI)


def print_activity(records: list[dict[str, Any]], args: argparse.Namespace, out: _Output) -> None:
    """Print ``records`` as ``davstore activity`` does."""
    import datetime

    if args.json:
        for record in records:
            record["when"] = datetime.datetime.fromtimestamp(
                record["when"], datetime.UTC
            ).isoformat(timespec="seconds")
        out.write(json.dumps(records, indent=2) + "\n")
        return
    for r in records:
        when = datetime.datetime.fromtimestamp(r["when"], datetime.UTC)
        target = f" -> /{r['target']}" if r.get("target") else ""
        trash = f"  (trash {r['trash_id']})" if r.get("trash_id") else ""
        out.write(
            f"{when:%Y-%m-%d %H:%M:%S}  {r.get('user') or '-'}  {r.get('origin') or '-'}  "
            f"{r['action']}  /{r['path']}{target}{trash}\n"
        )


def run_activity(args: argparse.Namespace) -> int:
    """``davstore activity``: the selected share's activity log."""
    import sys

    from davstore.serving.logs import configure_logging
    from davstore.serving.selection import open_share
    from davstore.serving.state_dir import prepare_state_dir
    from davstore.vfs.activity import ActivityLog

    configure_logging(args)
    share = open_share(args)
    try:
        folder = prepare_state_dir(args.state_dir, share.identity)
    finally:
        share.vfs.close()
    from davstore.frontends.webdav.state import activity_stream

    stream = activity_stream(args.lock_storage or args.property_storage)
    print_activity(ActivityLog(folder, stream=stream).read(args.limit), args, sys.stdout)
    return 0
