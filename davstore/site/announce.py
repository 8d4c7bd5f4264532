"""The site announces its own writes: a save or delete through a shared Storage is journaled.

With ``"davstore"`` in ``INSTALLED_APPS``, the Storage objects Django's ``storages``
handler returns for the aliases the shares name (``default_storage`` among them) are the
same objects as before, with ``save`` and ``delete`` wrapped on the instance: the site's
code calls what it called and gets back what it got (the name ``save`` chose). After the
Storage did its work, the change is recorded in each share's journal
(:mod:`davstore.vfs.journal`) with origin ``"site"`` and the user of the innermost
:func:`davstore.signals.acting_as_user` if any, and announced to the other processes of
the host (:mod:`davstore.vfs.host_peers`), which forget that path at once, and written to the
share's activity log (:mod:`davstore.vfs.activity`; the size a save was given); for a share whose
state is in Redis, appended to its journal stream too (:mod:`davstore.vfs.journal_redis`),
which the replicas on every host follow. The site's own VFS of the share forgets it too.

davstore's own calls on the Storage (a VFS over the generic adapter saves through
``Storage.save``) are marked by the store adapters (:mod:`davstore.store.own`) and not
recorded here: the VFS records them itself, once.

A ``save`` is recorded as ``created`` (a storage that overwrites, as django-storages' do
with ``file_overwrite``, may have replaced a file: readers forget the path either way).
Failing to record is logged and never fails the site's call.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

from django.core.files.storage import Storage
from django.core.files.storage.handler import StorageHandler

from davstore.store.own import is_own_call
from davstore.vfs.activity import ActivityLog
from davstore.vfs.events import Action, Actor, Change, current_actor
from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
from davstore.vfs.host_peers import HostPeers
from davstore.vfs.journal import Journal, Record, forget, open_journal, writer_id
from davstore.vfs.journal_redis import append, stream_key

__all__ = ["install", "journaled_alias", "reset"]

logger = logging.getLogger(__name__)

_MARK = "_davstore_journaled"
_lock = threading.Lock()
_outlets: dict[str, tuple[Journal, HostPeers] | None] = {}
_streams: dict[str, tuple[Any, str]] = {}
_failed_at: dict[str, float] = {}
_activity_logs: dict[Path, ActivityLog] = {}


class _JournaledHandler(StorageHandler):
    """Django's ``storages`` handler, wrapping the shared Storage objects it returns."""

    def __getitem__(self, alias: str) -> Storage:
        storage: Storage = super().__getitem__(alias)
        if _MARK not in vars(storage):  # looked at once per object
            try:
                shared = alias in _shared_aliases()
            except Exception:  # a DAVSTORE setting being changed: looked at next time
                return storage
            if shared:
                _wrap(storage, alias)
            else:
                vars(storage)[_MARK] = None
        return storage


def install() -> None:
    """Journal the site's writes through the shared storages (idempotent; from ``ready``)."""
    from django.core.files.storage import storages

    if not isinstance(storages, _JournaledHandler):
        if type(storages) is not StorageHandler:
            logger.warning(
                "the storages handler is a %s: site writes are not journaled", type(storages)
            )
            return
        storages.__class__ = _JournaledHandler


def journaled_alias(storage: Storage) -> str | None:
    """The alias whose writes ``storage`` journals, or None when it journals nothing."""
    alias: str | None = vars(storage).get(_MARK)
    return alias


def reset() -> None:
    """Close the journals opened for the site and look at each storage again (after a
    settings change: ``DAVSTORE`` may name other aliases now)."""
    from django.core.files.storage import storages

    for storage in list(getattr(storages, "_storages", {}).values()):
        if vars(storage).get(_MARK, "") is None:
            del vars(storage)[_MARK]
    with _lock:
        for outlet in _outlets.values():
            if outlet is not None:
                journal, peers = outlet
                journal.close()
                peers.close()
        _outlets.clear()
        for client, _key in _streams.values():
            client.close()
        _streams.clear()
        _activity_logs.clear()


def _shared_aliases() -> set[str]:
    from davstore.conf import get_config

    return {share.storage for share in get_config().shares}


def _wrap(storage: Storage, alias: str) -> None:
    save, delete = storage.save, storage.delete

    @functools.wraps(save)
    def journaled_save(*args: Any, **kwargs: Any) -> Any:
        name = save(*args, **kwargs)
        if not is_own_call():
            content = args[1] if len(args) > 1 else kwargs.get("content")
            size = getattr(content, "size", None)
            _record(alias, name, Action.CREATED, size if isinstance(size, int) else None)
        return name

    @functools.wraps(delete)
    def journaled_delete(*args: Any, **kwargs: Any) -> Any:
        result = delete(*args, **kwargs)
        if not is_own_call():
            name = args[0] if args else kwargs.get("name")
            _record(alias, name, Action.DELETED)
        return result

    vars(storage)["save"] = journaled_save
    vars(storage)["delete"] = journaled_delete
    vars(storage)[_MARK] = alias


def _record(alias: str, name: object, action: Action, size: int | None = None) -> None:
    if not isinstance(name, str) or not name:
        return
    path = name.replace("\\", "/").strip("/")
    actor = current_actor()
    record = Record(
        action=action.value,
        path=path,
        origin="site",
        user=actor.user if actor is not None else None,
        at=time.time(),
        writer=writer_id(),
    )
    from davstore.shares import get_shares

    try:
        shares = [share for share in get_shares().values() if share.config.storage == alias]
    except Exception:
        logger.exception("cannot journal the site's %s %s", action.value, path)
        return
    for share in shares:
        try:
            vfs = share.built_vfs
            if vfs is not None:
                forget(vfs, record)
            outlet = _outlet(share.name, share.state_dir())
            if outlet is not None:
                journal, peers = outlet
                journal.append(record)
                peers.announce()
            _activity(share.state_dir(), share.activity_stream()).record(
                Change(action, path, actor=Actor(record.user, "site")), size=size
            )
            stream = _stream(share.config.lock_storage or share.config.property_storage)
            if stream is not None:
                client, key = stream
                append(client, key, record)
        except Exception as exc:  # Redis away, a full disk: said now and then, never raised
            now = time.monotonic()
            if now - _failed_at.get(share.name, -60.0) > 10:
                logger.warning(
                    "cannot journal the site's %s %s in %s: %s", action.value, path, share, exc
                )
            _failed_at[share.name] = now


def _activity(state_dir: Path, stream: tuple[Any, str] | None) -> ActivityLog:
    """The activity log of the share whose state is in ``state_dir`` (one per folder)."""
    with _lock:
        log = _activity_logs.get(state_dir)
        if log is None:
            log = _activity_logs[state_dir] = ActivityLog(state_dir, stream=stream)
        return log


def _stream(url: str | None) -> tuple[Any, str] | None:
    """The Redis client and journal stream of a share whose state is in Redis."""
    from davstore.frontends.webdav.state import is_redis_url

    if url is None or not is_redis_url(url):
        return None
    from davstore.frontends.webdav.state.redis_state import parse_redis_url

    with _lock:
        if url not in _streams:
            target = parse_redis_url(url)
            _streams[url] = (target.client(), stream_key(target.prefix))
        return _streams[url]


def _outlet(name: str, state_dir: Path) -> tuple[Journal, HostPeers] | None:
    key = f"{name}\0{state_dir}"
    with _lock:
        if key not in _outlets:
            outlet: tuple[Journal, HostPeers] | None = None
            try:
                state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                journal = open_journal(state_dir)
                if journal is not None:
                    outlet = (journal, HostPeers(state_dir / PEERS_FILE))
            except OSError as exc:
                logger.warning("the site's writes to %s are not journaled: %s", name, exc)
            _outlets[key] = outlet
        return _outlets[key]
