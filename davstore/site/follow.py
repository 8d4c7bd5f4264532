"""``file_changed`` in the site's process for changes people made in other processes.

:func:`follow_journals` starts one daemon thread per share that watches the share's
host-peers file (:mod:`davstore.vfs.host_peers`) and, when another process announced a change,
reads the new records of the share's journal (:mod:`davstore.vfs.journal`) and sends
:data:`davstore.signals.file_changed` for each change a person made elsewhere (WebDAV,
FUSE, the admin of another process): ``user`` is then the user name, ``origin`` the door.
Changes made in this process already send the signal where they are made, and the site's
own writes through its Storage (origin ``"site"``) send none, as before.

A share whose state is in Redis (``LOCK_STORAGE``/``PROPERTY_STORAGE``) is followed through
its journal stream instead (:mod:`davstore.vfs.journal_redis`), which every replica on
every host appends to: changes people made on other hosts are told too, once each.

A follower that fell behind the journal's retention logs that it could not tell some
changes and goes on from the journal's end.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from davstore.errors import ChangesLost, DavstoreError
from davstore.vfs.events import Action
from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
from davstore.vfs.host_peers import HostPeers
from davstore.vfs.journal import Journal, Record, open_journal, writer_id
from davstore.vfs.journal_redis import StreamFeed, stream_key

__all__ = ["JournalSignals", "StreamSignals", "follow_journals", "stop_following"]

logger = logging.getLogger(__name__)

_started: dict[str, JournalSignals | StreamSignals] = {}
_lock = threading.Lock()


class JournalSignals:
    """One share's follower thread (:meth:`close` stops it)."""

    def __init__(self, share: object, journal: Journal, peers: HostPeers, interval: float) -> None:
        self.share = share
        self.journal = journal
        self.peers = peers
        self.interval = interval
        self.cursor = journal.last()
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="davstore-signals", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.journal.close()
        self.peers.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.peers.changed():
                    self._catch_up()
            except Exception:
                logger.exception("following the journal of %s failed", self.share)

    def _catch_up(self) -> None:
        while True:
            records, lost = self.journal.since(self.cursor)
            if lost:
                first = records[0].seq if records else self.journal.last() + 1
                logger.warning(
                    "%s: %d changes made elsewhere are no longer in the journal; "
                    "file_changed was not sent for them",
                    self.share,
                    first - self.cursor - 1,
                )
            if not records:
                if lost:
                    self.cursor = self.journal.last()
                return
            for record in records:
                self._send(record)
            self.cursor = records[-1].seq

    def _send(self, record: Record) -> None:
        self.sent += _send(self.share, record)


def _send(share: object, record: Record) -> int:
    """Send ``file_changed`` for ``record`` unless this process made it (it sent the
    signal then) or the site did (its own writes send none); how many were sent."""
    if record.writer.startswith(writer_id()) or record.origin == "site":
        return 0
    from davstore.signals import send_record

    send_record(share, record, Action(record.action))  # type: ignore[arg-type]
    return 1


class StreamSignals:
    """One share's follower of its Redis journal stream (:meth:`close` stops it): polls
    the stream every ``interval`` seconds from where it started (its end)."""

    def __init__(self, share: object, client: Any, key: str, interval: float) -> None:
        self.share = share
        self.feed = StreamFeed(client, key)
        self.client = client
        self.interval = interval
        self.sent = 0
        self._failed_at = -60.0
        try:
            self.cursor = self.feed.cursor()
        except DavstoreError as exc:  # Redis away: from the start once it answers
            logger.warning("following the journal stream of %s: %s", share, exc)
            self.cursor = "0-0"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="davstore-signals", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._catch_up()
            except ChangesLost:
                logger.warning(
                    "%s: changes made elsewhere are no longer in the journal stream; "
                    "file_changed was not sent for them",
                    self.share,
                )
                self.cursor = self.feed.cursor()
            except DavstoreError as exc:  # Redis away: said now and then
                now = time.monotonic()
                if now - self._failed_at > 10:
                    logger.warning("following the journal stream of %s: %s", self.share, exc)
                self._failed_at = now
            except Exception:
                logger.exception("following the journal stream of %s failed", self.share)

    def _catch_up(self) -> None:
        until = self.feed.cursor()
        for entry_id, record in self.feed.after(self.cursor, until):
            self.sent += _send(self.share, record)
            self.cursor = entry_id
        self.cursor = until


def follow_journals(interval: float = 0.05) -> dict[str, JournalSignals | StreamSignals]:
    """Start following every share's journal in this process (once; later calls return
    the running followers). Call it where the site starts (an ``AppConfig.ready``, the
    WSGI module), not in every management command. A share whose state folder cannot be
    used is logged and left out."""
    from davstore.frontends.webdav.state import is_redis_url
    from davstore.shares import get_shares

    with _lock:
        for name, share in get_shares().items():
            if name in _started:
                continue
            url = share.config.lock_storage or share.config.property_storage
            if url is not None and is_redis_url(url):
                from davstore.frontends.webdav.state.redis_state import parse_redis_url

                target = parse_redis_url(url)
                key = stream_key(target.prefix)
                _started[name] = StreamSignals(share, target.client(), key, interval)
                continue
            state_dir = share.state_dir()
            try:
                state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                journal = open_journal(state_dir)
                if journal is None:
                    continue
                peers = HostPeers(state_dir / PEERS_FILE)
            except OSError as exc:
                logger.warning("file_changed from other processes of %s: %s", name, exc)
                continue
            _started[name] = JournalSignals(share, journal, peers, interval)
        return dict(_started)


def stop_following() -> None:
    """Stop every follower (tests, a settings change)."""
    with _lock:
        for follower in _started.values():
            follower.close()
        _started.clear()
