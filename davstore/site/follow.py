"""``file_changed`` in the site's process for changes people made in other processes.

:func:`follow_journals` starts one daemon thread per share that watches the share's
host-peers file (:mod:`davstore.vfs.host_peers`) and, when another process announced a change,
reads the new records of the share's journal (:mod:`davstore.vfs.journal`) and sends
:data:`davstore.signals.file_changed` for each change a person made elsewhere (WebDAV,
FUSE, the admin of another process): ``user`` is then the user name, ``origin`` the door.
Changes made in this process already send the signal where they are made, and the site's
own writes through its Storage (origin ``"site"``) send none, as before.

A follower that fell behind the journal's retention logs how many changes it could not
tell; one journal per host: changes of replicas on other hosts are not told here.
"""

from __future__ import annotations

import logging
import threading

from davstore.vfs.events import Action
from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
from davstore.vfs.host_peers import HostPeers
from davstore.vfs.journal import Journal, Record, open_journal, writer_id

__all__ = ["JournalSignals", "follow_journals", "stop_following"]

logger = logging.getLogger(__name__)

_started: dict[str, JournalSignals] = {}
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
        if record.writer.startswith(writer_id()) or record.origin == "site":
            return  # sent where it was made; the site's own writes send nothing
        from davstore.signals import send_record

        send_record(self.share, record, Action(record.action))  # type: ignore[arg-type]
        self.sent += 1


def follow_journals(interval: float = 0.05) -> dict[str, JournalSignals]:
    """Start following every share's journal in this process (once; later calls return
    the running followers). Call it where the site starts (an ``AppConfig.ready``, the
    WSGI module), not in every management command. A share whose state folder cannot be
    used is logged and left out."""
    from davstore.shares import get_shares

    with _lock:
        for name, share in get_shares().items():
            if name in _started:
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
