"""The HTTP server: cheroot, sized for desktop WebDAV clients.

cheroot's defaults (10 threads, 10 s socket timeout, 10 idle keep-alive connections) are
too small for Explorer, Finder and slow uploads: a client opens several connections and
keeps them, and a large PUT can pause longer than 10 s between packets. The caller starts
the server (``server.safe_start()`` or ``prepare()`` + ``serve()``) and stops it with
``server.stop()``; signals and start-up messages belong to the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cheroot import wsgi

import davstore

__all__ = ["make_server"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
    server = wsgi.Server(
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
