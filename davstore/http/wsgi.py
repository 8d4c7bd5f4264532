"""The WSGI types (PEP 3333) and the quick-path contract of :mod:`davstore.http.server`.

An application the server runs may implement either or both of two optional methods; the
server looks for them once, when it is made (:class:`~davstore.http.server.Server`):

- :class:`RunsInline`: requests it says yes to run on the event loop's thread, once their
  body is whole, with no hand-over to a pool thread;
- :class:`AnswersQuick`: it may answer a request from its head (and a small body), before
  any environ is made.

Both must only say yes to requests answered in well under a millisecond: the event loop
serves every connection of the process meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AnswersQuick",
    "Environ",
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
#: An answer made on the event loop: ``(status, headers, body)``.
QuickResponse = tuple[str, list[tuple[str, str]], bytes]


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
        """``(status, headers, body)``, sent as a WSGI answer with those would be, or
        None: the request then goes to the WSGI application as any other, its body
        included. ``path`` is ``PATH_INFO`` as PEP 3333 has it, ``client`` the peer's
        address."""
        ...
