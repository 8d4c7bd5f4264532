"""The WebDAV frontend's own state: locks, dead properties and macOS metadata.

Locks and dead properties are each chosen by a URL (:func:`open_lock_storage`,
:func:`open_property_manager`):

``memory:``
    In this process only; gone at restart.
``sqlite:///path/to/file``
    A SQLite database (:mod:`~davstore.frontends.webdav.state.sqlite`), shared by the
    threads of a process and by the processes of one host that use the same file (workers
    of one share): locks are granted atomically across them
    (:mod:`~davstore.frontends.webdav.state.sqlite_locks`). This is the default, in the
    state directory: ``locks.sqlite3`` and ``properties.sqlite3``.
``shelve:///path/to/file``
    wsgidav's own shelve-based classes (``LockStorageShelve``/``ShelvePropertyManager``).
``redis://HOST:PORT/DB`` (also ``rediss://``, ``unix://``; ``?prefix=NAME:``)
    Shared by every replica of a share:
    :mod:`~davstore.frontends.webdav.state.redis_state` (needs the ``redis`` extra).

Any other scheme raises ``ValueError``. A state file that cannot be opened raises
``OSError`` naming the file. macOS metadata files kept beside the store live in
:mod:`~davstore.frontends.webdav.state.hidden_files` and
:mod:`~davstore.frontends.webdav.state.macmeta`.

Imports point one way: this module uses ``sqlite``, ``sqlite_locks`` and (only when a
``redis://`` URL is given, the extra being optional) ``redis_state``; none of them imports
it back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from wsgidav.lock_man.lock_storage import LockStorageDict, LockStorageShelve
from wsgidav.prop_man.property_manager import ShelvePropertyManager

from davstore.frontends.webdav.state.lock_manager import install_lock_manager
from davstore.frontends.webdav.state.sqlite import (
    LOCKS_FILE,
    PROPERTIES_FILE,
    SqliteLockStorage,
    SqlitePropertyManager,
    StateFull,
    connect_state_file,
)

__all__ = [
    "LOCKS_FILE",
    "PROPERTIES_FILE",
    "REDIS_SCHEMES",
    "SqliteLockStorage",
    "SqlitePropertyManager",
    "StateFull",
    "activity_stream",
    "close_quietly",
    "connect_state_file",
    "holds_locks",
    "install_lock_manager",
    "is_redis_url",
    "is_shared",
    "lock_guard",
    "lock_roots",
    "locks_within",
    "open_lock_storage",
    "open_property_manager",
]

logger = logging.getLogger(__name__)

_URL_KEY = "URL2TOKEN:"


def locks_within(storage: object, url: str) -> bool | None:
    """Whether a lock (expired ones too) is rooted at ``url`` or below it; ``None`` when
    that is not cheap to know (then the caller assumes there may be one)."""
    if isinstance(storage, SqliteLockStorage):
        return storage.has_locks_within(url)
    roots = lock_roots(storage)
    if roots is None:
        return None
    base = "/" + url.strip("/")
    if base == "/":
        return bool(roots)
    return any(root == base or root.startswith(base + "/") for root in roots)


def lock_roots(storage: object) -> set[str] | None:
    """The URLs locks are rooted at (expired ones too), or ``None`` when that is not cheap:
    wsgidav's in-memory ``LockStorageDict``, whose keys ``URL2TOKEN:<root>`` name every
    lock root (the SQLite storage answers :func:`locks_within` from its index instead).
    """
    if isinstance(storage, SqliteLockStorage):
        return None
    if isinstance(storage, LockStorageDict) and not isinstance(storage, LockStorageShelve):
        mapping: MutableMapping[str, Any] | None = storage._dict
        if mapping is None:
            return None
        return {key[len(_URL_KEY) :] for key in list(mapping) if key.startswith(_URL_KEY)}
    return None


def lock_guard(storage: object) -> Callable[[], contextlib.AbstractContextManager[None]] | None:
    """A guard during which no lock can be created, when it is cheap to see whether the
    storage holds any lock at all (see :func:`holds_locks`); ``None`` otherwise.

    For wsgidav's in-memory storage it is the storage's own lock, for reading (creating a
    lock takes it for writing); for the SQLite storage also the lock file that makes lock
    creation atomic across the processes sharing it (sqlite_locks.py).
    """
    if isinstance(storage, SqliteLockStorage):
        from davstore.frontends.webdav.state.sqlite_locks import write_guard

        return write_guard(storage)
    if isinstance(storage, LockStorageDict) and not isinstance(storage, LockStorageShelve):
        rw_lock = storage._lock

        @contextlib.contextmanager
        def guard() -> Iterator[None]:
            rw_lock.acquire_read()
            try:
                yield
            finally:
                rw_lock.release()

        return guard
    return None


def holds_locks(storage: object) -> bool:
    """Whether the storage holds any lock, expired ones too (True when unknown)."""
    if isinstance(storage, SqliteLockStorage):
        return storage.holds_any()
    if isinstance(storage, LockStorageDict) and not isinstance(storage, LockStorageShelve):
        mapping: MutableMapping[str, Any] | None = storage._dict
        return mapping is None or len(mapping) > 0
    return True


def _parse(url: str, state_dir: pathlib.Path, default_file: str) -> tuple[str, str]:
    """``(scheme, file path)`` of a storage URL; no path means ``state_dir/default_file``."""
    if url in ("memory:", "memory://"):
        return "memory", ""
    parts = urlsplit(url)
    if parts.scheme in ("sqlite", "shelve"):
        path = parts.path or ""
        if parts.netloc:
            raise ValueError(f"state URL {url!r} must look like {parts.scheme}:///absolute/path")
        if not path or path == "/":
            path = str(state_dir / default_file)
        return parts.scheme, path
    raise ValueError(
        f"unknown state storage {url!r}: use memory:, sqlite:///PATH, shelve:///PATH "
        "or redis://HOST:PORT/DB"
    )


def _redis_state() -> Any:
    """:mod:`~davstore.frontends.webdav.state.redis_state`, or ValueError naming the extra."""
    try:
        from davstore.frontends.webdav.state import redis_state
    except ImportError as exc:
        raise ValueError(
            f"redis:// state needs the redis package: pip install 'davstore[redis]' ({exc})"
        ) from exc
    return redis_state


#: The URL schemes of Redis state.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def is_redis_url(url: str | None) -> bool:
    """Whether ``url`` names Redis state (``redis://``, ``rediss://``, ``unix://``),
    answered without importing redis (an optional extra a site may not have)."""
    return bool(url) and urlsplit(str(url)).scheme in REDIS_SCHEMES


def activity_stream(url: str | None) -> tuple[Any, str] | None:
    """The Redis client and activity stream of a share whose state ``url`` is a Redis URL
    (:func:`~davstore.frontends.webdav.state.redis_state.activity_stream`), else None,
    without importing redis for a share that does not use it."""
    if not is_redis_url(url):
        return None
    stream: tuple[Any, str] | None = _redis_state().activity_stream(url)
    return stream


def is_shared(thing: object) -> bool:
    """Whether a lock storage or property manager keeps its state where every replica of
    the share sees it (Redis: the app then runs
    :func:`~davstore.frontends.webdav.state.redis_state.share_replicas`).

    Such a class says so with a true ``shared_by_replicas`` class attribute.
    """
    return getattr(type(thing), "shared_by_replicas", False) is True


def open_lock_storage(
    url: str | None, state_dir: pathlib.Path, *, max_lock_timeout: float | None = None
) -> LockStorageDict:
    """The lock storage named by ``url`` (``None``: SQLite in ``state_dir``); the SQLite
    and Redis storages grant and keep no lock longer than ``max_lock_timeout`` seconds
    (default: wsgidav's four weeks)."""
    longest = LockStorageDict.LOCK_TIME_OUT_MAX if max_lock_timeout is None else max_lock_timeout
    if url is not None and is_redis_url(url):
        module = _redis_state()
        return module.RedisLockStorage(module.parse_redis_url(url), max_timeout=longest)
    scheme, path = _parse(url or "sqlite://", state_dir, LOCKS_FILE)
    if scheme == "memory":
        return LockStorageDict()
    if scheme == "shelve":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return LockStorageShelve(path)
    return SqliteLockStorage(path, max_timeout=longest)


def open_property_manager(url: str | None, state_dir: pathlib.Path) -> Any:
    """The dead-property manager named by ``url`` (``None``: SQLite in ``state_dir``)."""
    if url is not None and is_redis_url(url):
        module = _redis_state()
        return module.RedisPropertyManager(module.parse_redis_url(url))
    scheme, path = _parse(url or "sqlite://", state_dir, PROPERTIES_FILE)
    if scheme == "memory":
        return SqlitePropertyManager(":memory:")
    if scheme == "shelve":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return ShelvePropertyManager(path)
    return SqlitePropertyManager(path)


def close_quietly(thing: object) -> None:
    """Close a lock storage or property manager at shutdown, logging a failure."""
    close = getattr(thing, "close", None) or getattr(thing, "_close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.exception("could not close %r", thing)
