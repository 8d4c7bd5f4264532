"""Processes on one host that serve the same share see each other's changes at once.

gunicorn workers running :func:`davstore.wsgi.with_davstore`, the site's admin pages and a
``davstore serve`` of the same share each have their own VFS and metadata cache. Without
this module, what one of them changes stays unknown to another until its cache entries
expire (``--cache-ttl``, 1 s by default): a client that makes a folder through one
connection and uploads into it through another could get a cached "not found" (409).

A small file in the share's state folder (:data:`FILE_NAME`) holds :data:`SLOTS` slots of
8 bytes, mapped into the memory of every process. After each change made through its VFS,
a process writes a fresh random value into its slot (chosen by pid; two processes that land
on one slot still see each other, their values differ). Before the VFS looks anything up in
its cache, it compares the slots with what it saw last; when another process wrote, it
forgets its whole cache (and its open readers look again), or, with the journal, only what
changed. A check is one 512-byte comparison, a change one 8-byte write: no lock, no system call.

With the share's change journal (:mod:`davstore.vfs.journal`, in the same folder) a
process that sees a change looks the journal up and forgets only the paths it names; the
site's own writes through its Storage are journaled and announced too
(:mod:`davstore.site.announce`). Replicas on other hosts use Redis
(:mod:`davstore.vfs.replicas`).
"""

from __future__ import annotations

import logging
import mmap
import os
import random
import struct
from pathlib import Path

from davstore.vfs import VFS
from davstore.vfs.events import Change
from davstore.vfs.journal import Journal, follow, open_journal

__all__ = ["FILE_NAME", "SLOTS", "HostPeers", "share_with_host_peers"]

logger = logging.getLogger(__name__)

#: The shared file, in the share's state folder.
FILE_NAME = "changes.bin"
#: Slots in the file (processes beyond this many share slots, which stays correct).
SLOTS = 64
_SIZE = SLOTS * 8


class HostPeers:
    """One process's view of the shared change file at ``path`` (created if missing).

    :meth:`changed` answers whether another process announced a change since the last
    call; :meth:`announce` announces one of this process. Raises OSError when the file
    cannot be made or mapped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size < _SIZE:
                # Written, not truncated: a sparse page would be allocated at the first
                # announce, and on a full disk that write through the map is a SIGBUS.
                # Only ever grows: a peer's slots stay as they are.
                os.pwrite(fd, bytes(_SIZE - size), size)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._offset = (os.getpid() + id(self)) % SLOTS * 8
        self._random = random.Random()
        self._seen = bytearray(self._map[:_SIZE])
        #: The share's change journal, when :func:`share_with_host_peers` follows it.
        self.journal: Journal | None = None

    def __repr__(self) -> str:
        return f"HostPeers({str(self.path)!r})"

    def changed(self) -> bool:
        """Whether another process announced a change since the last call."""
        now = self._map[:_SIZE]
        if now == self._seen:
            return False
        self._seen = bytearray(now)
        return True

    def announce(self) -> None:
        """Tell the other processes that this one changed something."""
        stamp = struct.pack("<Q", self._random.getrandbits(64))
        offset = self._offset
        self._map[offset : offset + 8] = stamp
        self._seen[offset : offset + 8] = stamp  # our own change: nothing to forget

    def close(self) -> None:
        self._map.close()
        if self.journal is not None:
            self.journal.close()


def share_with_host_peers(vfs: VFS, state_dir: Path) -> HostPeers | None:
    """Connect ``vfs`` to the other processes serving the share whose state is in
    ``state_dir`` (created if missing), and start the VFS's periodic revalidation
    (:meth:`VFS.start_revalidating`) for what changes behind everyone's back. Returns the
    :class:`HostPeers`, or ``None`` (logged) when the file cannot be used: the revalidation
    interval and the cache TTL then bound what stays unseen."""
    vfs.start_revalidating()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        peers = HostPeers(state_dir / FILE_NAME)
    except OSError as exc:
        logger.warning(
            "other processes' changes show within the revalidation interval only: "
            "cannot use %s: %s",
            state_dir / FILE_NAME,
            exc.strerror or exc,
        )
        return None

    journal = open_journal(state_dir)
    if journal is not None:  # precise: forget the paths the journal names
        follow(vfs, journal, peers.changed, peers.announce)
        peers.journal = journal
        return peers

    def announce(change: Change) -> None:
        peers.announce()

    vfs.subscribe(announce)
    vfs.coherence = peers.changed
    return peers
