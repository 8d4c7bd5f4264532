"""Attribute each request's changes to the user who made them (VFS change events).

:class:`ActingAs` sits in wsgidav's stack right after authentication and runs the rest of
the request, including the iteration of its response body (where wsgidav does its work),
inside :func:`davstore.vfs.events.acting_as` with origin ``"webdav"``. The user is the one
wsgidav authenticated, else the WSGI ``REMOTE_USER`` an outer layer set (the Django app
authenticates in front of wsgidav), else None (anonymous shares).

Each request runs in a copy of the caller's context, so nothing leaks into the next
request served by the same thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from wsgidav.mw.base_mw import BaseMiddleware

from davstore.http.wsgi import Environ, StartResponse
from davstore.vfs.events import acting_as

__all__ = ["ORIGIN", "ActingAs"]

#: The origin of changes made through WebDAV.
ORIGIN = "webdav"

T = TypeVar("T")


class ActingAs(BaseMiddleware):  # type: ignore[misc]
    """Run the rest of the stack as the request's user (see the module docstring)."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        user = environ.get("wsgidav.auth.user_name") or environ.get("REMOTE_USER") or None
        context = contextvars.copy_context()
        body = context.run(_as, user, self.next_app, environ, start_response)
        return _InContext(context, user, body)


def _as(user: str | None, call: Callable[..., T], *args: Any) -> T:
    with acting_as(user, ORIGIN):
        return call(*args)


class _InContext:
    """A response body iterated (and closed) as the request's user."""

    def __init__(self, context: contextvars.Context, user: str | None, body: Any) -> None:
        self._context = context
        self._user = user
        self._body = body
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> _InContext:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(_as, self._user, iter, self._body)
        chunk: bytes = self._context.run(_as, self._user, next, self._iterator)
        return chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(_as, self._user, close)
