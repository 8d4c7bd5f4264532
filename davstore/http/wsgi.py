"""The WSGI types (PEP 3333) and the quick-path contract of :mod:`davstore.http.server`.

An application the server runs may implement either or both of two optional methods; the
server looks for them once, when it is made (:class:`~davstore.http.server.Server`):

- :class:`RunsInline`: requests it says yes to run on the event loop's thread, once their
  body is whole, with no hand-over to a pool thread;
- :class:`AnswersQuick`: it may answer a request from its head (and a small body), before
  any environ is made.

Both must only say yes to requests answered in well under a millisecond: the event loop
serves every connection of the process meanwhile.

An answer's body may also be a :class:`FileBody`: bytes of an open regular file, which the
server sends with ``sendfile(2)`` from its event loop (the kernel copies them from the
page cache to the socket; no thread waits on a slow client) instead of reading them into
Python. Over TLS, and in any other WSGI server, it is an ordinary iterable of bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AnswersQuick",
    "Environ",
    "FileBody",
    "QuickResponse",
    "RawHeaders",
    "RunsInline",
    "StartResponse",
    "WSGIApp",
]

#: A request's environ.
Environ = dict[str, Any]
#: ``start_response(status, headers, exc_info=None)``.
StartResponse = Callable[..., Any]
#: A WSGI application.
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
#: A request's headers as they came: ``(name, value)`` pairs of bytes.
RawHeaders = list[tuple[bytes, bytes]]


class FileBody:
    """An answer's body: ``length`` bytes at ``offset`` of the open regular file ``fd``.

    The answer's ``Content-Length`` must be given, and be ``length``. The server sends it
    with ``sendfile(2)`` (davstore's server: from the event loop, without a thread; see
    server.py); iterated, it gives the bytes in pieces of ``block_size`` read with
    ``os.pread``, so it serves over TLS and in any WSGI server too. Neither reads move the
    file's position. A file that turns out shorter ends the body early: the server then
    closes the connection (the client sees fewer bytes than the Content-Length said).
    :meth:`close` (called by the server, PEP 3333) calls ``close``, which owns ``fd``, then
    what :meth:`on_close` added (a middleware that counts the bytes sent: ``sent``).
    """

    __slots__ = ("_close", "_then", "block_size", "closed", "fd", "length", "offset", "sent")

    def __init__(
        self,
        fd: int,
        offset: int,
        length: int,
        close: Callable[[], None],
        *,
        block_size: int = 1 << 20,
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.block_size = block_size
        self._close = close
        self._then: list[Callable[[], None]] = []
        self.closed = False
        #: Bytes sent so far (the server counts what sendfile sent; iteration what it gave).
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        offset, left = self.offset, self.length
        while left > 0:
            data = os.pread(self.fd, min(left, self.block_size), offset)
            if not data:
                return  # shorter than promised: the server closes the connection
            offset += len(data)
            left -= len(data)
            self.sent += len(data)
            yield data

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the body is closed (after the file)."""
        self._then.append(callback)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._close()
            finally:
                for callback in self._then:
                    callback()


#: An answer made on the event loop: ``(status, headers, body)``.
QuickResponse = tuple[str, list[tuple[str, str]], bytes | FileBody]


@runtime_checkable
class RunsInline(Protocol):
    """An application some of whose requests run on the event loop's thread."""

    def runs_inline(self, environ: Environ) -> bool:
        """Whether this request (its body whole) may run on the loop's thread."""
        ...


@runtime_checkable
class AnswersQuick(Protocol):
    """An application that may answer a request before any environ is made."""

    def answer_quick(
        self, method: str, path: str, headers: RawHeaders, client: str, body: bytes
    ) -> QuickResponse | None:
        """``(status, headers, body)``, sent as a WSGI answer with those would be (``body``
        bytes, or a :class:`FileBody`), or
        None: the request then goes to the WSGI application as any other, its body
        included. ``path`` is ``PATH_INFO`` as PEP 3333 has it, ``client`` the peer's
        address."""
        ...
