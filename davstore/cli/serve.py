"""``davstore serve``: share the selected storage over WebDAV until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from davstore.options import Command, Door, add_arguments
from davstore.serving.arguments import add_storage_arguments, dav_limits
from davstore.serving.exits import CommandError, UsageError
from davstore.serving.listen import check_tls_arguments, listen, serve_metrics, server_url
from davstore.serving.listen import one_line as _one_line
from davstore.serving.listen import why as _why
from davstore.serving.logs import configure_logging
from davstore.serving.malloc import IdleTrim, limit_malloc_arenas
from davstore.serving.selection import OpenedSelection, open_share
from davstore.serving.shutdown import exit_if_cut_off, run_until_signalled
from davstore.serving.state_dir import prepare_state_dir
from davstore.serving.workers import check_shareable, run_workers, start_worker
from davstore.vfs.host_peers import share_with_host_peers

if TYPE_CHECKING:
    from davstore.frontends.webdav import DavstoreApp
    from davstore.vfs.trash import Trash

__all__ = [
    "GENERATED_USER",
    "add_serve_arguments",
    "build_app",
    "django_users",
    "open_served_share",
    "serve",
]

logger = logging.getLogger(__name__)

#: The user name of the generated account when neither --user nor --anonymous is given.
GENERATED_USER = "davstore"


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_storage_arguments(parser)
    add_arguments(parser, Command.SERVE, Door.CLI)


def serve(args: argparse.Namespace) -> int:
    """``davstore serve``: share the selected storage over WebDAV until SIGINT/SIGTERM.

    With ``--workers N`` (N > 1) this process binds the port and runs N workers
    (:mod:`davstore.serving.workers`); a worker is this function again, given ``--worker-socket``.
    """
    configure_logging(args)
    check_tls_arguments(args)
    worker = start_worker(args)
    limit_malloc_arenas()  # before any thread: memory a load freed goes back
    share, trash, state_dir = open_served_share(args)

    generated: str | None = None
    users: dict[str, str] | None
    if args.anonymous or django_users(args, share):
        users = None
    elif args.users:
        users = dict(args.users)
    else:
        from davstore.serving.workers import WORKER_PASSWORD_ENV

        generated = (os.environ.get(WORKER_PASSWORD_ENV) if worker else None) or (
            secrets.token_urlsafe(12)
        )
        users = {GENERATED_USER: generated}

    if getattr(args, "workers", 1) > 1 and not worker:
        return _serve_workers(args, share, state_dir, users, generated)

    try:
        from davstore.frontends.webdav import make_server
    except ImportError as exc:
        raise CommandError(f"the WebDAV frontend is not available: {exc}") from exc
    app = build_app(args, share, state_dir, users)
    authorize = _use_django_users(app, share) if django_users(args, share) else None
    stop_metrics: Callable[[], None] = _nothing
    try:
        from davstore.serving.observability import instrument

        observed = instrument(
            app,
            share.vfs,
            metrics_elsewhere=getattr(args, "metrics_port", None) is not None,
            authorize=authorize,
        )
        server = listen(make_server, app, args)
        stop_metrics = serve_metrics(observed, args)
        url = server_url(server, args)
        if worker:
            from davstore.serving.workers import WORKER_INDEX_ENV

            logger.info("worker %s serving at %s", os.environ.get(WORKER_INDEX_ENV), url)
        else:
            _print_banner(
                url=url,
                share=share.vfs.describe(),
                read_only=bool(args.read_only),
                state_dir=state_dir,
                users=users,
                generated=generated,
                django=django_users(args, share),
            )
            logger.info("serving %s at %s (state in %s)", share.vfs.describe(), url, state_dir)
        trash.start_purging(state_dir=state_dir)  # one purger per host: the lock's holder
        idle = IdleTrim(release=getattr(server, "release_threads", None))
        idle.trim_now()
        status = run_until_signalled(server, share.vfs.flush_all, share.vfs.abort_all, tick=idle)
    finally:
        trash.close()
        stop_metrics()
        app.close()
    exit_if_cut_off(server)
    return status


def open_served_share(args: argparse.Namespace) -> tuple[OpenedSelection, Trash, Path]:
    """The share ``davstore serve`` serves: the selected store's VFS (``--max-upload-size``
    its largest file) with the trash ``--trash``, ``--trash-days``, ... ask for and the
    activity log in its state folder (made here); returns the share, its trash (also
    when off: it purges what is there) and the state folder."""
    from davstore.serving.trash_command import install_trash
    from davstore.vfs.activity import attach

    share = open_share(args, max_file_size=args.max_upload_size)
    trash = install_trash(share.vfs, args)
    state_dir = prepare_state_dir(args.state_dir, share.identity)
    from davstore.frontends.webdav.state import activity_stream

    stream = activity_stream(args.lock_storage or args.property_storage)
    attach(share.vfs, state_dir, stream=stream)  # after the trash: each record names its entry
    return share, trash, state_dir


def _nothing() -> None:
    pass


def django_users(args: argparse.Namespace, share: OpenedSelection) -> bool:
    """Whether ``davstore serve`` authenticates the project's Django users: Django
    settings are used (``--settings``, ``DJANGO_SETTINGS_MODULE``), ``django.contrib.auth``
    is installed, and neither ``--user`` nor ``--anonymous`` is given."""
    if args.anonymous or args.users or share.selection.settings_module is None:
        return False
    from django.apps import apps

    return apps.is_installed("django.contrib.auth")


def build_app(
    args: argparse.Namespace,
    share: OpenedSelection,
    state_dir: Path,
    users: dict[str, str] | None,
) -> DavstoreApp:
    """The WebDAV application of ``davstore serve`` for the opened ``share``, with the
    share's options from ``args``, joined to the host's other processes serving it."""
    try:
        from davstore.frontends.webdav import create_app
    except ImportError as exc:
        raise CommandError(f"the WebDAV frontend is not available: {exc}") from exc

    try:
        app = create_app(
            share.vfs,
            users=users,
            realm="davstore",
            lock_storage=args.lock_storage,
            property_storage=args.property_storage,
            state_dir=state_dir,
            max_upload_size=args.max_upload_size,
            mac_metadata=args.mac_metadata,
            limits=dav_limits(args),
            share_name=share.name,
        )
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot open the share's state in {state_dir}: {_why(exc)}") from exc
    # Every frontend of a share joins the other processes of this host that serve it
    # (workers, mounts, the site): their changes are seen at once, not after the TTL.
    peers = share_with_host_peers(share.vfs, state_dir)
    if peers is not None:
        app.on_close(peers.close)
    return app


def _use_django_users(app: DavstoreApp, share: OpenedSelection) -> Callable[[Any], bool]:
    """Serve ``app`` to the project's Django users, with the access rules of the
    ``DAVSTORE`` share on the same alias (:class:`davstore.shares_app.DjangoUsers`);
    returns who may see the metrics (active staff)."""
    from django.core.exceptions import ImproperlyConfigured

    from davstore.conf import get_config
    from davstore.shares_app import DjangoUsers, rules_for_alias

    try:
        config = get_config()
        rules = rules_for_alias(share.selection.alias or "default")
    except ImproperlyConfigured as exc:
        raise UsageError(_one_line(exc)) from exc
    made: list[DjangoUsers] = []

    def wrap(inner: Callable[..., Any]) -> DjangoUsers:
        made.append(
            DjangoUsers(
                inner,
                rules,
                read_only=share.vfs.read_only,
                auth_cache_ttl=config.auth_cache_ttl,
                realm=config.realm,
                vfs=share.vfs,
            )
        )
        return made[0]

    app.wrap(wrap)
    app.inline = False  # the users' checks query the database: never on the event loop
    return made[0].may_see_metrics


def _serve_workers(
    args: argparse.Namespace,
    share: OpenedSelection,
    state_dir: Path,
    users: dict[str, str] | None,
    generated: str | None,
) -> int:
    """The parent of ``--workers N``: check the share can be shared, then run the workers."""
    from davstore.serving.workers import METRICS_DIR, shared_folders, worker_command

    check_shareable(share.storage, args.lock_storage, args.property_storage)

    def banner(url: str) -> None:
        _print_banner(
            url=url,
            share=share.vfs.describe() + f", {args.workers} workers",
            read_only=bool(args.read_only),
            state_dir=state_dir,
            users=users,
            generated=generated,
            django=django_users(args, share),
        )
        logger.info(
            "serving %s at %s with %d workers (state in %s)",
            share.vfs.describe(),
            url,
            args.workers,
            state_dir,
        )

    return run_workers(
        args,
        command=worker_command(args.argv),
        metrics_dir=state_dir / METRICS_DIR / str(os.getpid()),
        banner=banner,
        password=generated,
        shared=shared_folders([share.storage]),
        project=share.project_folder,
    )


def _print_banner(
    *,
    url: str,
    share: str,
    read_only: bool,
    state_dir: Path,
    users: dict[str, str] | None,
    generated: str | None,
    django: bool = False,
) -> None:
    lines = [
        "davstore is serving " + share + (" (read-only)" if read_only else ""),
        f"  URL:      {url}",
    ]
    if django:
        lines.append("  Users:    the project's Django users (as manage.py davstore serve)")
    elif users is None:
        lines.append("  Auth:     none (--anonymous): anyone who can connect may read and write")
    elif generated is not None:
        lines += [f"  User:     {GENERATED_USER}", f"  Password: {generated}"]
    else:
        lines.append("  Users:    " + ", ".join(sorted(users)))
    lines += [f"  State:    {state_dir}", "Press Ctrl+C to stop."]
    print("\n".join(lines), flush=True)  # noqa: T201 -- the CLI's user-facing output
