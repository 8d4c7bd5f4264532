"""Replicas of one share keep their metadata caches coherent through Redis pub/sub.

Every replica (a ``davstore serve`` process, a mount) has its own VFS and its own metadata
cache. A :class:`ChangeBus` publishes each :class:`~davstore.vfs.events.Change` its VFS
makes on a Redis channel, and a listener thread forgets the cached metadata of every path
another replica changed as soon as the message arrives, instead of after the cache TTL.

Messages are JSON: ``{"replica": ID, "action": ..., "path": ..., "target": ...,
"is_dir": ...}``. A replica ignores its own. When the connection to Redis breaks, the
listener reconnects (with a growing pause, up to :data:`MAX_BACKOFF` seconds) and, since
messages may have been missed meanwhile, forgets its whole cache once it is back. A change
whose message cannot be published is logged; the other replicas see it within their TTL.

The bus knows nothing of WebDAV or FUSE: it works on a VFS and a Redis client.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from davstore.vfs import VFS
from davstore.vfs.events import Change

__all__ = ["MAX_BACKOFF", "ChangeBus", "new_replica_id"]

logger = logging.getLogger(__name__)

#: The longest pause between two attempts to reach Redis again.
MAX_BACKOFF = 5.0

RedisFactory = Callable[[], Any]


def new_replica_id() -> str:
    """A name for this process, unique among replicas: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ChangeBus:
    """Publish ``vfs``'s changes on ``channel``; invalidate on the other replicas' changes.

    :param connect: returns a new ``redis.Redis`` client (called again after failures).
    :param replica: this replica's id (default: :func:`new_replica_id`).

    :meth:`start` subscribes to the VFS and starts the listener thread; :meth:`close`
    stops both. :attr:`connected` is set while the listener is subscribed.
    """

    def __init__(
        self,
        vfs: VFS,
        connect: RedisFactory,
        *,
        channel: str,
        replica: str | None = None,
    ) -> None:
        self.vfs = vfs
        self.channel = channel
        self.replica = replica or new_replica_id()
        self.connected = threading.Event()
        self.received = 0  # changes from other replicas applied (tests read it)
        self._connect = connect
        self._publisher: Any = None
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None
        self._publish_failed_at = 0.0

    def __repr__(self) -> str:
        return f"ChangeBus({self.channel!r}, replica={self.replica!r})"

    def start(self) -> ChangeBus:
        self._publisher = self._connect()
        self._unsubscribe = self.vfs.subscribe(self.publish)
        self._thread = threading.Thread(target=self._listen, name="davstore-changes", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._publisher is not None:
            self._publisher.close()

    # -- publishing -------------------------------------------------------------------

    def encode(self, change: Change) -> str:
        return json.dumps(
            {
                "replica": self.replica,
                "action": change.action.value,
                "path": change.path,
                "target": change.target,
                "is_dir": change.is_dir,
            }
        )

    def publish(self, change: Change) -> None:
        """The VFS listener: send ``change`` to the other replicas (failures are logged)."""
        try:
            self._publisher.publish(self.channel, self.encode(change))
        except Exception as exc:
            now = time.monotonic()
            if now - self._publish_failed_at > 10:
                logger.warning(
                    "cannot tell the other replicas about %s %s: %s",
                    change.action.value,
                    change.path,
                    exc,
                )
            self._publish_failed_at = now

    # -- listening --------------------------------------------------------------------

    def apply(self, message: dict[str, Any]) -> bool:
        """Forget what a change from another replica touched; False for our own changes."""
        if message.get("replica") == self.replica:
            return False
        for key in ("path", "target"):
            path = message.get(key)
            if isinstance(path, str) and path:
                self.vfs.forget(path, tree=bool(message.get("is_dir")))
        self.received += 1
        return True

    def _listen(self) -> None:
        backoff = 0.2
        ever_connected = False
        while not self._stop.is_set():
            pubsub = client = None
            try:
                client = self._connect()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                first = pubsub.get_message(timeout=1.0)  # reads the confirmation
                if ever_connected:
                    logger.info("Redis is back: forgetting all cached metadata")
                    self.vfs.invalidate("")
                ever_connected = True
                self.connected.set()
                backoff = 0.2
                message = first
                while not self._stop.is_set():
                    if message is None:
                        message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        self._handle(message.get("data"))
                    message = None
            except Exception as exc:
                if self.connected.is_set():
                    logger.warning("lost the change channel (%s); reconnecting", exc)
                    # Missed messages may leave stale entries: forget everything now too.
                    self.vfs.invalidate("")
                self.connected.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                for thing in (pubsub, client):
                    try:
                        if thing is not None:
                            thing.close()
                    except Exception:
                        logger.debug("closing the subscription failed", exc_info=True)
        self.connected.clear()

    def _handle(self, data: Any) -> None:
        try:
            message = json.loads(data)
            if isinstance(message, dict):
                self.apply(message)
        except (ValueError, TypeError):
            logger.warning("ignored a malformed change message: %.200r", data)
