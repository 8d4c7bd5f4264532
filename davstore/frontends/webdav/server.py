"""The HTTP server: cheroot, sized for desktop WebDAV clients.

cheroot's defaults (10 threads, 10 s socket timeout, 10 idle keep-alive connections) are
too small for Explorer, Finder and slow uploads: a client opens several connections and
keeps them, and a large PUT can pause longer than 10 s between packets. The caller starts
the server (``server.safe_start()`` or ``prepare()`` + ``serve()``) and stops it with
``server.stop()``; signals and start-up messages belong to the CLI.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cheroot import makefile as cheroot_files
from cheroot import server as cheroot_server
from cheroot import wsgi

import davstore

__all__ = ["Server", "make_server"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _HoldingWriter(cheroot_files.StreamWriter):
    """cheroot's socket writer, able to keep one write back until the next one.

    cheroot writes a response's head and each body chunk with separate ``send`` calls;
    holding the head back makes a small response one TCP segment instead of two.
    """

    holding = False
    _held: bytes | None = None

    def write(self, b: Any) -> int:
        size = len(b)
        if self.holding:
            self.holding = False
            self._held = bytes(b)
            return size
        held, self._held = self._held, None
        super().write(b if held is None else held + bytes(b))  # type: ignore[no-untyped-call]
        return size

    def release(self) -> None:
        """Send what is held back."""
        self.holding = False
        held, self._held = self._held, None
        if held is not None:
            super().write(held)  # type: ignore[no-untyped-call]


class _Request(cheroot_server.HTTPRequest):
    """Sends the response head together with the first body chunk."""

    def send_headers(self) -> None:
        wfile = self.conn.wfile
        if isinstance(wfile, _HoldingWriter):
            wfile.holding = True
        super().send_headers()

    def respond(self) -> None:
        try:
            super().respond()
        finally:
            wfile = self.conn.wfile
            if isinstance(wfile, _HoldingWriter):
                wfile.release()


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request

    def __init__(self, server: Any, sock: Any, makefile: Any = cheroot_files.MakeFile) -> None:
        super().__init__(server, sock, makefile)
        if type(self.wfile) is cheroot_files.StreamWriter:
            self.wfile = _HoldingWriter(sock, "wb", self.wbufsize)


class Server(wsgi.Server):
    """cheroot's WSGI server, with less overhead per request on a kept-alive connection.

    After a response, the worker waits up to ``linger`` seconds for the connection's next
    request and serves it itself: a client sending request after request on one
    connection then skips the hand-off to cheroot's selector thread and back.
    """

    ConnectionClass = _Connection
    linger = 0.002

    def put_conn(self, conn: Any) -> None:
        if self.ready and self.linger and not conn.rfile.has_data():
            try:
                readable, _, _ = select.select([conn.socket], [], [], self.linger)
            except (OSError, ValueError):
                readable = []
            if readable:
                self.process_conn(conn)
                return
        super().put_conn(conn)


def make_server(
    app: WSGIApp,
    host: str,
    port: int,
    *,
    threads: int = 64,
    timeout: float = 300,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
) -> wsgi.Server:
    """A cheroot WSGI server for ``app`` on ``host:port`` (not started yet).

    :param threads: worker threads, so many at once (each serves one connection at a time).
    :param timeout: seconds a connection may stay silent (slow uploads, idle keep-alive).
    :param tls_cert: a PEM certificate (chain) file: serve HTTPS with ``tls_key``.
    """
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together")
    server = Server(
        (host, port),
        app,
        numthreads=threads,
        max=threads,
        server_name=f"davstore/{davstore.__version__}",
        request_queue_size=128,
        timeout=int(timeout),
        shutdown_timeout=5,
        accepted_queue_size=-1,
    )
    server.keep_alive_conn_limit = max(threads * 2, 10)
    server.max_request_header_size = 64 * 1024
    server.max_request_body_size = 0  # no cap here: upload limits are the app's choice
    if tls_cert is not None and tls_key is not None:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(tls_cert), str(tls_key))
    return server
