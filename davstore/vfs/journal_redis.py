"""The change journal across hosts: a Redis stream per share, a cursor per reader.

Replicas of a share (``davstore serve`` processes and mounts on several hosts) whose state
is in Redis append every change their VFS makes to the stream ``<prefix>journal``, and the
site appends its own writes (:mod:`davstore.site.announce`): the same records as the
SQLite journal of one host (:class:`davstore.vfs.journal.Record`, as JSON in the field
``r``). The stream is capped at about :data:`~davstore.vfs.journal.RETENTION` entries.

A :class:`StreamFollower` reads the stream from its cursor (the id of the last entry it
applied) with a blocking ``XREAD`` on a thread of its own and forgets the cached metadata
of the paths each entry names. After a broken connection it goes on from its cursor: no
change is missed and nothing is forgotten needlessly, unless entries after the cursor may
have been trimmed meanwhile (the stream's oldest entry is newer than the cursor): it then
forgets its whole cache.

It knows nothing of WebDAV, FUSE or Django: it works on a VFS and a Redis client.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from davstore.errors import ChangesLost, StoreError
from davstore.vfs import VFS
from davstore.vfs.events import Change
from davstore.vfs.journal import RETENTION, Record, forget, writer_id

__all__ = ["StreamFeed", "StreamFollower", "append", "stream_key"]

logger = logging.getLogger(__name__)

RedisFactory = Callable[[], Any]

#: The longest pause between two attempts to reach Redis again.
MAX_BACKOFF = 5.0


def stream_key(prefix: str) -> str:
    """The journal's stream for the keys under ``prefix``."""
    return f"{prefix}journal"


def append(client: Any, key: str, record: Record) -> str:
    """XADD ``record`` to the stream ``key`` (capped near the retention); its id."""
    added = client.xadd(key, {"r": record.to_json()}, maxlen=RETENTION, approximate=True)
    return added.decode() if isinstance(added, bytes) else str(added)


def _id(raw: Any) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _decode(fields: dict[Any, Any]) -> Record | None:
    raw: Any = fields.get(b"r", fields.get("r"))
    try:
        data = json.loads(raw)
        return Record(**{k: v for k, v in data.items() if k != "seq"})
    except (TypeError, ValueError):
        logger.warning("ignored a malformed journal entry: %.200r", raw)
        return None


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class StreamFeed:
    """The journal stream ``key`` as sync clients read it
    (:class:`davstore.vfs.sync.ChangeFeed`): cursors are stream entry ids. Its identity is
    kept beside the stream (``<key>:id``, made by the first reader), so a stream made
    again (its Redis emptied) is another journal. Raises StoreError when Redis cannot be
    reached.

    :param client: a ``redis.Redis`` client (thread-safe: a connection pool).
    """

    spans_hosts = True

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key
        self._ident: str | None = None

    def __repr__(self) -> str:
        return f"StreamFeed({self.key!r})"

    def ident(self) -> str:
        try:
            raw = self.client.get(f"{self.key}:id")
            if raw is None:
                self.client.set(f"{self.key}:id", uuid.uuid4().hex, nx=True)
                raw = self.client.get(f"{self.key}:id")
        except Exception as exc:
            raise StoreError("", f"cannot read the journal stream: {exc}") from exc
        return _text(raw)

    def _info(self) -> dict[Any, Any] | None:
        try:
            info: dict[Any, Any] = self.client.xinfo_stream(self.key)
        except Exception as exc:
            if "no such key" in str(exc).lower():
                return None
            raise StoreError("", f"cannot read the journal stream: {exc}") from exc
        return info

    def cursor(self) -> str:
        info = self._info()
        if info is None:
            return "0-0"
        last = info.get("last-generated-id", info.get(b"last-generated-id"))
        return _text(last) if last else "0-0"

    def after(self, cursor: str, until: str) -> Iterator[tuple[str, Record]]:
        try:
            start, end = _id(cursor), _id(until)
        except ValueError as exc:
            raise ChangesLost("", f"not a position in this journal: {cursor!r}") from exc
        if start > end:
            raise ChangesLost("", f"not a position in this journal: {cursor!r}")
        if start == end:
            return
        info = self._info() or {}
        first = info.get("first-entry", info.get(b"first-entry"))
        if start == (0, 0):
            added = info.get("entries-added", info.get(b"entries-added"))
            length = info.get("length", info.get(b"length"))
            if added is not None and length is not None and int(added) > int(length):
                raise ChangesLost("", "changes after this position are past the retention")
        elif not first or _id(first[0]) > start:
            # Its own entry trimmed (or the stream gone): the ones after it may be too.
            raise ChangesLost("", "changes after this position are past the retention")
        low = f"{start[0]}-{start[1] + 1}"
        while True:
            try:
                entries = self.client.xrange(self.key, min=low, max=until, count=1000)
            except Exception as exc:
                raise StoreError("", f"cannot read the journal stream: {exc}") from exc
            for entry_id, fields in entries:
                record = _decode(fields)
                if record is not None:
                    yield _text(entry_id), record
            if len(entries) < 1000:
                return
            last = _id(entries[-1][0])
            low = f"{last[0]}-{last[1] + 1}"


class StreamFollower:
    """Append ``vfs``'s changes to the stream ``key``; apply the others' at once.

    :param connect: returns a new ``redis.Redis`` client (called again after failures).

    :meth:`start` starts at the stream's end (the cache is empty); :meth:`close` stops.
    :attr:`applied` counts entries of other writers applied, :attr:`dropped` the times the
    whole cache was forgotten (tests read them).
    """

    def __init__(self, vfs: VFS, connect: RedisFactory, *, key: str) -> None:
        self.vfs = vfs
        self.key = key
        self.writer = f"{writer_id()}-stream-{id(self):x}"
        self.cursor = "0-0"
        self.applied = 0
        self.dropped = 0
        self.connected = threading.Event()
        self._connect = connect
        self._publisher: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._failed_at = 0.0

    def __repr__(self) -> str:
        return f"StreamFollower({self.key!r}, cursor={self.cursor!r})"

    def start(self, cursor: str | None = None) -> StreamFollower:
        """Start following from ``cursor`` (a saved one), else from the stream's end."""
        self._publisher = self._connect()
        if cursor is not None:
            self.cursor = cursor
        else:
            self._start_at_end()
        self._unsubscribe = self.vfs.subscribe(self.record)
        from davstore.vfs.sync import offer

        offer(self.vfs, StreamFeed(self._publisher, self.key))
        self._thread = threading.Thread(target=self._follow, name="davstore-journal", daemon=True)
        self._thread.start()
        return self

    def _start_at_end(self) -> None:
        try:
            info = self._publisher.xinfo_stream(self.key)
            last = info.get("last-generated-id", info.get(b"last-generated-id"))
            if last:
                self.cursor = last.decode() if isinstance(last, bytes) else str(last)
        except Exception as exc:  # no stream yet (or Redis away): from the start
            logger.debug("journal stream %s: %s", self.key, exc)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._publisher is not None:
            self._publisher.close()

    def record(self, change: Change) -> None:
        """The VFS listener: append ``change`` to the stream (failures are logged)."""
        try:
            append(self._publisher, self.key, Record.of(change, self.writer))
        except Exception as exc:
            now = time.monotonic()
            if now - self._failed_at > 10:
                logger.warning(
                    "cannot journal %s %s in Redis: %s", change.action.value, change.path, exc
                )
            self._failed_at = now

    def _lost(self, client: Any) -> bool:
        """Whether entries after the cursor may have been trimmed before this reader read
        them: the stream's oldest entry is newer than the cursor (the cursor's own entry
        trimmed: only a reader far behind, since trimming keeps the newest
        :data:`~davstore.vfs.journal.RETENTION`), or, for a reader that started on an empty
        stream, anything was ever trimmed."""
        try:
            info = client.xinfo_stream(self.key)
        except Exception:
            return False  # no stream: nothing was ever trimmed
        first = info.get("first-entry", info.get(b"first-entry"))
        if not first:
            return False
        if _id(self.cursor) == (0, 0):
            added = info.get("entries-added", info.get(b"entries-added"))
            length = info.get("length", info.get(b"length"))
            return added is not None and length is not None and int(added) > int(length)
        return _id(first[0]) > _id(self.cursor)

    def _follow(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            client = None
            try:
                client = self._connect()
                self.connected.set()
                backoff = 0.2
                while not self._stop.is_set():
                    answer = client.xread({self.key: self.cursor}, count=1000, block=500)
                    for _key, entries in answer or ():
                        # Trimmed between the cursor and these? (After a reconnection too:
                        # whatever was kept after the cursor comes in this first batch.)
                        if self._lost(client):
                            self._drop()
                        for entry_id, fields in entries:
                            record = _decode(fields)
                            if record is not None and record.writer != self.writer:
                                forget(self.vfs, record)
                                self.applied += 1
                            self.cursor = (
                                entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                            )
            except Exception as exc:
                if self.connected.is_set():
                    logger.warning(
                        "lost the journal stream (%s); going on from %s", exc, self.cursor
                    )
                self.connected.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        logger.debug("closing the journal client failed", exc_info=True)
        self.connected.clear()

    def _drop(self) -> None:
        logger.info("fell behind the journal stream %s: forgetting all metadata", self.key)
        self.vfs.invalidate("")
        self.dropped += 1
