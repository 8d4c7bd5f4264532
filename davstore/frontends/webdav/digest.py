"""Digest nonces the server can verify, expire, and never accept twice for one count.

wsgidav's ``HTTPAuthenticator`` issues a random nonce and then accepts any nonce a client
sends (it keeps none), so a captured ``Authorization: Digest`` header can be replayed, with
another body, for as long as the password stays the same. :class:`DigestNonces` closes that:

- A nonce is ``<issued>.<random>.<mac>``: the issue time (seconds since the epoch, hex), 64
  random bits, and an HMAC-SHA256 of both and the realm under the share's *digest secret*.
  Issuing costs no state, so a flood of 401s fills nothing; any process holding the secret
  verifies a nonce (another worker, another replica). A nonce whose MAC does not verify is
  refused outright; one older than :data:`NONCE_LIFETIME` is *stale*: the challenge says
  ``stale=true`` and clients retry with a fresh nonce without asking the user again.
- Each verified request's nonce count (``nc``) is recorded per nonce in a table the
  share's processes share (:class:`SqliteNonceCounts` in the state folder, or
  :class:`RedisNonceCounts` with the replicas' Redis). A count is accepted once: above the
  highest seen, or among the :data:`WINDOW` below it not seen yet (clients with several
  connections send counts slightly out of order; in Redis any count not seen yet). A count
  seen before is a replay: 401.
  Only requests whose digest verified add a row, rows go when their nonce expires, and the
  table holds at most :data:`MAX_NONCES` nonces: when it must forget some, it forgets the
  oldest and from then on treats every nonce issued at or before the newest forgotten one
  as stale (a forgotten nonce is never accepted again). A process that opens the table
  does the same for the nonces issued before it started and not in the table, so rows a
  crash lost never let a count be used twice.

The secret: ``DAVSTORE_DIGEST_SECRET`` in the environment or ``--digest-secret-file`` when
given (replicas on several hosts that do not share Redis), else kept in Redis when the
state is there, else ``digest-secret`` in the share's state folder (created 0600 by the
first process; workers read it).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from davstore.frontends.webdav.state import connect_state_file

__all__ = [
    "DIGEST_SECRET_ENV",
    "MAX_NONCES",
    "NONCE_LIFETIME",
    "SECRET_FILE",
    "WINDOW",
    "DigestNonces",
    "NonceCounts",
    "NonceState",
    "RedisNonceCounts",
    "SqliteNonceCounts",
    "load_secret",
]

logger = logging.getLogger(__name__)

#: Seconds a nonce is good for; an older one is answered ``stale=true``.
NONCE_LIFETIME = 300
#: Nonce counts below the highest seen that may still come (once each).
WINDOW = 64
#: The most nonces whose counts are kept; beyond it the oldest are forgotten (and refused).
MAX_NONCES = 100_000
#: The environment variable that gives the digest secret (any text, 16 bytes or more).
DIGEST_SECRET_ENV = "DAVSTORE_DIGEST_SECRET"  # noqa: S105 - the name of a variable
#: The secret's file in the share's state folder.
SECRET_FILE = "digest-secret"  # noqa: S105 - a file name
#: The nonce counts' file in the share's state folder.
COUNTS_FILE = "digest-nonces.sqlite3"
#: Seconds a nonce's issue time may lie in the future (clocks of replicas).
_SKEW = 60


class NonceState(enum.Enum):
    """What a nonce (with its count) is worth."""

    OK = "ok"
    STALE = "stale"  #: expired or forgotten: a fresh challenge with ``stale=true``
    INVALID = "invalid"  #: not ours, malformed, or its count was used: a fresh challenge


class NonceCounts(Protocol):
    """The nonce counts seen, shared by every process that verifies the share's nonces."""

    def use(self, nonce: str, issued: int, count: int, now: int) -> NonceState:
        """Record ``count`` for ``nonce`` (issued at ``issued``) if it was not seen yet:
        OK; INVALID when it was; STALE when the nonce was forgotten."""

    def close(self) -> None: ...


class DigestNonces:
    """Issue and check Digest nonces for one realm (see the module docstring)."""

    def __init__(
        self,
        secret: bytes | Callable[[], bytes],
        counts: NonceCounts,
        *,
        lifetime: int = NONCE_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """:param secret: the secret, or what reads it when it is first needed (Redis
        may be away when the share starts)."""
        self._secret: bytes | None = None
        self._read_secret = secret if callable(secret) else (lambda: secret)
        self._secret_lock = threading.Lock()
        self.counts = counts
        self.lifetime = lifetime
        self._clock = clock

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self._secret_lock:
                if self._secret is None:
                    secret = self._read_secret()
                    if len(secret) < 16:
                        raise ValueError("the digest secret must be 16 bytes or more")
                    self._secret = secret
        return self._secret

    def issue(self, realm: str) -> str:
        """A fresh nonce for a challenge of ``realm``."""
        head = f"{int(self._clock()):x}.{secrets.token_hex(8)}"
        return f"{head}.{self._mac(realm, head)}"

    def check(self, realm: str, nonce: str) -> tuple[NonceState, int]:
        """Whether ``nonce`` is one this share issued for ``realm`` and is not expired,
        with its issue time."""
        head, dot, mac = nonce.rpartition(".")
        issued_hex, _, random_hex = head.partition(".")
        if not dot or not _is_hex(issued_hex, 16) or not _is_hex(random_hex, 16):
            return NonceState.INVALID, 0
        if not hmac.compare_digest(mac, self._mac(realm, head)):
            return NonceState.INVALID, 0
        issued, now = int(issued_hex, 16), int(self._clock())
        if issued > now + _SKEW:
            return NonceState.INVALID, issued
        if now - issued > self.lifetime:
            return NonceState.STALE, issued
        return NonceState.OK, issued

    def use(self, realm: str, nonce: str, nc: str) -> NonceState:
        """Check ``nonce`` and record its count ``nc`` (8 hex digits): OK at most once per
        count (call only for a request whose digest verified)."""
        state, issued = self.check(realm, nonce)
        if state is not NonceState.OK:
            return state
        nc = nc.lower()  # RFC 7616 says lower case; be lenient
        if not _is_hex(nc, 8):
            return NonceState.INVALID
        count = int(nc, 16)
        if count < 1:
            return NonceState.INVALID
        return self.counts.use(nonce, issued, count, int(self._clock()))

    def _mac(self, realm: str, head: str) -> str:
        message = f"{realm}\0{head}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]


def _is_hex(text: str, most: int) -> bool:
    return 0 < len(text) <= most and all(c in "0123456789abcdef" for c in text)


def _accept(top: int, seen: int, count: int) -> tuple[int, int] | None:
    """The new ``(top, seen)`` of a nonce after ``count``, or None when ``count`` was seen
    (``seen``: bit ``i`` set when ``top - i`` was seen, ``top`` included as bit 0)."""
    if count > top:
        shift = count - top
        seen = ((seen << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
        return count, seen
    back = top - count
    if back >= WINDOW or seen >> back & 1:
        return None
    return top, seen | (1 << back)


class SqliteNonceCounts:
    """Nonce counts in a SQLite file of the share's state folder, shared by the workers of
    one host (and kept across restarts)."""

    #: Rows added between two purges of the expired ones.
    PURGE_EVERY = 256

    def __init__(
        self, path: str, *, lifetime: int = NONCE_LIFETIME, most: int = MAX_NONCES
    ) -> None:
        self.lifetime = lifetime
        self.most = most
        self._lock = threading.Lock()
        self._added = 0
        self._db = connect_state_file(
            path,
            "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, issued INTEGER NOT NULL,"
            " top INTEGER NOT NULL, seen INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS nonces_issued ON nonces (issued)",
            "CREATE TABLE IF NOT EXISTS forgotten (id INTEGER PRIMARY KEY CHECK (id = 0),"
            " until INTEGER NOT NULL)",
        )
        self._db.execute("PRAGMA busy_timeout = 10000")
        # A commit need not reach the disk (a count is one request): the rows a crash
        # loses are covered by forgetting, at every start, the nonces issued before it
        # that the table does not hold (they are answered stale=true, and retried).
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(
            "INSERT INTO forgotten VALUES (0, ?) ON CONFLICT (id) DO UPDATE"
            " SET until = max(until, excluded.until)",
            (int(time.time()) - 1,),
        )

    def use(self, nonce: str, issued: int, count: int, now: int) -> NonceState:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                state = self._use(nonce, issued, count, now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return state

    def _use(self, nonce: str, issued: int, count: int, now: int) -> NonceState:
        db = self._db
        row = db.execute("SELECT top, seen FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
        if row is None:
            (until,) = db.execute("SELECT until FROM forgotten").fetchone()
            if issued <= until:
                return NonceState.STALE
            db.execute("INSERT INTO nonces VALUES (?, ?, ?, ?)", (nonce, issued, count, 1))
            self._added += 1
            if self._added % self.PURGE_EVERY == 0:
                self._purge(now)
            return NonceState.OK
        accepted = _accept(row[0], _signed_to_bits(row[1]), count)
        if accepted is None:
            return NonceState.INVALID
        db.execute(
            "UPDATE nonces SET top = ?, seen = ? WHERE nonce = ?",
            (accepted[0], _bits_to_signed(accepted[1]), nonce),
        )
        return NonceState.OK

    def _purge(self, now: int) -> None:
        db = self._db
        db.execute("DELETE FROM nonces WHERE issued < ?", (now - self.lifetime - _SKEW,))
        (rows,) = db.execute("SELECT count(*) FROM nonces").fetchone()
        if rows > self.most:
            cut = db.execute(
                "SELECT issued FROM nonces ORDER BY issued LIMIT 1 OFFSET ?", (rows - self.most,)
            ).fetchone()[0]
            db.execute("DELETE FROM nonces WHERE issued <= ?", (cut,))
            db.execute("UPDATE forgotten SET until = max(until, ?)", (cut,))
            logger.warning("more than %d Digest nonces in use: the oldest were forgotten", rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _signed_to_bits(value: int) -> int:
    return value & ((1 << 64) - 1)


def _bits_to_signed(bits: int) -> int:
    """``bits`` (64 of them) as SQLite's signed 64-bit integer."""
    return bits - (1 << 64) if bits >= 1 << 63 else bits


class RedisNonceCounts:
    """Nonce counts in the replicas' Redis: a hash ``P nonce:<nonce>`` of the counts seen,
    expiring with the nonce; ``HSETNX`` makes one replica the first to see a count."""

    def __init__(self, client: Any, prefix: str, *, lifetime: int = NONCE_LIFETIME) -> None:
        self._redis = client
        self._prefix = prefix
        self.lifetime = lifetime

    def use(self, nonce: str, issued: int, count: int, now: int) -> NonceState:
        key = self._prefix + "nonce:" + nonce
        pipe = self._redis.pipeline()
        pipe.hsetnx(key, str(count), 1)
        pipe.expire(key, self.lifetime + _SKEW)
        first, _ = pipe.execute()
        return NonceState.OK if first else NonceState.INVALID

    def close(self) -> None:
        """Nothing: the client belongs to the lock storage."""


def load_secret(
    state_dir: Path, *, explicit: bytes | None = None, redis: tuple[Any, str] | None = None
) -> bytes:
    """The share's digest secret: ``explicit`` (``--digest-secret-file``), else
    ``DAVSTORE_DIGEST_SECRET``, else the one in Redis (``(client, prefix)``), else the
    state folder's ``digest-secret`` (made 0600 by the first process to need it)."""
    if explicit is None and os.environ.get(DIGEST_SECRET_ENV):
        explicit = os.environ[DIGEST_SECRET_ENV].encode()
    if explicit is not None:
        if len(explicit.strip()) < 16:
            raise ValueError("the digest secret must be 16 bytes or more")
        return explicit.strip()
    if redis is not None:
        client, prefix = redis
        client.set(prefix + "digest-secret", secrets.token_hex(32), nx=True)
        stored: bytes | str = client.get(prefix + "digest-secret")
        return stored.encode() if isinstance(stored, str) else stored
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        # Written in one piece; a reader that finds it empty waits for the writer below.
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    deadline = time.monotonic() + 5
    while True:
        secret = path.read_bytes().strip()
        if secret or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if len(secret) < 16:
        raise ValueError(f"the digest secret in {path} is too short (delete it to make one)")
    if path.stat().st_mode & 0o077:
        logger.warning("%s can be read by other users: chmod 600 it", path)
    return secret
