"""``python manage.py davstore serve|mount``: the project's shares, with its users.

``serve`` serves every share of the ``DAVSTORE`` setting (or those named with ``--share``)
side by side (``/media/``, ``/static/``), authenticates Django users and has the health and
metrics endpoints and the access log of ``davstore serve``
(:mod:`davstore.serving.observability`); ``mount [SHARE] MOUNTPOINT`` mounts one share
with FUSE (the only one when none is named). The options are those of the standalone
``davstore`` command (network, WebDAV state, mount, logging), with the storage selection
replaced by share names; unset options take their values from ``DAVSTORE``. Both
commands' options are generated from :data:`davstore.options.OPTIONS`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from davstore.options import Command as Subcommand
from davstore.options import Door, Scope, add_arguments, given_or_configured
from davstore.serving.arguments import dav_limits, mount_options
from davstore.serving.exits import CommandError as ServingCommandError
from davstore.serving.exits import UsageError
from davstore.serving.listen import check_tls_arguments, listen, serve_metrics, server_url
from davstore.serving.logs import configure_logging
from davstore.serving.shutdown import exit_if_cut_off, run_until_signalled
from davstore.serving.state_dir import prepare_state_dir
from davstore.serving.trash_command import (
    add_activity_arguments,
    add_trash_actions,
    install_trash,
    print_activity,
    run_trash_action,
)
from davstore.serving.workers import check_shareable, run_workers, start_worker
from davstore.shares import Share, get_shares
from davstore.vfs.trash import Retention, trash_of

if TYPE_CHECKING:
    from davstore.conf import DavstoreConfig
    from davstore.frontends.fuse.mount import MountOptions
    from davstore.shares_app import ShareOptions, SharesApp
    from davstore.site.integrity import Report, Trashed
    from davstore.vfs import VFS

__all__ = ["Command"]

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the DAVSTORE shares over WebDAV (serve) or mount one with FUSE (mount)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        serve = actions.add_parser("serve", help="serve the shares over WebDAV")
        serve.add_argument(
            "--share",
            dest="shares",
            action="append",
            metavar="NAME",
            help="serve this share (repeatable; default: every share in DAVSTORE)",
        )
        add_arguments(serve, Subcommand.SERVE, Door.MANAGE)

        mount = actions.add_parser("mount", help="mount one share as a folder (FUSE)")
        mount.add_argument(
            "share",
            nargs="?",
            metavar="SHARE",
            help="a share of DAVSTORE (default: the only one)",
        )
        mount.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty folder")
        add_arguments(mount, Subcommand.MOUNT, Door.MANAGE)

        trash = actions.add_parser("trash", help="list, restore and purge a share's trash")
        trash.add_argument(
            "--share", metavar="NAME", help="a share of DAVSTORE (default: the first)"
        )
        add_trash_actions(trash, selection=False)

        activity = actions.add_parser("activity", help="who changed what in a share")
        activity.add_argument(
            "--share", metavar="NAME", help="a share of DAVSTORE (default: the first)"
        )
        add_activity_arguments(activity, selection=False)

        index = actions.add_parser("index", help="rebuild the site guard's reference index")
        index.add_argument("shares", nargs="*", metavar="SHARE", help="default: every share")

        check = actions.add_parser(
            "check", help="report orphans and missing files of the shares (the site guard)"
        )
        check.add_argument(
            "--share",
            dest="shares",
            action="append",
            metavar="NAME",
            help="check this share (repeatable; default: every share)",
        )
        check.add_argument(
            "--min-age",
            type=float,
            default=None,
            metavar="SECONDS",
            help="files younger than this are never orphans (default: one day)",
        )
        check.add_argument(
            "--limit",
            type=int,
            default=None,
            metavar="ENTRIES",
            help="list at most this many entries per share (default: 100000)",
        )
        check.add_argument("--json", action="store_true", help="one JSON document on stdout")
        check.add_argument(
            "--trash-orphans",
            action="store_true",
            help="move the orphans found into each share's trash (never deleted outright; "
            "a share without a trash keeps them)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        namespace = argparse.Namespace(**options)
        try:
            if namespace.action == "serve":
                self._serve(namespace)
            elif namespace.action == "index":
                self._index(namespace.shares)
            elif namespace.action == "check":
                self._check(namespace)
            elif namespace.action == "trash":
                self._trash(namespace)
            elif namespace.action == "activity":
                (share,) = self._shares([namespace.share] if namespace.share else None)[:1]
                log = share.activity_log()
                print_activity(log.read(namespace.limit), namespace, self.stdout)
            else:
                self._mount(namespace)
        except UsageError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc
        except ServingCommandError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc

    def _trash(self, args: argparse.Namespace) -> None:
        from davstore.errors import DavstoreError

        (share,) = self._shares([args.share] if args.share else None)[:1]
        trash = install_trash(share.vfs, args, share.retention)
        try:
            run_trash_action(trash, args, self.stdout)
        except DavstoreError as exc:
            raise CommandError(str(exc)) from exc

    def _index(self, names: list[str]) -> None:
        """Rebuild each share's reference index (a progress bar on a terminal)."""
        from davstore.serving.progress import terminal_progress
        from davstore.site.guard import index_for

        for share in self._shares(names):
            index = index_for(share)
            if index is None:
                self.stdout.write(f"{share.name}: no model field stores files in it")
                continue
            with terminal_progress(
                f"{share.name}: indexing", unit="rows", out=self.stdout
            ) as progress:
                count = index.rebuild(progress)
            self.stdout.write(f"{share.name}: {count} references in {len(index.fields)} fields")

    def _check(self, args: argparse.Namespace) -> None:
        """Orphans and missing files per share (a progress bar on a terminal); exit status
        1 when there are any (left: with ``--trash-orphans``, the orphans moved to the trash
        no longer count)."""
        import json

        from davstore.errors import DavstoreError
        from davstore.serving.progress import terminal_progress
        from davstore.site.guard import index_for
        from davstore.site.integrity import LIMIT, MIN_AGE, check, trash_orphans
        from davstore.vfs import acting_as

        min_age = MIN_AGE if args.min_age is None else args.min_age
        limit = LIMIT if args.limit is None else args.limit
        if min_age < 0 or limit < 1:
            raise UsageError("--min-age must be 0 or more and --limit 1 or more")
        shares = self._shares(args.shares)
        reports = []
        for share in shares:
            with terminal_progress(
                f"{share.name}: checking", unit="entries", out=self.stdout
            ) as progress:
                reports.append(
                    check(
                        share.name,
                        share.vfs,
                        index_for(share),
                        min_age=min_age,
                        limit=limit,
                        progress=progress,
                    )
                )
        trashed: list[Trashed | None] = [None] * len(reports)
        refused: list[str] = []
        if args.trash_orphans:
            for number, (share, report) in enumerate(zip(shares, reports, strict=True)):
                if not report.orphans:
                    continue
                try:
                    with acting_as(None, "check"):
                        trashed[number] = trash_orphans(share.vfs, report)
                except DavstoreError as exc:
                    refused.append(f"{share.name}: {exc.reason}")
        if args.json:
            documents = [
                {**r.as_dict(), **(t.as_dict() if t is not None else {})}
                for r, t in zip(reports, trashed, strict=True)
            ]
            self.stdout.write(json.dumps({"shares": documents}, indent=2))
        else:
            for report, done in zip(reports, trashed, strict=True):
                self._write_report(report, done)
        for line in refused:
            self.stderr.write(line)
        left = [
            bool(r.missing) or len(r.orphans) > (len(t.moved) if t is not None else 0)
            for r, t in zip(reports, trashed, strict=True)
        ]
        if any(left):
            raise CommandError("some shares hold orphans or missing files", returncode=1)

    def _write_report(self, report: Report, trashed: Trashed | None = None) -> None:
        if not report.guarded:
            self.stdout.write(f"{report.share}: no model field stores files in it")
            return
        partial = "" if report.complete else f" (only the first {report.scanned} entries)"
        self.stdout.write(
            f"{report.share}: {len(report.missing)} missing, {len(report.orphans)} orphans "
            f"older than {report.min_age:g} s{partial}"
        )
        for ref in report.missing:
            where = f" -> {ref.url}" if ref.url else ""
            self.stdout.write(f"  missing {ref.name}: named by {ref}{where}")
        for orphan in report.orphans:
            self.stdout.write(f"  orphan  {orphan.path} ({orphan.size} bytes)")
        if trashed is not None:
            for orphan in trashed.moved:
                self.stdout.write(f"  trashed {orphan.path}")
            for orphan, why in trashed.failed:
                self.stdout.write(f"  kept    {orphan.path}: {why}")
            self.stdout.write(
                f"{report.share}: {len(trashed.moved)} orphans moved to the trash "
                "(manage.py davstore trash list)"
            )

    def _shares(self, names: list[str] | None) -> list[Share]:
        registry = get_shares()
        for name in names or ():
            if name not in registry:
                known = ", ".join(registry)
                raise UsageError(f"no share named {name!r} in DAVSTORE (known: {known})")
        return [registry[name] for name in (names or registry)]

    def _serve(self, args: argparse.Namespace) -> None:
        from davstore.conf import get_config
        from davstore.frontends.webdav import make_server
        from davstore.serving.observability import instrument_shares

        configure_logging(args)
        check_tls_arguments(args)
        worker = start_worker(args)
        config = get_config()
        self.top_options(args, config)
        shares = self._shares(args.shares)
        items = self.share_options(args, shares)
        if args.workers > 1 and not worker:
            self._serve_workers(args, items)
            return
        try:
            app = self.shares_app(items, config)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        except OSError as exc:
            raise UsageError(f"cannot open the shares' state: {exc}") from exc
        observed = instrument_shares(
            app,
            {name: share.vfs for name, share in app.apps.items()},
            authorize=app.may_see_metrics,
            metrics_elsewhere=args.metrics_port is not None,
        )
        stop_metrics = None
        try:
            server = listen(make_server, observed, args)
            stop_metrics = serve_metrics(observed, args)
            url = server_url(server, args)
            if worker:
                from davstore.serving.workers import WORKER_INDEX_ENV

                logger.info("worker %s serving at %s", os.environ.get(WORKER_INDEX_ENV), url)
            else:
                self._banner(url, items)
            run_until_signalled(server, app.flush_all, app.abort_all)
        finally:
            if stop_metrics is not None:
                stop_metrics()
            observed.close()
            app.close()
        exit_if_cut_off(server)

    def shares_app(self, items: list[ShareOptions], config: DavstoreConfig) -> SharesApp:
        """The WSGI application of the shares, with ``DAVSTORE``'s ``AUTH_CACHE_TTL`` and
        ``REALM``."""
        from davstore.shares_app import SharesApp

        return SharesApp(items, auth_cache_ttl=config.auth_cache_ttl, realm=config.realm)

    def top_options(self, args: argparse.Namespace, config: DavstoreConfig) -> None:
        """Fill in the options only ``DAVSTORE``'s top level has (``--metrics-port``,
        ``--metrics-host``, ``--state-dir``) where the command line did not give them."""
        for name, value in given_or_configured(args, config, Scope.TOP).items():
            setattr(args, name, value)

    def share_options(self, args: argparse.Namespace, shares: list[Share]) -> list[ShareOptions]:
        """How each share is served: its options given on the command line, else its
        ``DAVSTORE`` values (:func:`davstore.options.given_or_configured`)."""
        from davstore.shares_app import ShareOptions, limits_of

        for option in ("lock_storage", "property_storage"):
            url = getattr(args, option)
            if url and len(shares) > 1 and not url.startswith("memory:") and "{share}" not in url:
                flag = "--" + option.replace("_", "-")
                raise UsageError(
                    f"{flag} {url} would be used by {len(shares)} shares: put {{share}} in it"
                )
        items = []
        for share in shares:
            given = argparse.Namespace(
                **{
                    **vars(args),
                    "lock_storage": _for(args.lock_storage, share),
                    "property_storage": _for(args.property_storage, share),
                }
            )
            values = given_or_configured(given, share.config)
            explicit = str(Path(args.state_dir) / share.name) if args.state_dir else None
            state_dir = prepare_state_dir(explicit or str(share.state_dir()), share.name)
            override = (
                args.read_only
                or args.cache_ttl is not None
                or args.revalidate is not None
                or args.max_upload_size
                or any(getattr(args, name) is not None for name in _TRASH_OPTIONS)
            )
            vfs = (
                share.build_vfs(
                    read_only=values["read_only"],
                    cache_ttl=values["cache_ttl"],
                    revalidate=values["revalidate"],
                    max_file_size=values["max_upload_size"],
                    state_dir=state_dir,
                    retention=_retention(values),
                )
                if override
                else share.vfs
            )
            trash = trash_of(vfs)
            if trash is not None:
                trash.start_purging(state_dir=state_dir)  # one purger per host
            items.append(
                ShareOptions(
                    share,
                    vfs=vfs,
                    lock_storage=values["lock_storage"],
                    property_storage=values["property_storage"],
                    state_dir=state_dir,
                    max_upload_size=values["max_upload_size"],
                    mac_metadata=values["mac_metadata"],
                    limits=dav_limits(given, limits_of(share.config)),
                )
            )
        return items

    def _banner(self, url: str, items: list[ShareOptions], workers: int = 1) -> None:
        more = f" with {workers} workers" if workers > 1 else ""
        lines = [f"davstore is serving the shares of this project (Django users){more}:"]
        for item in items:
            mode = " (read-only)" if item.vfs.read_only else ""
            lines.append(f"  {url}{item.share.name}/  {item.vfs.describe()}{mode}")
            lines.append(f"      state: {item.state_dir}")
        lines.append("Press Ctrl+C to stop.")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def _serve_workers(self, args: argparse.Namespace, items: list[ShareOptions]) -> None:
        """The parent of ``--workers N``: each worker is this command line run again (as
        ``runserver``'s reloader runs it: ``manage.py``, ``django-admin`` or ``-m django``),
        without the current folder on its path (the project's folder handed over unless it
        is inside a share: davstore/serving/workers.py).
        The workers' metrics are kept in the first share's state folder."""
        from django.utils.autoreload import get_child_arguments

        from davstore.serving.workers import METRICS_DIR, shared_folders, without_current_folder

        if not getattr(self, "_called_from_command_line", False):
            raise UsageError(
                "--workers starts this command again in each worker: run it from the "
                "command line (manage.py davstore serve)"
            )
        for item in items:
            check_shareable(item.share.storage, item.lock_storage, item.property_storage)
        failure = "the workers kept exiting right after their start"
        status = run_workers(
            args,
            command=without_current_folder(get_child_arguments()),
            metrics_dir=items[0].state_dir / METRICS_DIR / str(os.getpid()),
            banner=lambda url: self._banner(url, items, args.workers),
            shared=shared_folders(item.share.storage for item in items),
            failure=f"CommandError: {failure}",  # printed by the supervisor this becomes
        )
        if status:
            raise CommandError(failure, returncode=status)

    def mount_options(self, args: argparse.Namespace, share: Share) -> MountOptions:
        """How ``share`` is mounted: its options given on the command line, else its
        ``DAVSTORE`` values."""
        values = given_or_configured(args, share.config)
        return mount_options(argparse.Namespace(**{**vars(args), **values}))

    def mount_vfs(self, args: argparse.Namespace, share: Share) -> VFS:
        """The VFS ``share`` is mounted with: its options given on the command line, else
        its ``DAVSTORE`` values. Built in the process that serves the mount."""
        from django.db import connections

        values = given_or_configured(args, share.config)
        vfs = share.build_vfs(
            read_only=values["read_only"],
            cache_ttl=values["cache_ttl"],
            revalidate=values["revalidate"],
            max_file_size=values["max_upload_size"],
            retention=_retention(values),
        )
        # FUSE callbacks run on fresh thread states: a connection opened by a
        # file_changed receiver would never be closed otherwise.
        vfs.subscribe(lambda change: connections.close_all())
        _follow_share_journal(vfs, share)
        trash = trash_of(vfs)
        if trash is not None:
            trash.start_purging(state_dir=share.state_dir())  # one purger per host
        return vfs

    def _mounted_share(self, name: str | None) -> Share:
        """The share ``mount`` mounts: the one named, else the only one (a UsageError
        naming the choices when there are several)."""
        if name is not None:
            (share,) = self._shares([name])
            return share
        registry = get_shares()
        if len(registry) == 1:
            return next(iter(registry.values()))
        names = ", ".join(registry)
        raise UsageError(
            f"this project has {len(registry)} shares ({names}): name the one to mount, "
            "as in: manage.py davstore mount SHARE MOUNTPOINT"
        )

    def _mount(self, args: argparse.Namespace) -> None:
        from django.db import connections

        from davstore.frontends.fuse.mount import mount

        configure_logging(args)
        share = self._mounted_share(args.share)
        options = self.mount_options(args, share)
        connections.close_all()  # nothing crosses the fork
        status = mount(lambda: self.mount_vfs(args, share), args.mountpoint, options)
        if status:
            raise CommandError(
                f"cannot mount share {share.name!r} on {args.mountpoint}", returncode=status
            )


def _follow_share_journal(vfs: Any, share: Share) -> None:
    """Make a mount's VFS follow the share's journal stream when the share's state is in
    Redis (the replicas on other hosts; the state folder's journal it follows already:
    :meth:`Share.build_vfs`)."""
    url = share.config.lock_storage or share.config.property_storage
    from davstore.frontends.webdav.state import is_redis_url  # redis itself is an extra

    if url is not None and is_redis_url(url):
        from davstore.frontends.webdav.state.redis_state import parse_redis_url
        from davstore.vfs.journal_redis import StreamFollower, stream_key

        target = parse_redis_url(url)
        StreamFollower(vfs, target.client, key=stream_key(target.prefix)).start()


#: The options of the trash's retention (davstore.options), as Retention's fields.
_TRASH_OPTIONS = {
    "trash": "enabled",
    "trash_days": "days",
    "trash_versions": "versions",
    "trash_max_size": "max_size",
}


def _retention(values: dict[str, Any]) -> Retention:
    """The trash's retention the options given or configured ask for."""
    return Retention(**{field: values[name] for name, field in _TRASH_OPTIONS.items()})


def _for(url: str | None, share: Share) -> str | None:
    return None if url is None else url.replace("{share}", share.name)
