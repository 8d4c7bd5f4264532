"""Locks and dead properties in Redis, shared by every replica of a share.

Chosen with ``--lock-storage redis://HOST:PORT/DB`` and ``--property-storage redis://...``
(``rediss://`` for TLS, ``unix:///path/to/socket?db=N`` too). A ``prefix`` query parameter
names the keys' namespace (default ``davstore:``); replicas of one share use the same URL,
different shares on one Redis a different prefix or database.

Keys under the prefix ``P``:

==============================  ============================================================
``P lock:<token>``              one lock as JSON, expiring with the lock
``P lockroot:<root>``           set of the tokens rooted at ``<root>`` (a lock-root path)
``P lockroots``                 sorted set of lock roots (lexical range = a subtree)
``P writes:<replica>``          hash ``url -> count`` of PUTs in progress on one replica
``P mutex``                     the lock manager's mutex (a redis-py ``Lock``)
``P props:<url>``               hash ``property name -> value`` of one resource
``P propurls``                  sorted set of the URLs that have dead properties
``P changes``                   pub/sub channel of :mod:`davstore.vfs.replicas`
``P journal``                   stream: the change journal (:mod:`davstore.vfs.journal_redis`)
``P activity``                  stream: the activity log (:mod:`davstore.vfs.activity`)
==============================  ============================================================

Atomicity across processes: wsgidav's :class:`~wsgidav.lock_man.lock_manager.LockManager`
checks for conflicts and creates a lock under a mutex of one process only.
:class:`RedisLockManager` runs that critical section (and the write-permission check that
marks a PUT as in progress) under a Redis mutex as well, so two replicas never both grant
conflicting locks. PUTs in progress are counted per replica in Redis, so a LOCK on one
replica is refused while another replica is still writing the resource without a lock; a
replica that dies leaves its count behind for at most :data:`WRITES_TTL` seconds.

When Redis cannot be reached, requests that need the shared state to change something
(LOCK, UNLOCK, PUT, DELETE, MKCOL, COPY, MOVE, PROPPATCH: every write checks locks) are
answered ``503 Service Unavailable``; reads (GET, HEAD, OPTIONS, PROPFIND) go on, showing no
locks and no dead properties, and a warning is logged. :class:`StateGuard` tells the two
apart by the request method.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from wsgidav import util
from wsgidav.dav_error import DAVError
from wsgidav.lock_man.lock_manager import (
    LockManager,
    generate_lock_token,
    normalize_lock_root,
    validate_lock,
)

from davstore.frontends.webdav.locked_empty import mark_created
from davstore.frontends.webdav.state import REDIS_SCHEMES, is_redis_url
from davstore.frontends.webdav.state.lock_manager import SubmittedTokens, install_lock_manager
from davstore.http.wsgi import Environ, StartResponse, WSGIApp
from davstore.vfs import VFS

__all__ = [
    "DEFAULT_PREFIX",
    "READ_METHODS",
    "WRITES_TTL",
    "RedisLockManager",
    "RedisLockStorage",
    "RedisPropertyManager",
    "RedisTarget",
    "Replica",
    "StateGuard",
    "StateUnavailable",
    "activity_stream",
    "is_redis_url",
    "parse_redis_url",
    "share_path_of",
    "share_replicas",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PREFIX = "davstore:"
SCHEMES = REDIS_SCHEMES
#: Methods served without the shared state when Redis is away.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
#: Seconds a replica's count of PUTs in progress outlives its last refresh.
WRITES_TTL = 30
LOCK_TIMEOUT_MAX = 4 * 604800  # wsgidav's: one month
_MUTEX_TIMEOUT = 10.0  # a replica dying inside the critical section frees it after this
_MUTEX_WAIT = 10.0

_reads_may_degrade: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "davstore_redis_reads_may_degrade", default=False
)


class StateUnavailable(DAVError):  # type: ignore[misc]
    """503: the shared state (Redis) cannot be reached."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(
            503, "the shared lock and property state (Redis) is unavailable", src_exception=exc
        )


class RedisTarget:
    """A parsed Redis state URL: how to connect, and the key prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}{parts.path} (prefix {self.prefix!r})"

    def client(self, *, socket_timeout: float = 5.0) -> Any:
        """A new client (its own connection pool) that fails fast when Redis is away."""
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=2.0,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )


_activity_streams: dict[str, tuple[Any, str]] = {}
_activity_lock = threading.Lock()


def activity_stream(url: str | None) -> tuple[Any, str] | None:
    """The Redis client and activity stream of a share whose state ``url`` (its lock or
    property storage) is a Redis URL, else None; one client per URL in a process."""
    if url is None or not is_redis_url(url):
        return None
    with _activity_lock:
        if url not in _activity_streams:
            target = parse_redis_url(url)
            _activity_streams[url] = (target.client(), f"{target.prefix}activity")
        return _activity_streams[url]


def parse_redis_url(url: str) -> RedisTarget:
    """Split the ``prefix`` query parameter off a Redis URL. Raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"not a Redis URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    rest = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        else:
            rest.append((key, value))
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"state URL {url!r} must name a host: redis://HOST:PORT/DB")
    clean = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        redis.connection.parse_url(clean)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ValueError(f"bad Redis URL {url!r}: {exc}") from exc
    return RedisTarget(clean, prefix)


def _unavailable(exc: BaseException, fallback: Callable[[], T]) -> T:
    """The fallback for a read that may go on without Redis, else StateUnavailable."""
    if _reads_may_degrade.get():
        _warn_degraded(exc)
        return fallback()
    raise StateUnavailable(exc) from exc


_last_warning = [0.0]


def _warn_degraded(exc: BaseException) -> None:
    now = time.monotonic()
    if now - _last_warning[0] > 10:
        _last_warning[0] = now
        logger.warning("Redis is unavailable (%s): reads go on without locks and properties", exc)


_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """Redis failures inside the block are 503 whatever the method."""
    try:
        yield
    except _REDIS_DOWN as exc:
        raise StateUnavailable(exc) from exc


class StateGuard:
    """Reads (GET, HEAD, OPTIONS, PROPFIND) may go on without Redis; anything else is 503
    at once when Redis does not answer ``ping`` (so a LOCK of a new name, which wsgidav
    starts by creating the file, leaves nothing behind)."""

    def __init__(self, app: WSGIApp, ping: Callable[[], object]) -> None:
        self.app = app
        self.ping = ping

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        reading = environ.get("REQUEST_METHOD", "") in READ_METHODS
        # Not reset on return: wsgidav produces most answers while the server iterates
        # the body, after this call. Every request sets it first.
        _reads_may_degrade.set(reading)
        if not reading:
            try:
                self.ping()
            except _REDIS_DOWN as exc:
                logger.warning(
                    "Redis is unavailable (%s): %s refused with 503",
                    exc,
                    environ.get("REQUEST_METHOD"),
                )
                body = b"503 Service Unavailable\nThe shared lock state (Redis) is unavailable.\n"
                environ["wsgidav.some_input_read"] = 1
                start_response(
                    "503 Service Unavailable",
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                        ("Retry-After", "5"),
                        ("Connection", "close"),
                    ],
                )
                return [body]
        return self.app(environ, start_response)


# -- encoding ---------------------------------------------------------------------------


def _to_json(value: object) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot store {type(value).__name__} in Redis")


def _from_json(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


def _dumps(lock: dict[str, Any]) -> str:
    return json.dumps(lock, default=_to_json)


def _loads(raw: bytes | str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw, object_hook=_from_json)
    return value


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _subtree_range(root: str) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of the strings strictly below ``root`` (a ``/``-path)."""
    base = (root.rstrip("/") + "/").encode("utf-8")
    return b"[" + base, b"(" + base + b"\xff"


# -- locks ------------------------------------------------------------------------------


class RedisLockStorage:
    """wsgidav's lock-storage interface (``LockStorageDict``'s methods) over Redis.

    Locks are JSON (never pickle: a shared Redis must not be able to run code in the
    replicas). Expiry is kept twice: in the lock (``expire``, what wsgidav reads) and as
    the key's TTL, so Redis forgets expired locks by itself.
    """

    #: Every replica of the share sees this state (see ``state.is_shared``).
    shared_by_replicas = True

    def __init__(self, target: RedisTarget, *, max_timeout: float = LOCK_TIMEOUT_MAX) -> None:
        self.target = target
        self.prefix = target.prefix
        #: No lock lives longer; longer ones already stored are shortened at :meth:`open`.
        self.max_timeout = max_timeout
        #: Told of each lock that goes (see locked_empty.py).
        self.on_gone: Callable[[dict[str, Any]], None] | None = None
        self._redis: Any = None

    def __repr__(self) -> str:
        return f"RedisLockStorage({self.target!r})"

    def _shorten(self) -> None:
        """Locks stored to live past :attr:`max_timeout` from now (or forever) end then."""
        latest = time.time() + self.max_timeout
        for root in self.redis.zrange(self._roots_key, 0, -1):
            for token in self.redis.smembers(self._root_key(_text(root))):
                key = self._lock_key(_text(token))
                raw = self.redis.get(key)
                if raw is None:
                    continue
                lock = _loads(raw)
                if 0 <= float(lock["expire"]) <= latest:
                    continue
                lock["timeout"], lock["expire"] = self.max_timeout, latest
                self.redis.set(key, _dumps(lock), ex=math.ceil(self.max_timeout) + 1)

    @property
    def redis(self) -> Any:
        if self._redis is None:
            self.open()
        assert self._redis is not None
        return self._redis

    def open(self) -> None:
        if self._redis is None:
            self._redis = self.target.client()
            try:
                self._shorten()
            except _REDIS_DOWN as exc:
                _warn_degraded(exc)

    def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            client.close()

    def cleanup(self) -> None:
        """Expired locks leave by their keys' TTL; stale index entries go on lookup."""

    def _lock_key(self, token: str) -> str:
        return f"{self.prefix}lock:{token}"

    def _root_key(self, root: str) -> str:
        return f"{self.prefix}lockroot:{root}"

    @property
    def _roots_key(self) -> str:
        return f"{self.prefix}lockroots"

    def clear(self) -> None:
        """Delete every lock of this prefix."""
        with _writing():
            keys = list(self.redis.scan_iter(match=f"{self.prefix}lock*", count=500))
            if keys:
                self.redis.delete(*keys)

    def get(self, token: str) -> dict[str, Any] | None:
        """The lock of ``token``, or ``None`` when it does not exist or has expired."""
        try:
            raw = self.redis.get(self._lock_key(token))
        except _REDIS_DOWN as exc:
            return _unavailable(exc, lambda: None)
        if raw is None:
            return None
        lock = _loads(raw)
        expire = float(lock["expire"])
        if 0 <= expire < time.time():
            self.delete(token)
            return None
        return lock

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        """Store a new lock rooted at ``path``; adds ``root``, ``expire`` and ``token``."""
        if lock.get("token") is not None or lock.get("expire") is not None:
            raise ValueError("create() takes a lock definition without token and expire")
        root = normalize_lock_root(path)
        lock["root"] = root
        timeout = float(lock.get("timeout") or self.max_timeout)
        if timeout < 0 or timeout > self.max_timeout:
            timeout = self.max_timeout
        lock["timeout"] = timeout
        lock["expire"] = time.time() + timeout
        validate_lock(lock)
        token = generate_lock_token()
        lock["token"] = token
        mark_created(root, lock)
        with _writing():
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self._lock_key(token), _dumps(lock), ex=math.ceil(timeout) + 1)
            pipe.sadd(self._root_key(root), token)
            pipe.zadd(self._roots_key, {root: 0})
            pipe.execute()
        logger.debug("lock %s on %s for %s", token[-8:], root, lock.get("principal"))
        return lock

    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]:
        """Give an existing lock a new timeout. Raises ValueError for an unknown token."""
        if timeout < 0 or timeout > self.max_timeout:
            timeout = self.max_timeout
        with _writing():
            raw = self.redis.get(self._lock_key(token))
            if raw is None:
                raise ValueError(f"no such lock: {token}")
            lock = _loads(raw)
            lock["timeout"] = timeout
            lock["expire"] = time.time() + timeout
            self.redis.set(self._lock_key(token), _dumps(lock), ex=math.ceil(timeout) + 1)
        return lock

    def delete(self, token: str) -> bool:
        """Remove a lock; False when it did not exist."""
        with _writing():
            raw = self.redis.get(self._lock_key(token))
            if raw is None:
                return False
            lock = _loads(raw)
            self._forget(token, lock["root"])
        if self.on_gone is not None:
            self.on_gone(lock)
        return True

    def _forget(self, token: str, root: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._lock_key(token))
        pipe.srem(self._root_key(root), token)
        pipe.execute()
        if not self.redis.scard(self._root_key(root)):
            self.redis.zrem(self._roots_key, root)

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        """The valid locks rooted at ``path`` and/or below it (expired ones are purged)."""
        root = normalize_lock_root(path)
        try:
            return self._lock_list(root, include_root, include_children, token_only)
        except _REDIS_DOWN as exc:
            return _unavailable(exc, list)

    def _lock_list(
        self, root: str, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        roots = [root] if include_root else []
        if include_children:
            low, high = _subtree_range(root)
            below = [_text(r) for r in self.redis.zrangebylex(self._roots_key, low, high)]
            roots += [r for r in below if r != root and util.is_child_uri(root, r)]
        found: list[Any] = []
        now = time.time()
        for lock_root in roots:
            tokens = [_text(t) for t in self.redis.smembers(self._root_key(lock_root))]
            if not tokens:
                continue
            raws = self.redis.mget([self._lock_key(t) for t in tokens])
            for token, raw in zip(tokens, raws, strict=True):
                if raw is None:
                    self._forget(token, lock_root)  # expired: its key is gone
                    continue
                lock = _loads(raw)
                if 0 <= float(lock["expire"]) < now:
                    self._forget(token, lock_root)
                    if self.on_gone is not None:
                        self.on_gone(lock)
                    continue
                found.append(token if token_only else lock)
        return found

    def lock_roots(self) -> set[str] | None:
        """Every lock root (``None`` when Redis cannot tell)."""
        try:
            return {_text(r) for r in self.redis.zrange(self._roots_key, 0, -1)}
        except _REDIS_DOWN:
            return None


_DECREMENT = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
"""


class _SharedWrites:
    """The PUTs in progress on every replica, as the read-only mapping wsgidav consults."""

    def __init__(self, storage: RedisLockStorage, replica: str) -> None:
        self._storage = storage
        self.key = f"{storage.prefix}writes:{replica}"
        self._pattern = f"{storage.prefix}writes:*"
        self._local = 0
        self._guard = threading.Lock()
        self._decrement = storage.redis.register_script(_DECREMENT)

    def _all(self) -> dict[str, int]:
        client = self._storage.redis
        totals: dict[str, int] = {}
        for key in client.scan_iter(match=self._pattern, count=100):
            for url, count in client.hgetall(key).items():
                name = _text(url)
                totals[name] = totals.get(name, 0) + int(count)
        return totals

    def get(self, url: str, default: int = 0) -> int:
        return self._all().get(url, default)

    def items(self) -> list[tuple[str, int]]:
        return list(self._all().items())

    def begin(self, url: str) -> None:
        pipe = self._storage.redis.pipeline(transaction=True)
        pipe.hincrby(self.key, url, 1)
        pipe.expire(self.key, WRITES_TTL)
        pipe.execute()
        with self._guard:
            self._local += 1

    def end(self, url: str) -> None:
        with self._guard:
            self._local -= 1
        self._decrement(keys=[self.key], args=[url])

    def refresh(self) -> None:
        """Keep this replica's counts alive while it has writes in progress."""
        with self._guard:
            busy = self._local > 0
        if busy:
            self._storage.redis.expire(self.key, WRITES_TTL)


class RedisLockManager(SubmittedTokens, LockManager):  # type: ignore[misc]
    """wsgidav's LockManager whose check-and-create is atomic across processes.

    :param on_lock: called with the lock root after a lock is granted. Replicas use it to
        forget cached metadata of the locked resource: a LOCK is where a client starts
        from what another replica wrote.
    """

    def __init__(
        self,
        storage: RedisLockStorage,
        *,
        replica: str | None = None,
        on_lock: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(storage)
        self.replica = replica or uuid.uuid4().hex[:12]
        self.on_lock = on_lock
        self._writes = _SharedWrites(storage, self.replica)
        self._active_writes = self._writes
        self._mutex_name = f"{storage.prefix}mutex"
        self._stop = threading.Event()
        self._refresher = threading.Thread(
            target=self._refresh_writes, name="davstore-redis-writes", daemon=True
        )
        self._refresher.start()

    def __del__(self) -> None:
        """The app closes the storage (wsgidav's manager closes it when collected)."""

    @property
    def redis_storage(self) -> RedisLockStorage:
        storage: RedisLockStorage = self.storage
        return storage

    def close(self) -> None:
        """Stop the refresher thread and close the storage."""
        self._stop.set()
        self._refresher.join(5)
        self.redis_storage.close()

    def _refresh_writes(self) -> None:
        while not self._stop.wait(WRITES_TTL / 3):
            try:
                self._writes.refresh()
            except RedisError as exc:
                logger.debug("cannot refresh the writes in progress: %s", exc)

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        """The critical section of every replica (503 when Redis does not answer)."""
        with _writing():
            mutex = self.redis_storage.redis.lock(
                self._mutex_name,
                timeout=_MUTEX_TIMEOUT,
                blocking_timeout=_MUTEX_WAIT,
                thread_local=False,
            )
            if not mutex.acquire():
                raise DAVError(503, "the lock manager is busy; try again")
        try:
            yield
        finally:
            try:
                mutex.release()
            except (LockError, *_REDIS_DOWN) as exc:  # expired meanwhile, or Redis left
                logger.warning("could not release the Redis mutex: %s", exc)

    def acquire(self, **kwargs: Any) -> dict[str, Any]:
        with self._mutex(), _writing():
            lock: dict[str, Any] = super().acquire(**kwargs)
        if self.on_lock is not None:
            try:
                self.on_lock(lock["root"])
            except Exception:
                logger.exception("the on_lock hook failed for %s", lock["root"])
        return lock

    def refresh(self, token: str, *, timeout: float | None = None) -> dict[str, Any]:
        with _writing():
            lock: dict[str, Any] = super().refresh(token, timeout=timeout)
        return lock

    def release(self, token: str) -> None:
        with _writing():
            super().release(token)

    def check_write_permission(self, **kwargs: Any) -> None:
        with _writing():
            super().check_write_permission(**kwargs)

    def remove_all_locks_from_url(self, url: str, *, recursive: bool = False) -> None:
        with self._mutex(), _writing():
            super().remove_all_locks_from_url(url, recursive=recursive)

    def _begin_write_transaction(
        self, *, url: str, token_list: list[str], principal: str, depth: str = "0"
    ) -> None:
        url = normalize_lock_root(url)
        with self._mutex(), _writing():
            self._lock.acquire_write()
            try:
                errcond = self._get_write_conflicts(url, depth, token_list, principal)
                if len(errcond.hrefs) > 0:
                    raise DAVError(423, err_condition=errcond)
                self._writes.begin(url)
            finally:
                self._lock.release()

    def _end_write_transaction(self, url: str) -> None:
        try:
            self._writes.end(normalize_lock_root(url))
        except RedisError as exc:
            logger.warning("could not clear the write marker of %s: %s", url, exc)


# -- dead properties --------------------------------------------------------------------


class RedisPropertyManager:
    """Dead properties in Redis, with the interface of wsgidav's ``PropertyManager``.

    One hash per resource URL; a sorted set of those URLs makes moves and deletes of
    folders a range query. Moving and copying replace the destination's properties;
    deleting a folder (:meth:`remove_tree`) drops everything below it.
    """

    #: Every replica of the share sees this state (see ``state.is_shared``).
    shared_by_replicas = True

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.prefix = target.prefix
        self._redis: Any = target.client()
        self._urls_key = f"{self.prefix}propurls"

    def __repr__(self) -> str:
        return f"RedisPropertyManager({self.target!r})"

    @property
    def redis(self) -> Any:
        if self._redis is None:
            self._redis = self.target.client()
        return self._redis

    def _key(self, url: str) -> str:
        return f"{self.prefix}props:{url}"

    def has_any(self) -> bool:
        """Whether any URL has dead properties (``True`` when Redis cannot tell)."""
        try:
            return bool(self.redis.zcard(self._urls_key))
        except _REDIS_DOWN:
            return True

    def get_properties(self, norm_url: str, environ: object = None) -> list[str]:
        try:
            return [_text(name) for name in self.redis.hkeys(self._key(norm_url))]
        except _REDIS_DOWN as exc:
            return _unavailable(exc, list)

    def get_property(self, norm_url: str, name: str, environ: object = None) -> bytes | None:
        try:
            value = self.redis.hget(self._key(norm_url), name)
        except _REDIS_DOWN as exc:
            return _unavailable(exc, lambda: None)
        return None if value is None else bytes(value)

    def write_property(
        self,
        norm_url: str,
        name: str,
        property_value: bytes | str,
        dry_run: bool = False,
        environ: object = None,
    ) -> None:
        if dry_run:
            return
        value = property_value.encode() if isinstance(property_value, str) else property_value
        with _writing():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self._key(norm_url), name, value)
            pipe.zadd(self._urls_key, {norm_url: 0})
            pipe.execute()

    def remove_property(
        self, norm_url: str, name: str, dry_run: bool = False, environ: object = None
    ) -> None:
        if dry_run:
            return
        with _writing():
            self.redis.hdel(self._key(norm_url), name)
            if not self.redis.exists(self._key(norm_url)):
                self.redis.zrem(self._urls_key, norm_url)

    def remove_properties(self, norm_url: str, environ: object = None) -> None:
        with _writing():
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(self._key(norm_url))
            pipe.zrem(self._urls_key, norm_url)
            pipe.execute()

    def _urls_within(self, url: str) -> list[str]:
        base = url.rstrip("/")
        found = [u for u in (url, base) if self.redis.zscore(self._urls_key, u) is not None]
        low, high = _subtree_range(base or "/")
        found += [_text(u) for u in self.redis.zrangebylex(self._urls_key, low, high)]
        return sorted(set(found))

    def remove_tree(self, norm_url: str) -> None:
        """Remove the properties of ``norm_url`` and of everything below it."""
        with _writing():
            urls = self._urls_within(norm_url)
            if urls:
                pipe = self.redis.pipeline(transaction=True)
                pipe.delete(*[self._key(u) for u in urls])
                pipe.zrem(self._urls_key, *urls)
                pipe.execute()

    def copy_tree(self, src_url: str, dest_url: str) -> None:
        """:meth:`copy_properties` of ``src_url`` and of each URL below it that has any, to
        the same place below ``dest_url`` (a folder's COPY, made in one call), written in
        one transaction: another process sees the destination's properties all copied or
        none, and a connection lost on the way copies nothing."""
        with _writing():
            pipe = self.redis.pipeline(transaction=True)
            self._queue_copies(pipe, src_url, dest_url, lambda _: False)
            pipe.execute()

    def _queue_copies(
        self, pipe: Any, src_url: str, dest_url: str, kept: Callable[[str], bool]
    ) -> None:
        """Queue on ``pipe`` the copy of the properties of ``src_url``'s tree to the same
        places below ``dest_url`` (read now), but for the targets ``kept`` answers True."""
        src_base, dest_base = src_url.rstrip("/"), dest_url.rstrip("/")
        for url in self._urls_within(src_url):
            target = dest_url if url == src_url else dest_base + url[len(src_base) :]
            if not kept(target):
                self._queue_copy(pipe, url, target)

    def _queue_copy(self, pipe: Any, src_url: str, dest_url: str) -> None:
        """Queue on ``pipe`` the properties of ``src_url`` (read now) replacing those of
        ``dest_url``."""
        values = self.redis.hgetall(self._key(src_url))
        pipe.delete(self._key(dest_url))
        if values:
            pipe.hset(self._key(dest_url), mapping=values)
            pipe.zadd(self._urls_key, {dest_url: 0})
        else:
            pipe.zrem(self._urls_key, dest_url)

    def replace_tree(self, src_url: str, dest_url: str, keep: Collection[str] = ()) -> None:
        """The dead properties of ``dest_url`` and everything below it become those of
        ``src_url``'s tree, at the same places, but for the trees ``keep`` (URLs below
        ``dest_url``), which keep their own: a folder's COPY onto a folder. One
        transaction, as :meth:`copy_tree`: the destination's properties are the old ones
        or the new ones, never its old ones gone and the new not there."""

        def kept(url: str) -> bool:
            return any(
                url in (k, k.rstrip("/")) or url.startswith(k.rstrip("/") + "/") for k in keep
            )

        with _writing():
            old = [url for url in self._urls_within(dest_url) if not kept(url)]
            pipe = self.redis.pipeline(transaction=True)
            if old:
                pipe.delete(*[self._key(u) for u in old])
                pipe.zrem(self._urls_key, *old)
            self._queue_copies(pipe, src_url, dest_url, kept)
            pipe.execute()

    def copy_properties(self, src_url: str, dest_url: str, environ: object = None) -> None:
        with _writing():
            pipe = self.redis.pipeline(transaction=True)
            self._queue_copy(pipe, src_url, dest_url)
            pipe.execute()

    def move_properties(
        self, src_url: str, dest_url: str, with_children: bool, environ: object = None
    ) -> None:
        """Move the properties of ``src_url`` (and of the URLs below it, ``with_children``)
        to the same places below ``dest_url``, in one transaction (see :meth:`copy_tree`)."""
        with _writing():
            urls = self._urls_within(src_url) if with_children else [src_url]
            src_base, dest_base = src_url.rstrip("/"), dest_url.rstrip("/")
            pipe = self.redis.pipeline(transaction=True)
            for url in urls:
                target = dest_url if url == src_url else dest_base + url[len(src_base) :]
                self._queue_copy(pipe, url, target)
                pipe.delete(self._key(url))
                pipe.zrem(self._urls_key, url)
            pipe.execute()

    def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            client.close()


def share_path_of(ref_url: str) -> str:
    """The share path of a wsgidav ref-URL (quoted, from the root of a ``/`` mount)."""
    return unquote(ref_url)


class Replica:
    """What :func:`share_replicas` started: :meth:`guard` wraps the app, :meth:`close`
    stops the change bus and the lock manager's thread."""

    def __init__(self, ping: Callable[[], object], closers: list[Callable[[], None]]) -> None:
        self._ping = ping
        self._closers = closers

    def guard(self, app: WSGIApp) -> WSGIApp:
        return StateGuard(app, self._ping)

    def close(self) -> None:
        for closer in self._closers:
            try:
                closer()
            except Exception:
                logger.exception("could not stop %r", closer)


def share_replicas(wsgidav: Any, vfs: VFS) -> Replica:
    """Make a wsgidav app whose locks or properties live in Redis a replica.

    Replaces wsgidav's lock manager by a :class:`RedisLockManager` (atomic across
    processes; a granted LOCK forgets the cached metadata of what it locks) and starts a
    :class:`~davstore.vfs.replicas.ChangeBus` on the channel ``<prefix>changes`` of the lock
    storage's Redis (else the property storage's), and follows the share's change journal
    in the stream ``<prefix>journal`` (:mod:`davstore.vfs.journal_redis`), which carries the
    site's own writes too.
    """
    from davstore.vfs.replicas import ChangeBus, new_replica_id

    manager = wsgidav.lock_manager
    locks = manager.storage if manager is not None else None
    props = wsgidav.prop_manager
    if isinstance(locks, RedisLockStorage):
        target = locks.target
    elif isinstance(props, RedisPropertyManager):
        target = props.target
    else:
        raise ValueError("neither the locks nor the properties are kept in Redis")
    replica = new_replica_id()

    def forget(root: str) -> None:
        vfs.invalidate(share_path_of(root))

    closers: list[Callable[[], None]] = []
    if isinstance(locks, RedisLockStorage):
        shared = RedisLockManager(locks, replica=replica, on_lock=forget)
        install_lock_manager(wsgidav, shared)
        closers.append(shared.close)
    bus = ChangeBus(vfs, target.client, channel=f"{target.prefix}changes", replica=replica)
    bus.start()
    closers.insert(0, bus.close)
    from davstore.vfs.journal_redis import StreamFollower, stream_key

    follower = StreamFollower(vfs, target.client, key=stream_key(target.prefix)).start()
    closers.insert(0, follower.close)
    logger.info("replica %s: locks and cache coherence through %r", replica, target)
    pinger = target.client(socket_timeout=2.0)
    closers.append(pinger.close)
    return Replica(pinger.ping, closers)
