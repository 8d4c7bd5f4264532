"""HTTP Basic authentication against the project's Django users, with a credential cache.

:class:`DjangoAuthenticator` checks a user name and password with
``django.contrib.auth.authenticate(request=None, username=..., password=...)``, so the
project's own ``AUTHENTICATION_BACKENDS`` decide (a backend that needs the request gets
None). Inactive users are refused even when a backend lets them in. Failed logins are
logged (user name and client address, never the password).

Checking a password costs one password hash (~0.3 s of CPU with Django's default hasher),
and WebDAV clients send the credentials with every request, so verified credentials are
kept for ``ttl`` seconds, keyed on the user name and a keyed hash of the password (the
password itself is not kept). Each reuse costs one small query that reads the user's
password hash and active flag: a changed password or a deactivated account drops the entry
at once, also when the change was made by another process. Permission and group changes
apply when the entry expires.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DjangoAuthenticator"]

logger = logging.getLogger(__name__)

#: At most this many verified credentials are kept; the oldest go first.
MAX_ENTRIES = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    user: Any
    expires: float
    password_hash: str


class DjangoAuthenticator:
    """Verify Basic credentials against Django users (see the module docstring).

    :param ttl: seconds verified credentials are reused (0: check every request).
    :param clock: monotonic time, for tests.
    """

    def __init__(self, ttl: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, bytes], _Entry] = {}

    def __call__(self, username: str, password: str, *, client: str = "?") -> Any | None:
        """The active user with these credentials, else None (logged, without the password)."""
        key = (username, hmac.new(self._secret, password.encode(), hashlib.sha256).digest())
        if self.ttl > 0:
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None:
                if entry.expires > self._clock() and _unchanged(entry):
                    return entry.user
                with self._lock:
                    self._entries.pop(key, None)
        user = self._authenticate(username, password)
        if user is None:
            logger.warning("WebDAV login failed for user %r from %s", username, client)
            return None
        if self.ttl > 0:
            self._remember(key, _Entry(user, self._clock() + self.ttl, _password_hash(user)))
        return user

    def forget(self) -> None:
        """Drop every cached credential."""
        with self._lock:
            self._entries.clear()

    @staticmethod
    def _authenticate(username: str, password: str) -> Any | None:
        from django.contrib.auth import authenticate

        user = authenticate(request=None, username=username, password=password)
        if user is None or not getattr(user, "is_active", False):
            return None
        return user

    def _remember(self, key: tuple[str, bytes], entry: _Entry) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                now = self._clock()
                for stale in [k for k, e in self._entries.items() if e.expires <= now]:
                    del self._entries[stale]
                while len(self._entries) >= MAX_ENTRIES:
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = entry


def _password_hash(user: Any) -> str:
    return str(getattr(user, "password", "") or "")


def _unchanged(entry: _Entry) -> bool:
    """Whether the user still has the password hash seen at login and is still active."""
    model = type(entry.user)
    fields = ["password"]
    if any(f.name == "is_active" for f in model._meta.concrete_fields):
        fields.append("is_active")
    row = model._default_manager.filter(pk=entry.user.pk).values_list(*fields).first()
    if row is None or row[0] != entry.password_hash:
        return False
    return len(row) < 2 or bool(row[1])
