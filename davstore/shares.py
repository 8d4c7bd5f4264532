"""The shares of a Django project: one VFS per share over the site's own Storage.

:func:`get_shares` and :func:`get_share` return the shares the ``DAVSTORE`` setting names
(:mod:`davstore.conf`). A :class:`Share` builds its :class:`~davstore.vfs.VFS` on first use,
over ``django.core.files.storage.storages[alias]``: the very Storage instance the site uses
(an ``InMemoryStorage`` included), so the admin page, the WebDAV shares served in the
site's process and the site itself see the same files and one metadata cache. Every change
made through a share's VFS sends :data:`davstore.signals.file_changed`.

The registry lives as long as the settings: a test that overrides ``DAVSTORE`` or
``STORAGES`` gets fresh shares (:func:`reset_shares`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.files.storage import Storage

from davstore.conf import ShareConfig, get_config
from davstore.vfs import VFS

if TYPE_CHECKING:
    from davstore.vfs.activity import ActivityLog
    from davstore.vfs.trash import Retention

__all__ = ["Share", "get_share", "get_shares", "reset_shares"]

_lock = threading.Lock()
_shares: dict[str, Share] | None = None


class Share:
    """One configured share.

    :param config: what the ``DAVSTORE`` setting says about it.

    ``vfs`` is built once, on first use, and is the one every door of this process uses.
    """

    def __init__(self, config: ShareConfig) -> None:
        self.config = config
        self._vfs: VFS | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Share {self.name!r} on STORAGES[{self.config.storage!r}]>"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def read_only(self) -> bool:
        return self.config.read_only

    @property
    def storage(self) -> Storage:
        """The site's Storage for this share (``storages[alias]``, built by Django once)."""
        from django.core.files.storage import storages

        storage: Storage = storages[self.config.storage]
        return storage

    @property
    def vfs(self) -> VFS:
        """The share's VFS (built on first use; change events go to ``file_changed``)."""
        if self._vfs is None:
            with self._lock:
                if self._vfs is None:
                    self._vfs = self.build_vfs()
        return self._vfs

    @property
    def built_vfs(self) -> VFS | None:
        """The share's VFS if this process built it already, else None."""
        return self._vfs

    def missing_hint(self) -> str | None:
        """What makes the share's folder when it does not exist yet, for its pages: for
        the site's static files (the ``staticfiles`` storage), ``collectstatic``."""
        from django.contrib.staticfiles.storage import StaticFilesStorage

        if self.config.storage == "staticfiles" or isinstance(self.storage, StaticFilesStorage):
            return (
                "Run “python manage.py collectstatic” to collect the site's static files into it."
            )
        return None

    def missing_message(self) -> str | None:
        """None when the share's root folder exists; else a sentence saying it does not
        (and what makes it), for the admin and the pages."""
        try:
            if self.vfs.root_exists():
                return None
        except OSError:  # the store cannot even be built: not a missing folder
            return None
        hint = self.missing_hint()
        return "This share's folder does not exist yet." + (f" {hint}" if hint else "")

    def build_vfs(
        self,
        *,
        read_only: bool = False,
        cache_ttl: float | None = None,
        max_file_size: int | None = None,
        state_dir: Path | None = None,
        revalidate: float | None = None,
        retention: Retention | None = None,
    ) -> VFS:
        """A new VFS over the share's Storage, connected to ``file_changed``.

        Each call builds another one (another metadata cache): use :attr:`vfs` unless a
        separate process or mount needs its own. ``read_only`` can only add to the
        share's setting; ``cache_ttl``, ``revalidate``, ``max_file_size`` and the trash's
        ``retention`` replace it when given.

        The VFS joins the other processes of this host that serve the share (workers, a
        mount, ``davstore serve``) through the change file and the change journal in
        ``state_dir`` (default: :meth:`state_dir`; :mod:`davstore.vfs.journal`), whichever
        frontend uses it: their changes, and the site's own writes, are seen at once.
        """
        from davstore.signals import send_change
        from davstore.store import adapt
        from davstore.vfs.host_peers import share_with_host_peers

        vfs = VFS(
            adapt(self.storage),
            read_only=self.config.read_only or read_only,
            cache_ttl=self.config.cache_ttl if cache_ttl is None else cache_ttl,
            revalidate=self.config.revalidate if revalidate is None else revalidate,
            max_file_size=self.config.max_upload_size if max_file_size is None else max_file_size,
        )
        vfs.subscribe(lambda change: send_change(self, change))
        from davstore.site.guard import protect

        protect(self, vfs, self.state_dir() if state_dir is None else state_dir)
        share_with_host_peers(vfs, self.state_dir() if state_dir is None else state_dir)
        from davstore.vfs.trash import Trash

        Trash(
            vfs, self.retention if retention is None else retention
        ).install()  # innermost: after the guard's refusals
        from davstore.vfs.activity import attach

        attach(  # the admin's changes too, and manage.py's doors
            vfs,
            self.state_dir() if state_dir is None else state_dir,
            stream=self.activity_stream(),
        )
        return vfs

    def activity_stream(self) -> tuple[Any, str] | None:
        """The Redis stream of the share's activity when its state is in Redis
        (:mod:`davstore.vfs.activity`), else None."""
        from davstore.frontends.webdav.state import activity_stream

        return activity_stream(self.config.lock_storage or self.config.property_storage)

    def activity_log(self) -> ActivityLog:
        """The share's activity log: the state folder's, and Redis's for replicas."""
        from davstore.vfs.activity import ActivityLog

        return ActivityLog(self.state_dir(), stream=self.activity_stream())

    @property
    def retention(self) -> Retention:
        """The share's trash retention (``DAVSTORE`` keys ``TRASH``, ``TRASH_*``)."""
        from davstore.vfs.trash import Retention

        config = self.config
        return Retention(
            enabled=config.trash,
            days=config.trash_days,
            versions=config.trash_versions,
            max_size=config.trash_max_size,
        )

    def state_dir(self) -> Path:
        """The folder for the share's WebDAV state (locks, dead properties).

        ``STATE_DIR/<share>`` when ``STATE_DIR`` is set, else the folder ``davstore serve
        --storage ALIAS`` uses for the same settings module and alias. Not created here.
        """
        if self.config.state_dir is not None:
            return self.config.state_dir
        from django.conf import settings

        from davstore.serving.selection import SelectionKind, StorageSelection, share_identity
        from davstore.serving.state_dir import default_state_root

        selection = StorageSelection(
            SelectionKind.ALIAS,
            alias=self.config.storage,
            settings_module=getattr(settings, "SETTINGS_MODULE", None),
        )
        return default_state_root() / share_identity(selection, self.storage)


def get_shares() -> dict[str, Share]:
    """Every configured share by name, in the setting's order. Raises ImproperlyConfigured."""
    global _shares  # noqa: PLW0603 -- the registry, reset with the settings
    shares = _shares
    if shares is None:
        with _lock:
            if _shares is None:
                _shares = {config.name: Share(config) for config in get_config().shares}
            shares = _shares
    return dict(shares)


def get_share(name: str) -> Share:
    """The share called ``name``; ``LookupError`` when there is none."""
    try:
        return get_shares()[name]
    except KeyError:
        raise LookupError(f"no davstore share named {name!r}") from None


def reset_shares(**_: Any) -> None:
    """Forget the built shares (after a settings change); the next call builds new ones."""
    global _shares  # noqa: PLW0603
    with _lock:
        _shares = None
