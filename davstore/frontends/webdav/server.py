"""The HTTP server: granian's Rust HTTP/1.1 engine, running the WSGI app in this process.

Why not cheroot (the server this module used first): on a 2-core machine a no-op WSGI app
on a tuned cheroot answers ~5,000 small requests per second on one connection and ~5,500 on
16, because request-line and header parsing, the keep-alive hand-offs between its selector
and worker threads and the socket writes are all Python holding the GIL. granian parses and
writes in Rust (hyper) outside the GIL: the same no-op app answers ~7,500 on one connection
and ~18,000 on 16 (benchmarks/README.md has the figures). The WebDAV work is still Python;
the server around it no longer is.

granian's own entry points (its CLI and ``granian.server``) run the application in worker
processes or threads they own, with their own signal handling. ``davstore serve`` owns the
process instead: it builds one VFS, handles SIGINT/SIGTERM itself and commits open files
on stop. So this module drives granian's WSGI worker directly, as granian's thread-mode
server does (``granian/server/mt.py``), which ties it to granian's internal API:
``pyproject.toml`` pins the granian minor version this was written against.

The pieces granian leaves to the caller, done here:

- the listening socket is made here (``SO_REUSEADDR``, not ``SO_REUSEPORT``: a second
  server on a port in use must fail, not share it silently; only ``--workers`` share a port,
  through sockets their parent made: :func:`listen_sockets`) and handed over by descriptor;
- ``start_response`` may be called while the application's iterable is first iterated
  (PEP 3333 allows that, and wsgidav's answers do it): the first chunks are taken before
  the head is handed to granian;
- requests in progress are counted, so :meth:`Server.stop` can wait for them for the
  grace period;
- TLS key and certificate are checked before serving, with a clear message (granian reads
  PKCS#8 keys only).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

try:
    from granian.http import HTTP1Settings

    # Internal modules: their type stubs lag behind the code, so they are used untyped.
    _granian: Any = importlib.import_module("granian._granian")
    _futures: Any = importlib.import_module("granian._futures")
    _loops: Any = importlib.import_module("granian._loops")
except ImportError as exc:  # pragma: no cover - an installation without a matching granian
    raise ImportError(
        f"davstore's HTTP server needs granian 2.8 (pip install 'granian>=2.8,<2.9'): {exc}"
    ) from exc

__all__ = ["Server", "check_tls", "listen_sockets", "make_server"]

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Keys every request's environ starts from (PEP 3333; granian adds the request's own).
_BASE_ENVIRON: dict[str, Any] = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SCRIPT_NAME": "",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,  # granian decodes chunked bodies; input ends at b""
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}


#: Connections granian serves at once. It holds a slot for as long as a connection is open
#: (idle keep-alive ones too), so this must stay far above the thread count: with as many
#: slots as threads, the connections beyond them were never answered while the first ones
#: stayed open (tests/webdav/test_server.py).
_BACKPRESSURE = 4096

#: Bytes read at a time while looking for the end of a line.
_LINE_READ = 8192

#: A body this short is handed to granian as one ``bytes`` (one write with its head); a
#: longer one streams, starting with its first ``_WHOLE`` bytes.
_WHOLE = 256 * 1024


class _StartResponse:
    """The ``start_response`` of one request: keeps status and headers until they are sent."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.sent = False

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = headers
        return self._write

    @staticmethod
    def _write(data: bytes) -> None:
        raise NotImplementedError("the write() callable of start_response is not supported")


class _Input:
    """``wsgi.input`` over granian's request body, as PEP 3333 describes it.

    granian's own refuses ``read(-1)``, and its ``readline`` drops the newline and ends
    the iteration after the first line; lines are therefore cut here, from ``read``.
    """

    __slots__ = ("_body", "_buffer")

    def __init__(self, body: Any) -> None:
        self._body = body
        self._buffer = b""

    def read(self, size: int | None = -1) -> bytes:
        buffered = self._buffer
        if size is None or size < 0:
            self._buffer = b""
            return buffered + self._body.read()  # type: ignore[no-any-return]
        if not buffered:
            return self._body.read(size)  # type: ignore[no-any-return]
        if len(buffered) >= size:
            self._buffer = buffered[size:]
            return buffered[:size]
        self._buffer = b""
        return buffered + self._body.read(size - len(buffered))  # type: ignore[no-any-return]

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        line = self._buffer
        while True:
            end = line.find(b"\n") + 1
            if end or (limit is not None and len(line) >= limit):
                break
            more = self._body.read(_LINE_READ)
            if not more:
                end = len(line)
                break
            line += more
        if not end:
            end = len(line)
        if limit is not None:
            end = min(end, limit)
        self._buffer = line[end:]
        return line[:end]

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _Body:
    """The rest of a response body after its first chunk; reports its end once."""

    __slots__ = ("_done", "_first", "_inner", "_iter")

    def __init__(self, first: bytes, inner: Iterable[bytes], it: Iterator[bytes], done: Any):
        self._first: bytes | None = first
        self._inner = inner
        self._iter = it
        self._done = done

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return next(self._iter)

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


class _Requests:
    """Counts requests in progress, so that a stop can wait for them.

    Without a lock: ``begin`` and ``end`` are one list operation each (atomic under the
    GIL). A lock taken twice by every request made the request threads queue behind each
    other whenever its holder lost the GIL (a convoy: two context switches a request).
    """

    #: How often :meth:`wait_idle` looks again.
    POLL = 0.02

    def __init__(self) -> None:
        self._active: list[None] = []

    def begin(self) -> None:
        self._active.append(None)

    def end(self) -> None:
        self._active.pop()

    @property
    def count(self) -> int:
        return len(self._active)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._active:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.POLL, left))
        return True


def _runner(app: WSGIApp, requests: _Requests, script_name: str) -> Callable[[Any, Any], int]:
    """granian's request callback for ``app`` (one call per request, on a Python thread)."""
    base = dict(_BASE_ENVIRON, SCRIPT_NAME=script_name)

    def run(proto: Any, scope: dict[str, Any]) -> int:
        requests.begin()
        finished = False
        try:
            environ = base | scope
            environ["wsgi.input"] = _Input(environ["wsgi.input"])
            start_response = _StartResponse()
            result = app(environ, start_response)
            try:
                if type(result) is list and start_response.status:
                    start_response.sent = True
                    proto.response_bytes(
                        start_response.status, start_response.headers, b"".join(result)
                    )
                    return start_response.status
                it = iter(result)
                head: list[bytes] = []
                size = 0
                for chunk in it:  # a small body whole, else up to _WHOLE bytes of it
                    if chunk:
                        head.append(chunk)
                        size += len(chunk)
                        if size >= _WHOLE:
                            break
                else:
                    start_response.sent = True
                    proto.response_bytes(
                        start_response.status, start_response.headers, b"".join(head)
                    )
                    return start_response.status
                if not start_response.status:
                    raise RuntimeError("the application sent a body before start_response")
                start_response.sent = True
                body = _Body(b"".join(head), result, it, requests.end)
                finished = True  # from here on, the body's close() ends the request
                proto.response_iter(start_response.status, start_response.headers, body)
                return start_response.status
            finally:
                if not finished:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        finally:
            if not finished:
                requests.end()

    return run


def _listen(host: str, port: int, backlog: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one ``host:port`` (port 0: a free one), each as
    :class:`Server` binds its own, with ``SO_REUSEPORT``: the kernel spreads the new
    connections evenly over them (one listening socket shared by several processes went
    mostly to one of them). ``davstore serve --workers`` gives one to each worker. Raises
    OSError (the port is taken: by the first)."""
    if port:  # anything on the port (another group of workers too) makes this bind fail
        _listen(host, port, 1).close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_listen(host, port, 128, reuse_port=True))
            port = sockets[0].getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def check_tls(cert: str | Path, key: str | Path) -> None:
    """Raise ValueError/OSError unless ``cert`` and ``key`` are a usable PEM pair for granian."""
    cert, key = os.fspath(cert), os.fspath(key)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    with open(key, "rb") as handle:
        text = handle.read()
    if b"-----BEGIN PRIVATE KEY-----" not in text:
        raise ValueError(
            f"{key}: the key must be an unencrypted PKCS#8 PEM ('BEGIN PRIVATE KEY'); "
            f"convert it with: openssl pkcs8 -topk8 -nocrypt -in {key} -out key-pkcs8.pem"
        )


class Server:
    """granian serving one WSGI app on ``host:port``.

    ``prepare()`` binds the port (an ``OSError`` when it is taken), ``serve()`` blocks
    until ``stop()``, and ``stop()`` stops accepting, then waits up to
    :attr:`shutdown_timeout` seconds for requests in progress before returning.
    """

    #: Seconds :meth:`stop` waits for requests in progress.
    shutdown_timeout: float = 5.0

    def __init__(
        self,
        app: WSGIApp,
        host: str,
        port: int,
        *,
        threads: int,
        timeout: float,
        tls_cert: str | None,
        tls_key: str | None,
        io_threads: int = 1,
        sock: socket.socket | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self.timeout = timeout
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.io_threads = io_threads
        self.bind_addr: tuple[str, int] = (host, port)
        self._socket: socket.socket | None = None
        if sock is not None:  # listening already (a worker of ``davstore serve --workers``)
            sock.setblocking(False)
            self._socket = sock
            self.bind_addr = sock.getsockname()[:2]
        self._signal = _granian.WorkerSignal()
        self._stopping = threading.Event()
        self._served = threading.Event()
        self._requests = _Requests()

    def prepare(self) -> None:
        """Bind and listen (port 0 picks a free port; :attr:`bind_addr` has the real one)."""
        if self._socket is None:
            self._socket = _listen(self.host, self.port, 128)
            self.bind_addr = self._socket.getsockname()[:2]

    def serve(self) -> None:
        """Serve until :meth:`stop` (binds first if :meth:`prepare` was not called)."""
        self.prepare()
        assert self._socket is not None
        if self._stopping.is_set():
            return
        holder = _granian.SocketHolder(self._socket.detach(), False, 128)  # granian closes it
        tls = self.tls_cert is not None and self.tls_key is not None
        worker = _granian.WSGIWorker(
            1,  # worker id
            (None, holder),
            None,  # no inter-process channel: one worker, this process
            self.io_threads,  # Rust threads doing the HTTP work
            512,  # Rust blocking threads (file and socket work granian does itself)
            self.threads,  # Python threads running the application
            30,  # seconds an idle Python thread is kept
            _BACKPRESSURE,  # connections served at once (requests wait for a thread)
            "1",  # HTTP/1.1 (WebDAV clients do not speak h2 without TLS)
            HTTP1Settings(header_read_timeout=int(self.timeout * 1000), keep_alive=True),
            None,  # no HTTP/2 settings
            None,  # no static files
            tls,
            self.tls_cert,
            self.tls_key,
            None,  # key password
            "tls1.2",
            None,  # no client certificates
            [],
            False,
            (None, None),  # no granian metrics (davstore has its own)
        )
        loop = _loops.loops.get("asyncio")
        try:
            scheduler = _futures._new_cbscheduler(
                loop, _runner(self.app, self._requests, ""), impl_asyncio=True
            )
            stopped = threading.Event()
            self._signal.add_cb(stopped.set)
            worker.serve_mtr(scheduler, loop, self._signal)
            stopped.wait()
        finally:
            loop.close()
            self._served.set()

    @property
    def in_progress(self) -> int:
        """Requests being handled now."""
        return self._requests.count

    def stop(self) -> None:
        """Stop accepting, wait for requests in progress (up to :attr:`shutdown_timeout`).

        Requests still in progress then are left running (:attr:`in_progress` says how
        many): granian cannot cut a connection off, the process has to end for that.
        """
        self._stopping.set()
        self._signal.set()
        if self._requests.wait_idle(self.shutdown_timeout):
            self._served.wait(5)
        if self._socket is not None:
            self._socket.close()  # when serve() never ran (else it is granian's, detached)


def make_server(
    app: WSGIApp,
    host: str,
    port: int,
    *,
    threads: int = 64,
    timeout: float = 300,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    sock: socket.socket | None = None,
) -> Server:
    """The HTTP server for ``app`` on ``host:port`` (not started yet).

    :param threads: requests handled at once (each on its own Python thread).
    :param timeout: seconds a connection may stay silent before its next request's head.
    :param tls_cert: a PEM certificate (chain) file: serve HTTPS with ``tls_key``, an
        unencrypted PKCS#8 PEM key. Raises ValueError or OSError when they are not usable.
    :param sock: a socket listening already, to serve instead of binding ``host:port``
        (each worker of ``davstore serve --workers`` gets one its parent made).
    """
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together")
    if tls_cert is not None and tls_key is not None:
        check_tls(tls_cert, tls_key)
    return Server(
        app,
        host,
        port,
        threads=threads,
        timeout=timeout,
        tls_cert=None if tls_cert is None else os.fspath(tls_cert),
        tls_key=None if tls_key is None else os.fspath(tls_key),
        sock=sock,
    )
