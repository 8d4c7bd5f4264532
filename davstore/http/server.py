"""The HTTP server: HTTP/1.1 on one event loop (uvloop, httptools), the WSGI app on threads.

Why this server: a server that hands every keep-alive request from an I/O thread to a
Python thread and back pays context switches and GIL hand-overs per request, more than a
small request's own work (benchmarks/README.md, "Why davstore has its own HTTP server",
has the servers compared and the figures). Here:

- one thread per process runs an asyncio event loop (uvloop: libuv) that accepts the
  connections, parses the requests (httptools: llhttp, in C) and writes the answers;
- a request the application calls *quick* runs on that thread as soon as its body is
  whole, with no hand-over at all: the application says so through an optional
  ``runs_inline(environ)`` (davstore's: a small PUT to a local store, which writes to the
  page cache), or answers it from its head through an optional ``answer_quick`` (davstore's:
  a plain GET of a small file whose bytes are in the page cache, read without waiting);
- every other request runs on a pool of ``threads`` threads, once its body is whole or
  1 MiB of it has arrived (or its client waits for ``100 Continue``): a body that
  trickles in waits on the loop and costs its connection, not a thread. The rest of a
  longer body streams to the thread with flow control (reading from the client pauses
  while 1 MiB waits), and must keep arriving at :data:`MIN_BODY_RATE` while the thread
  waits for it (408 beyond). The answer streams back through the loop: when 1 MiB of it
  waits unsent, the thread is given back and the rest is written from a thread again
  once the client has read, so a client that reads slowly holds no thread and at most
  that much memory, and a 1 GiB transfer is never held whole;
- one client address holds at most ``threads_per_client`` threads at once (its other
  requests wait on the loop) and ``max_connections_per_client`` connections (503
  beyond); at start the soft limit of open files is raised to the hard one, and near it
  the connections that waited longest for a request are closed first.

After an answer, the loop keeps polling its sockets for ``busy_poll`` seconds (default
:data:`BUSY_POLL`) before it sleeps, while no request runs on a thread (whose Python
would wait for the GIL meanwhile), as Go's scheduler spins before it parks a thread: a
client that sends its next request within that time finds the loop awake. A sleeping
CPU costs the request that wakes it more than the work of a small GET (on a virtual
machine the wake-up is an exit to the hypervisor, and the loop's code and data come back
cold; benchmarks/README.md has the figures). It costs at most that much CPU per burst of
requests, nothing while the server is idle; ``busy_poll=0`` turns it off.

An answer whose body is a :class:`~davstore.http.wsgi.FileBody` (a range of an open
regular file: davstore's GETs of files on local disk) is sent with ``sendfile(2)`` from
the event loop once its head is written: the kernel copies the bytes from the page cache
to the socket, the socket stays non-blocking, and what it does not take now goes when it
is writable again (at most ``_SENDFILE_TURN`` bytes a turn of the loop); the thread that
made the answer is given back at once, after asking the kernel to read the first part
ahead (``POSIX_FADV_WILLNEED``). Pages of a cold file on a disk that readahead has not
brought in yet are read by sendfile on the loop, as nginx does without its thread pool.
Over TLS the body is read and written as any other.

HTTP/1.1 as clients use it: keep-alive and pipelining (answers in order), chunked
request bodies (decoded; ``wsgi.input`` ends at ``b""``), ``Expect: 100-continue`` (the
``100 Continue`` goes out when the application first reads the body, so a refusal such as
413 comes before the client sends it), chunked answers when the application names no
length, TLS. Timeouts: a request head must be whole within ``header_timeout`` seconds of its
first byte (of the connection's start, for its first request), however it trickles in
(408), as nginx's ``client_header_timeout``; a connection silent for ``timeout`` seconds
before its next request's head is closed, and so is one whose body or reading of the
answer stalls that long (the request then fails as if the client had gone: an upload
keeps the old content). docs/SECURITY.md has the limits and their defaults.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import email.utils
import io
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools
import uvloop

from davstore.http.wsgi import (
    AnswersQuick,
    Environ,
    FileBody,
    QuickResponse,
    RunsInline,
    WSGIApp,
)

__all__ = [
    "BUSY_POLL",
    "HEADER_TIMEOUT",
    "MAX_CONNECTIONS_PER_CLIENT",
    "MIN_BODY_RATE",
    "QUICK_BODY",
    "ClientGone",
    "Server",
    "check_tls",
    "listen_sockets",
    "make_server",
    "raise_open_files_limit",
    "tls_context",
    "usable_cpus",
]

logger = logging.getLogger(__name__)


#: Keys every request's environ starts from (PEP 3333).
_BASE_ENVIRON: dict[str, Any] = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SCRIPT_NAME": "",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,  # chunked bodies are decoded; input ends at b""
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (systemd's default
    soft limit is 1024, whatever the hard one); return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the limit of open files from %d: %s", soft, exc)
        return soft
    return wanted


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The CPUs this process may use: those it may run on, fewer under its control group's
    CPU quota (a container's CPU limit; cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = float(len(affinity(0)) if affinity is not None else os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        if (cgroup / "cpu.max").exists():
            quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        else:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota not in ("max", "-1"):
            cpus = min(cpus, int(quota) / int(period))
    return cpus


#: Seconds the loop polls after an answer before it sleeps (see above), where the process
#: may use two CPUs or more: on one, polling would keep the client waiting, and under a
#: container's CPU limit it would spend the quota.
BUSY_POLL = 300e-6 if usable_cpus() >= 2 else 0.0

#: Bytes a request line and its headers may take (431 beyond).
MAX_HEAD = 64 * 1024

#: An answer this short goes out whole, with its head, in one write; a longer one streams.
_WHOLE = 256 * 1024

#: Request body bytes waiting for the application before reading from the client pauses.
_BODY_HIGH = 1 << 20

#: Unsent answer bytes above which the thread writing the answer gives its thread back (and
#: below which the rest of the answer is written again from a thread): the most a
#: connection buffers of its answer, however slowly its client reads.
_WRITE_HIGH = 1 << 20
_WRITE_LOW = 256 << 10

#: Seconds a connection may take to send a whole request head, from its first byte (from
#: the connection's start for its first request); bytes that trickle in do not extend it.
HEADER_TIMEOUT = 20.0

#: Connections one client address may hold open at once (beyond, a new one is refused
#: with 503), as nginx's ``limit_conn``.
MAX_CONNECTIONS_PER_CLIENT = 256

#: A request body that holds a thread (over ``_BODY_HIGH`` bytes, or sent after
#: ``100 Continue``) must arrive at this many bytes a second, averaged over
#: ``_RATE_WINDOW`` seconds, while the thread waits for it (408 beyond), as Apache's
#: ``mod_reqtimeout`` ``MinRate``. A body shorter than ``_BODY_HIGH`` arrives on the
#: event loop first and costs no thread, only its connection.
MIN_BODY_RATE = 1024
_RATE_WINDOW = 10.0

#: File descriptors kept free of connections: for the store's files, the state's
#: databases, the log. Nearer the limit, idle connections are closed first.
_FD_RESERVE = 128

#: Bytes of a :class:`FileBody` sent with ``sendfile`` per turn of the event loop, at most
#: (other connections get their turn between).
_SENDFILE_TURN = 4 << 20

#: Bytes read at a time while looking for the end of a line.
_LINE_READ = 8192

#: After an answer that left its request's body unread: bytes of it still read and dropped
#: to keep the connection, and seconds the rest may take before the connection closes.
_DRAIN_LIMIT = 1 << 20
_LINGER = 2.0

#: Requests of one connection parsed and waiting for their answers before reading pauses.
_PIPELINE = 32

#: Bytes of request heads parsed at a time (a body goes whole; see _Connection._feed).
_SLICE = 4096

#: How often idle connections are looked at (seconds).
_SWEEP = 1.0

_NO_BODY_STATUSES = frozenset({204, 304})
#: Request headers that keep a request from ``answer_quick`` (a body of unknown length,
#: or one the client waits to send, or another protocol).
_BODY_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
#: The largest body a request offered to ``answer_quick`` may have.
QUICK_BODY = 64 * 1024
#: Header names (as applications spell them) that _answer writes without a look.
_PASSED_AS_IS = frozenset(
    {"Accept-Ranges", "Cache-Control", "Content-Type", "DAV", "ETag", "Last-Modified"}
    | {"Location", "Lock-Token", "MS-Author-Via", "WWW-Authenticate"}
)


class ClientGone(ConnectionError):
    """The client closed the connection, or stayed silent longer than the timeout."""


class _HeadTooLarge(Exception):
    pass


class _Refused(Exception):
    """A request head the server refuses: ``status`` and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _DuplicateHeader(Exception):
    """A header that holds one value came twice (joined, it would be another value)."""


class _Date:
    """The ``Date`` header's value, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(now, usegmt=True)
        return self._value


_date = _Date()


class _StartResponse:
    """The ``start_response`` of one request: keeps status and headers until they are sent."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.sent = False

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = status
        self.headers = headers
        return self._write

    @staticmethod
    def _write(data: bytes) -> None:
        raise NotImplementedError("the write() callable of start_response is not supported")


class _BodyPipe:
    """A request body on its way from the event loop (``feed``, ``end``, ``fail``) to the
    thread that reads it (``read``), with flow control."""

    __slots__ = (
        "_asked",
        "_chunks",
        "_cond",
        "_conn",
        "_size",
        "_want",
        "arrived",
        "discarding",
        "ended",
        "error",
        "mark",
        "paused",
        "total",
        "waiting",
    )

    def __init__(self, conn: _Connection) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._chunks: collections.deque[bytes | memoryview] = collections.deque()
        self._size = 0
        self._want = 0  # bytes the reader waits for (the queue may grow that long)
        self.arrived = time.monotonic()  # when the client last sent some of the body
        self._conn = conn
        self.ended = False
        self.error: BaseException | None = None
        self.paused = False  # the loop stopped reading from the client for this body
        self.discarding = False  # answered: what still comes is dropped
        self._asked = False  # the loop was told the application waits for the body
        self.total = 0  # bytes that arrived
        self.waiting = False  # a thread waits for more of the body
        self.mark = (0.0, 0)  # (when, total) the rate of arrival is measured from

    @property
    def size(self) -> int:
        """Bytes that arrived and wait for the reader."""
        return self._size

    def too_slow(self, now: float) -> bool:
        """Whether the body arrives slower than :data:`MIN_BODY_RATE` while a thread waits
        for it (called by the loop's sweep; the measure restarts whenever no thread waits)."""
        since, total = self.mark
        if not self.waiting or self.ended or not since:
            self.mark = (now, self.total)
            return False
        if now - since < _RATE_WINDOW:
            return False
        self.mark = (now, self.total)
        return self.total - total < MIN_BODY_RATE * (now - since)

    # The loop's side.

    def feed(self, data: bytes) -> bool:
        """Queue ``data``; True when reading from the client should pause."""
        with self._cond:
            if self.discarding:
                return False
            self._chunks.append(data)
            self._size += len(data)
            self.total += len(data)
            self.arrived = time.monotonic()
            if self._size >= self._want:  # wake the reader only when it has enough
                self._cond.notify()
            return self._size > _BODY_HIGH and self._size > self._want

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if not self.ended:
                self.error = error
                self._cond.notify_all()

    def discard(self) -> None:
        """The answer went out: drop what waits and whatever still comes."""
        with self._cond:
            self.discarding = True
            self._chunks.clear()
            self._size = 0

    # The reading thread's side.

    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes (all that is left for a negative ``size``); ``b""`` at the
        end. Raises ClientGone when the client went away or sent nothing for ``timeout``."""
        with self._cond:
            if size < 0:
                self._want = sys.maxsize
                while not self.ended:
                    self._wait(timeout)
                data = b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
                return data
            self._want = size
            while self._size < size and not self.ended:
                self._wait(timeout)  # a file's read(size): short only at the end
            self._want = 0
            if not self._chunks:
                return b""
            data = self._take(size)
            self._size -= len(data)
            if self.paused and self._size <= _BODY_HIGH // 2:
                self.paused = False
                self._conn.resume_body()
            return data

    def _take(self, size: int) -> bytes:
        """The first ``size`` bytes queued (fewer at the end), each byte copied at most
        once: the pieces are joined, and the part of a piece past ``size`` stays queued as
        a view of it. A big PUT reads 1 MiB at a time from the loop's pieces of up to 256
        KiB, so joining and then cutting the result would copy most bytes twice, a good
        part of a big upload's CPU (benchmarks/README.md)."""
        chunks = self._chunks
        parts: list[bytes | memoryview] = []
        got = 0
        while got < size and chunks:
            part = chunks.popleft()
            need = size - got
            if len(part) > need:
                view = memoryview(part)
                chunks.appendleft(view[need:])
                part = view[:need]
            parts.append(part)
            got += len(part)
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    def _wait(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error
        if not self._asked:
            self._asked = True
            self._conn.body_wanted()  # 100 Continue
        if self.paused:  # a read longer than the queue's limit
            self.paused = False
            self._conn.resume_body()
        self.waiting = True
        try:
            self._cond.wait(timeout)
        finally:
            self.waiting = False
        if self.error is not None:
            raise self.error
        if not self.ended and time.monotonic() - self.arrived >= timeout:
            raise ClientGone(f"the request body stalled for {timeout:g} s")


class _Input:
    """``wsgi.input`` of a request run on a thread, as PEP 3333 describes it."""

    __slots__ = ("_buffer", "_pipe", "_timeout")

    def __init__(self, pipe: _BodyPipe, timeout: float) -> None:
        self._pipe = pipe
        self._timeout = timeout
        self._buffer = b""

    def read(self, size: int | None = -1) -> bytes:
        buffered = self._buffer
        if size is None or size < 0:
            self._buffer = b""
            return buffered + self._pipe.read(-1, self._timeout)
        if not buffered:
            return self._pipe.read(size, self._timeout) if size else b""
        if len(buffered) >= size:
            self._buffer = buffered[size:]
            return buffered[:size]
        self._buffer = b""
        return buffered + self._pipe.read(size - len(buffered), self._timeout)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        line = self._buffer
        while True:
            end = line.find(b"\n") + 1
            if end or (limit is not None and len(line) >= limit):
                break
            more = self._pipe.read(_LINE_READ, self._timeout)
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


class _Request:
    """One request of a connection, from its head to its answer."""

    __slots__ = (
        "answered",
        "body",
        "body_left",
        "chunks",
        "complete",
        "environ",
        "head_sent",
        "head_size",
        "headers",
        "http10",
        "inline",
        "keep_alive",
        "no_body",
        "quick",
        "refused",
        "url",
        "wants_continue",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.environ: dict[str, Any] = {}
        self.inline = False
        self.chunks: list[bytes] = []  # the body of an inline request
        self.body: _BodyPipe | None = None  # the body of a request run on a thread
        self.body_left = 0  # body bytes still to come, by its Content-Length (or 64 KiB)
        self.complete = False  # the whole body arrived
        self.keep_alive = True
        self.http10 = False
        self.no_body = False  # HEAD: the answer's body is not sent
        self.wants_continue = False  # Expect: 100-continue, not answered yet
        self.answered = False  # by the application's answer_quick
        self.quick = False  # to be offered to answer_quick once its body is whole
        #: Refused by the server while its application ran (a malformed or too slow body):
        #: what the application answers is dropped, the refusal goes instead.
        self.refused = False
        self.head_sent = False  # the answer's head was written


class _Answer:
    """The head of one answer, and how its body is framed."""

    __slots__ = ("chunked", "close", "has_body", "head", "left")

    def __init__(
        self, head: bytes, *, has_body: bool, chunked: bool, close: bool, left: int | None
    ) -> None:
        self.head = head
        self.has_body = has_body  # False for HEAD, 1xx, 204 and 304
        self.chunked = chunked
        self.close = close  # the connection ends after this answer
        self.left = left  # body bytes still owed by Content-Length; None: not framed so

    @property
    def short(self) -> bool:
        """Less body was sent than its Content-Length said (the connection must close)."""
        return self.has_body and bool(self.left)


class _Connection(asyncio.Protocol):
    """One client connection: parses its requests and answers them in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        assert server.loop is not None
        self.loop = server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.requests: collections.deque[_Request] = collections.deque()
        self.reading: _Request | None = None  # the request whose head or body is arriving
        self.busy = False  # requests[0] is being answered
        self.closed = False
        self.write_paused = False
        self.idle_since: float | None = time.monotonic()
        self.peer = ("", 0)
        self.local = ("", 0)
        self.body_paused = False  # a body's queue is full
        self.reading_paused = False  # the transport does not read (see _flow)
        self.unparsed = b""  # read but not parsed yet: many requests wait (see _feed)
        self.base_environ: dict[str, Any] = {}  # the environ's keys this connection fixes
        self.in_next = False  # _next is running (an inline answer must not call it again)
        self.ignoring = False  # what the client sends is not parsed any more
        self.refusal: tuple[int, str] | None = None  # to send once the answers before it are
        #: When the request head now arriving began (None: no head is arriving).
        self.head_started: float | None = time.monotonic()
        #: A long answer waiting for its client to read (its thread was given back):
        #: written again from a thread on resume_writing.
        self.parked: tuple[_Request, _Answer, Iterable[bytes], Iterator[bytes]] | None = None
        self.write_stalled_since: float | None = None  # the transport's buffer is full
        self.counted = False  # in the server's count of connections per client
        #: A FileBody being sent with sendfile (requests[0]'s answer), on the loop.
        self.sending: _FileSend | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(_WRITE_HIGH, _WRITE_LOW)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.local = (str(local[0]), int(local[1])) if local else ("", 0)
        self.base_environ = dict(
            self.server.base_environ,
            SERVER_NAME=self.local[0],
            SERVER_PORT=str(self.local[1]),
            REMOTE_ADDR=self.peer[0],
        )
        self.server.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.release(self)
        gone = ClientGone("the client closed the connection")
        for request in self.requests:
            if request.body is not None:
                request.body.fail(gone)
        parked, self.parked = self.parked, None
        if parked is not None:  # its thread ends it: closes its result, finishes it
            self.server.submit(self._stream_rest, *parked)
        if self.sending is not None:
            self._end_sendfile(True)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_stalled_since = time.monotonic()
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.write_stalled_since = None
        parked, self.parked = self.parked, None
        if parked is not None:
            self.on_thread(self._stream_rest, *parked)
        self._flow()
        self._next()

    def data_received(self, data: bytes) -> None:
        if self.ignoring:
            return
        if self.unparsed:
            data, self.unparsed = self.unparsed + data, b""
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse ``data``; stop where many requests wait for their answers (the rest is
        kept for :meth:`_flow`). A request's body goes in one piece, heads in slices of
        ``_SLICE`` bytes, so a burst of tiny pipelined requests is cut short."""
        while data:
            if len(self.requests) > _PIPELINE:
                self.unparsed = data
                return
            request = self.reading
            size = _SLICE + (request.body_left if request is not None else 0)
            if len(data) <= size:
                piece, data = data, b""
            else:
                piece, data = data[:size], data[size:]
            if not self._parse(piece):
                return

    def _feed_unparsed(self) -> None:
        data, self.unparsed = self.unparsed, b""
        if data and not self.closed and not self.ignoring:
            self._feed(data)

    def _parse(self, data: bytes) -> bool:
        """Feed the parser; False when the connection reads no more."""
        try:
            self.parser.feed_data(data)
            return not self.ignoring
        except httptools.HttpParserUpgrade:
            # Upgrade (h2c, websocket) and CONNECT: the request was parsed; the bytes after
            # it are another protocol, so the connection ends with its answer.
            self.ignoring = True
            if self.requests:
                self.requests[-1].keep_alive = False
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            refused = exc if isinstance(exc, _Refused) else cause
            if isinstance(refused, _Refused):
                self._unreadable(refused.status, refused.reason)
            elif isinstance(exc, _HeadTooLarge) or isinstance(cause, _HeadTooLarge):
                self._unreadable(431, "Request Header Fields Too Large")
            elif isinstance(exc, _DuplicateHeader) or isinstance(cause, _DuplicateHeader):
                self._unreadable(400, "Bad Request")
            else:
                if not isinstance(exc, httptools.HttpParserError):
                    logger.error("while reading a request: %s", exc, exc_info=exc)
                self._unreadable(400, "Bad Request")
        return False

    def _unreadable(self, status: int, reason: str) -> None:
        """The bytes that came are no request: answer the requests before them, then
        refuse and close."""
        self.ignoring = True
        request, self.reading = self.reading, None
        if request is not None and request.body is not None:  # its body is malformed
            request.body.fail(ClientGone(f"the request was refused: {status} {reason}"))
        if request is not None and request in self.requests:
            request.keep_alive = False
            if self.busy and self.requests[0] is request:
                request.refused = True  # its answer is the refusal (or none, if it began)
            else:
                self.requests.remove(request)
        if self.requests:
            self.refusal = (status, reason)  # after the answers before it
            self.requests[-1].keep_alive = False
        else:
            self._refuse(status, reason)

    def eof_received(self) -> bool | None:
        """The client sent all it will (it may still read): answer what arrived, then close.

        A body cut short ends there: the application finds it shorter than its
        Content-Length and refuses it (an upload keeps the old content)."""
        if self.unparsed:  # all the client sends is here: parse the rest now
            data, self.unparsed = self.unparsed, b""
            self._parse(data)
        request, self.reading = self.reading, None
        if request is not None and request.quick:  # its body broke off: the usual way
            request.quick = False
            self._take(request)
        if request is not None:
            request.complete = True
            request.keep_alive = False
            if request.body is not None:
                request.body.end()
            self._next()  # a request waiting for the rest of its body
        if not self.requests:
            return None  # nothing to answer: close
        self.requests[-1].keep_alive = False
        return True

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.reading = _Request()
        if self.head_started is None:
            self.head_started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        request = self.reading
        assert request is not None
        request.url += url
        request.head_size += len(url)
        if request.head_size > MAX_HEAD:
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.reading
        assert request is not None
        request.headers.append((name, value))
        request.head_size += len(name) + len(value) + 4
        if request.head_size > MAX_HEAD:
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        request = self.reading
        assert request is not None
        self.head_started = None
        self._check_head(request)
        if self.server.answer_quick is not None and not self.requests:
            length = self._quick_length(request)
            if length == 0:
                if self._quick(request):
                    return
            elif length is not None:  # offered once its body is whole (on_message_complete)
                request.quick = True
                request.body_left = length
                self.idle_since = time.monotonic()  # its body has the timeout to arrive
                return
        self._take(request)

    def _take(self, request: _Request) -> None:
        """Queue ``request`` for the application (its head is complete; of its body, what
        ``chunks`` holds has arrived)."""
        self._environ(request)
        run_inline = self.server.runs_inline
        # A client waiting for 100 Continue: the application refuses or reads first, on a
        # thread (401 and 403 come before any 100 Continue).
        request.inline = (
            run_inline is not None and not request.wants_continue and run_inline(request.environ)
        )
        environ = request.environ
        declared = environ.get("CONTENT_LENGTH") or "0"
        if "HTTP_TRANSFER_ENCODING" in environ:
            request.body_left = 1 << 16  # chunked: parse it in pieces of that size
        elif declared.isdigit():
            request.body_left = int(declared)
        if declared == "0" and "HTTP_TRANSFER_ENCODING" not in environ:
            request.complete = True  # no body (a thread may answer before on_message_complete)
        if request.inline:
            self.idle_since = time.monotonic()  # its body has the timeout to arrive
        else:
            request.body = _BodyPipe(self)  # its thread times a stalled body out
            for chunk in request.chunks:  # what came while answer_quick was to be offered
                request.body.feed(chunk)
            request.chunks = []
            if request.complete:
                request.body.end()
            self.idle_since = None
        self.requests.append(request)
        if len(self.requests) > _PIPELINE:
            self._flow()
        self._next()

    def on_body(self, body: bytes) -> None:
        request = self.reading
        assert request is not None
        if request.body_left and "HTTP_TRANSFER_ENCODING" not in request.environ:
            request.body_left -= len(body)
        pipe = request.body
        if pipe is None:
            request.chunks.append(body)
            return
        if pipe.feed(body) and not self.body_paused:
            pipe.paused = True
            self.body_paused = True
            self._flow()
        ready = pipe.size >= _BODY_HIGH and self.requests and self.requests[0] is request
        if ready and not self.busy:
            self._next()  # a body that arrives fast goes to its thread before its end

    def on_message_complete(self) -> None:
        request = self.reading
        assert request is not None
        self.reading = None
        if request.answered:
            return
        if request.quick:  # its body is whole: offered now
            request.quick = False
            if self._quick(request):
                return
            self._take(request)
        request.complete = True
        if request.body is not None:
            request.body.end()
            if request.body.discarding:
                self._drained(request)
            elif not self.busy:
                self._next()  # it waited for its body on the loop
        else:
            self._next()

    def _check_head(self, request: _Request) -> None:
        """Raise _Refused for a head no HTTP/1.1 server may answer as asked (RFC 9112):
        another major version (505), HTTP/1.1 without ``Host`` (400), the asterisk form
        (``*``) with another method than OPTIONS (400)."""
        parser = self.parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise _Refused(505, "HTTP Version Not Supported")
        if version == "1.1" and not any(name.lower() == b"host" for name, _ in request.headers):
            raise _Refused(400, "Bad Request")
        if request.url == b"*" and parser.get_method() != b"OPTIONS":
            raise _Refused(400, "Bad Request")

    # The requests, in order

    def _quick_length(self, request: _Request) -> int | None:
        """The length of the body ``request`` will have, when it may be offered to the
        application's ``answer_quick`` (see :class:`Server`); None when it may not: a
        chunked or announced body, one over ``QUICK_BODY`` bytes, HTTP/1.0, a connection
        to close, a client that does not read, a single-valued header sent twice."""
        parser = self.parser
        if self.write_paused or self.server.stopping or not parser.should_keep_alive():
            return None
        if parser.get_http_version() != "1.1":
            return None
        length: int | None = None
        single: set[bytes] = set()
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                if length is not None or not value.isdigit():
                    return None  # the usual way answers it (or refuses it)
                length = int(value)
            elif lowered in _BODY_HEADERS:
                return None
            elif lowered in _SINGLE_VALUED_NAMES:
                if lowered in single:
                    return None  # the usual way refuses it
                single.add(lowered)
        if length is None:
            return 0
        return length if length <= QUICK_BODY else None

    def _quick(self, request: _Request) -> bool:
        """Offer ``request``, whole, to the application's ``answer_quick`` and send its
        answer; False when it declines (or fails): the request goes on as any."""
        if self.write_paused or self.closed:
            return False
        parser = self.parser
        url = httptools.parse_url(request.url)
        path = url.path or b"/"
        method = parser.get_method().decode("latin-1")
        answer_quick = self.server.answer_quick
        assert answer_quick is not None
        try:
            answer = answer_quick(
                method,
                (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
                request.headers,
                self.peer[0],
                b"".join(request.chunks),
            )
        except Exception:
            logger.exception("%s %r: answer_quick failed", method, request.url)
            return False
        if answer is None:
            return False
        status, headers, body = answer
        start = _StartResponse()
        start(status, headers)
        request.no_body = method == "HEAD"
        request.complete = request.answered = True
        transport = self.transport
        assert transport is not None
        request.chunks = []
        if isinstance(body, FileBody):
            return self._quick_file(request, start, body)
        head = self._answer(request, start, body)
        transport.write(head.head + _frame(head, body) if body else head.head)
        if head.close:  # the server is stopping
            transport.close()
        self.idle_since = time.monotonic()  # waiting for the next request's head
        self.server.answered()
        return True

    def _quick_file(self, request: _Request, start: _StartResponse, body: FileBody) -> bool:
        """Send the FileBody answer ``answer_quick`` gave (its request is the connection's
        only one): queued as the request being answered, so that what the client sends
        next waits for its end."""
        self.requests.append(request)
        self.busy = True
        self.server.active += 1
        self.idle_since = None
        try:
            answer = self._file_answer(request, start, body)
        except Exception:
            logger.exception("%s %r: a quick answer failed", start.status, request.url)
            _close_body(body)
            self._write_error(request)
            return True
        if self.server.tls is None:
            self._send_file_body(request, answer, body)
            return True
        transport = self.transport
        assert transport is not None
        transport.write(answer.head)  # over TLS: read and written from a thread
        request.head_sent = True
        start.sent = True
        self.on_thread(self._stream_rest, request, answer, body, iter(body))
        return True

    def _environ(self, request: _Request) -> None:
        parser = self.parser
        url = httptools.parse_url(request.url)
        version = parser.get_http_version()
        request.http10 = version == "1.0"
        request.keep_alive = parser.should_keep_alive()
        method = parser.get_method().decode("latin-1")
        request.no_body = method == "HEAD"
        path = url.path or b"/"
        environ = self.base_environ.copy()
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = (url.query or b"").decode("latin-1")
        environ["SERVER_PROTOCOL"] = f"HTTP/{version}"
        keys = _HEADER_KEYS
        for raw_name, raw_value in request.headers:
            key = keys.get(raw_name)
            if key is None:
                key = _header_key(raw_name)
            if not key:
                continue
            value = raw_value.decode("latin-1")
            if key == "HTTP_EXPECT" and value.lower() == "100-continue" and not request.http10:
                request.wants_continue = True
            if key in environ:
                if key in _SINGLE_VALUED:
                    raise _DuplicateHeader(key)
                environ[key] += "," + value
            else:
                environ[key] = value
        request.environ = environ

    def _next(self) -> None:
        """Answer the next request when the one before it is done."""
        if self.in_next:
            return  # called from an inline answer: the loop below goes on
        self.in_next = True
        try:
            while self.requests and not self.busy and not self.closed and not self.write_paused:
                request = self.requests[0]
                if request.inline:
                    if not request.complete:
                        return  # its body is still arriving (idle_since times it out)
                    self.idle_since = None
                    self.busy = True
                    self.server.active += 1
                    self._run_inline(request)
                else:
                    if not self._body_ready(request):
                        return  # its body is arriving (on_body and idle_since go on)
                    if not self.server.may_start_thread(self):
                        return  # this client's threads are all busy: called again
                    self.idle_since = None
                    self.busy = True
                    self.server.active += 1
                    self.on_thread(self._run_threaded, request)
        finally:
            self.in_next = False

    def _body_ready(self, request: _Request) -> bool:
        """Whether ``request`` may go to a thread: its body arrived whole, or ``_BODY_HIGH``
        bytes of it did (a client that sends fast enough), or the client waits for
        ``100 Continue`` (the application refuses or reads first)."""
        body = request.body
        if request.complete or request.wants_continue or body is None or body.size >= _BODY_HIGH:
            return True
        if self.idle_since is None:
            self.idle_since = time.monotonic()  # the body has the timeout to arrive
        return False

    def on_thread(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on a pool thread, counted as this client's."""
        self.server.thread_started(self)
        self.server.submit(self._counted, function, *args)

    def _counted(self, function: Callable[..., None], *args: Any) -> None:
        try:
            function(*args)
        finally:
            self._from_thread(self.server.thread_ended, self)

    def _finish(self, request: _Request, close: bool, linger: bool = True) -> None:
        """The answer to ``request`` was written (or the connection failed).

        With ``close``, the connection ends; while the client may still be sending the
        body (``linger``), only after a while: closing a socket with unread bytes resets
        it, and the client could lose the answer."""
        if not self.requests or self.requests[0] is not request:
            return  # finished already
        self.requests.popleft()
        self.busy = False
        self.server.active -= 1
        if self.closed:
            return
        if request.refused and request.head_sent:  # its answer began: no second one
            self.refusal = None
            close = True
        transport = self.transport
        assert transport is not None
        if not request.complete and not close and request.body is not None:
            # The answer left the body unread: drop it to reach the next request, unless
            # there is much of it.
            request.body.discard()
            declared = request.environ.get("CONTENT_LENGTH") or ""
            if declared.isdigit() and int(declared) <= _DRAIN_LIMIT:
                self._resume()
                return  # on_message_complete goes on (_drained)
            close = True
        if self.refusal is not None and not self.requests:
            self._refuse(*self.refusal)
            return
        if close or not request.keep_alive or self.server.stopping:
            if request.complete or not linger:
                transport.close()
            else:  # do not reset a client still sending: it would lose the answer
                request.keep_alive = False
                if request.body is not None:
                    request.body.discard()
                self._resume()
                self.loop.call_later(_LINGER, transport.close)
            return
        self.body_paused = False  # whatever paused for its body, the next request reads
        self._flow()
        self._waiting()
        self.server.answered()
        self._next()

    def _waiting(self) -> None:
        """Start timing the client out if the connection now waits on it alone: for a
        request's head, or for the body of one the loop will answer."""
        following = self.requests[0] if self.requests else None
        if following is None or (following.inline and not following.complete):
            self.idle_since = time.monotonic()

    def _drained(self, request: _Request) -> None:
        """The unread body of an answered request has arrived and was dropped."""
        if self.closed or self.transport is None:
            return
        if not request.keep_alive or self.server.stopping:
            self.transport.close()
            return
        self._waiting()
        self._next()

    def _refuse(self, status: int, reason: str) -> None:
        if self.transport is not None and not self.closed:
            body = reason.encode()
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            self.transport.close()
        self.closed = True

    def refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` before any request and close (the server's limits)."""
        self.ignoring = True
        self._refuse(status, reason)

    def close_now(self) -> None:
        """Close the connection (it waits for a request: nothing is lost)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def call_next(self) -> None:
        """Go on with the next request (a thread of this client is free)."""
        self.loop.call_soon(self._next)

    def _resume(self) -> None:
        """A body's queue has room again."""
        if self.body_paused:
            self.body_paused = False
            self._flow()

    def _flow(self) -> None:
        """Read from the client unless a body's queue is full, the client does not read
        its answers (the transport's buffer is over its limit), or many requests wait:
        what a client sends without reading is never buffered without bound."""
        transport = self.transport
        if transport is None or self.closed:
            return
        pause = self.body_paused or self.write_paused or len(self.requests) > _PIPELINE
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()
        if self.unparsed and len(self.requests) <= _PIPELINE:
            self.loop.call_soon(self._feed_unparsed)  # not from within the parser

    def _continue(self, request: _Request) -> None:
        if request.wants_continue and not self.closed and self.transport is not None:
            request.wants_continue = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # Called from a request's thread

    def body_wanted(self) -> None:
        """The application waits for body bytes: ask for them (thread-safe)."""
        self.loop.call_soon_threadsafe(self._body_wanted)

    def _body_wanted(self) -> None:
        if self.requests:
            self._continue(self.requests[0])

    def resume_body(self) -> None:
        """The body's queue is short again: read from the client again (thread-safe)."""
        self.loop.call_soon_threadsafe(self._resume)

    # The answers

    def _answer(self, request: _Request, start: _StartResponse, body: bytes | None) -> _Answer:
        """The head for the answer ``start`` holds; ``body`` is the whole body when known."""
        status = start.status
        if not status:
            raise RuntimeError("the application answered without calling start_response")
        code = int(status[:3])
        no_body = request.no_body or code < 200 or code in _NO_BODY_STATUSES
        close = not request.keep_alive or self.server.stopping or self._body_left_unread(request)
        lines = [f"HTTP/1.1 {status}\r\n"]
        length: int | None = None
        has_date = False
        for name, value in start.headers:
            if name in _PASSED_AS_IS:
                lines.append(f"{name}: {value}\r\n")
                continue
            lower = name.lower()
            if lower == "content-length":
                length = int(value)
                continue  # written below
            elif lower == "connection":
                if value.lower() == "close":
                    close = True
                continue  # written below, once
            elif lower == "transfer-encoding":
                continue  # the server frames the body
            elif lower == "date":
                has_date = True
            lines.append(f"{name}: {value}\r\n")
        chunked = False
        if length is not None:
            lines.append(f"Content-Length: {length}\r\n")
        elif no_body:
            pass
        elif body is not None:
            length = len(body)
            lines.append(f"Content-Length: {length}\r\n")
        elif request.http10:
            close = True  # the end of the connection ends the body
        else:
            chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
        if not has_date:
            lines.append(f"Date: {_date()}\r\n")
        if close:
            lines.append("Connection: close\r\n")
        elif request.http10:
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        return _Answer(head, has_body=not no_body, chunked=chunked, close=close, left=length)

    def _file_answer(self, request: _Request, start: _StartResponse, body: FileBody) -> _Answer:
        """The head for an answer whose body is ``body``: framed by its Content-Length
        (the body's length where the application gave none), never chunked."""
        if not any(name.lower() == "content-length" for name, _ in start.headers):
            start.headers = [*start.headers, ("Content-Length", str(body.length))]
        return self._answer(request, start, None)

    def _body_left_unread(self, request: _Request) -> bool:
        """The answer leaves much of the request's body unsent or unread: the connection
        cannot go on to the next request (see :meth:`_finish`)."""
        if request.complete or request.body is None:
            return False
        if request.wants_continue:
            return True  # not asked for: the client may send it or not (RFC 9110 10.1.1)
        declared = request.environ.get("CONTENT_LENGTH") or ""
        return not (declared.isdigit() and int(declared) <= _DRAIN_LIMIT)

    def _run_inline(self, request: _Request) -> None:
        environ = request.environ
        environ["wsgi.input"] = io.BytesIO(b"".join(request.chunks))
        start = _StartResponse()
        result: Iterable[bytes] | None = None
        try:
            result = self.server.app(environ, start)
            head, rest = _first_chunks(result)
            answer = self._answer(request, start, head if rest is None else None)
        except Exception:
            logger.exception("%s %s failed", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            _close_result(result)
            self._write_error(request)
            return
        transport = self.transport
        assert transport is not None
        if rest is None:
            _close_result(result)
            transport.write(answer.head + _frame(answer, head) if head else answer.head)
            request.head_sent = True
            self._finish(request, answer.close or answer.short)
            return
        # A long answer: its first part now, the rest from a thread.
        start.sent = True
        first = _frame(answer, head)
        transport.write(answer.head + first)
        request.head_sent = True
        assert result is not None
        self.on_thread(self._stream_rest, request, answer, result, rest)

    def _write_error(self, request: _Request) -> None:
        if self.transport is not None and not self.closed and not request.refused:
            self.transport.write(_ERROR)
            request.head_sent = True
        self._finish(request, True)

    def _run_threaded(self, request: _Request) -> None:
        environ = request.environ
        assert request.body is not None
        environ["wsgi.input"] = _Input(request.body, self.server.timeout)
        start = _StartResponse()
        result: Iterable[bytes] | None = None
        try:
            try:
                result = self.server.app(environ, start)
                if type(result) is FileBody and self.server.tls is None:
                    answer = self._file_answer(request, start, result)
                    _read_ahead(result)
                    self._from_thread(self._send_file_body, request, answer, result)
                    return
                head, rest = _first_chunks(result)
                answer = self._answer(request, start, head if rest is None else None)
            except ClientGone as exc:
                logger.info("%s %s: %s", environ["REQUEST_METHOD"], environ["PATH_INFO"], exc)
                _close_result(result)
                self._from_thread(self._finish, request, True, False)
                return
            except Exception:
                logger.exception("%s %s failed", environ["REQUEST_METHOD"], environ["PATH_INFO"])
                _close_result(result)
                self._from_thread(self._write_error, request)
                return
            if rest is None:
                _close_result(result)
                data = answer.head + _frame(answer, head) if head else answer.head
                self._from_thread(
                    self._write_and_finish, request, data, answer.close or answer.short
                )
                return
            start.sent = True
            try:
                paused = self._send(request, answer.head + _frame(answer, head))
            except ClientGone:
                _close_result(result)
                self._from_thread(self._finish, request, True)
                return
            assert result is not None
            if paused:
                self._from_thread(self._park, request, answer, result, rest)
            else:
                self._stream_rest(request, answer, result, rest)
        except BaseException:  # pragma: no cover - the loop must learn the request ended
            self._from_thread(self._finish, request, True)
            raise

    def _stream_rest(
        self, request: _Request, answer: _Answer, result: Iterable[bytes], rest: Iterator[bytes]
    ) -> None:
        """Send the rest of a long answer (on a pool thread), then end the request; when
        the client reads too slowly, give the thread back instead (:meth:`_park`): the
        loop calls this again once the client has read."""
        close = answer.close
        done = True
        try:
            if self.closed:
                raise ClientGone("the client closed the connection")
            for chunk in rest:
                if chunk:
                    data = _frame(answer, chunk)
                    if data and self._send(request, data):
                        done = False
                        self._from_thread(self._park, request, answer, result, rest)
                        return
            if answer.chunked:
                self._send(request, b"0\r\n\r\n")
            if answer.short:
                close = True  # shorter than its Content-Length: the client must notice
        except ClientGone as exc:
            logger.info(
                "%s %s: %s", request.environ["REQUEST_METHOD"], request.environ["PATH_INFO"], exc
            )
            close = True
        except Exception:
            logger.exception(
                "%s %s failed while sending",
                request.environ["REQUEST_METHOD"],
                request.environ["PATH_INFO"],
            )
            close = True
        finally:
            if done:
                try:
                    _close_result(result)
                finally:
                    self._from_thread(self._finish, request, close)

    def _park(
        self, request: _Request, answer: _Answer, result: Iterable[bytes], rest: Iterator[bytes]
    ) -> None:
        """Keep a long answer until its client reads (on the loop): resume_writing, or
        connection_lost, hands it to a thread again. The sweep closes a connection whose
        client reads nothing for the timeout."""
        if self.write_paused and not self.closed:
            self.parked = (request, answer, result, rest)
        else:
            self.on_thread(self._stream_rest, request, answer, result, rest)

    def _from_thread(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            self.loop.call_soon_threadsafe(callback, *args)

    def _send(self, request: _Request, data: bytes) -> bool:
        """Write ``data`` from a pool thread; True when the client reads too slowly for
        more now (the transport's buffer is full)."""
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        try:
            self.loop.call_soon_threadsafe(self._write_for_thread, request, data, done)
        except RuntimeError as exc:
            raise ClientGone("the server stopped") from exc
        try:
            return done.result(self.server.timeout)
        except concurrent.futures.TimeoutError as exc:  # the loop itself is stuck
            self._from_thread(self._abort)
            raise ClientGone("the server stopped") from exc

    def _write_for_thread(
        self, request: _Request, data: bytes, done: concurrent.futures.Future[bool]
    ) -> None:
        if self.closed or self.transport is None:
            done.set_exception(ClientGone("the client closed the connection"))
            return
        if request.refused and not request.head_sent:
            done.set_exception(ClientGone("the request was refused"))
            return
        self.transport.write(data)
        request.head_sent = True
        done.set_result(self.write_paused)

    # FileBody answers, sent with sendfile (on the loop)

    def _send_file_body(self, request: _Request, answer: _Answer, body: FileBody) -> None:
        """Write the head of ``answer``, then its body with sendfile (or, without a body:
        HEAD, 304, the head alone)."""
        transport = self.transport
        if self.closed or transport is None or (request.refused and not request.head_sent):
            _close_body(body)
            self._finish(request, True)
            return
        transport.write(answer.head)
        request.head_sent = True
        length = min(answer.left or 0, body.length)
        if not answer.has_body or not length:
            _close_body(body)
            self._finish(request, answer.close or answer.short)
            return
        try:
            sock = os.dup(transport.get_extra_info("socket").fileno())
        except (OSError, AttributeError) as exc:
            logger.warning("cannot send a file with sendfile: %s", exc)
            _close_body(body)
            self._finish(request, True)
            return
        self.sending = _FileSend(request, answer, body, sock, length)
        self._sendfile()

    def _sendfile(self) -> None:
        """Send what the socket takes now of the file being sent (at most
        ``_SENDFILE_TURN`` bytes); wait for it to be writable for the rest."""
        send = self.sending
        transport = self.transport
        if send is None or transport is None:
            return
        if transport.is_closing():  # aborted (the sweep, a stop): connection_lost follows
            self._end_sendfile(True)
            return
        if transport.get_write_buffer_size():
            self._when_writable(send)  # the head (or an answer before) is not out yet
            return
        body = send.body
        budget = _SENDFILE_TURN
        while send.left > 0 and budget > 0:
            try:
                sent = os.sendfile(send.sock, body.fd, send.offset, min(send.left, budget))
            except BlockingIOError:
                if self.write_stalled_since is None:
                    self.write_stalled_since = time.monotonic()  # the sweep times it out
                self._when_writable(send)
                return
            except InterruptedError:
                continue
            except OSError as exc:  # EPIPE, ECONNRESET: the client went; EIO: the disk
                logger.info(
                    "%s %s: %s",
                    send.request.environ.get("REQUEST_METHOD", "GET"),
                    send.request.environ.get("PATH_INFO", send.request.url),
                    exc,
                )
                self._end_sendfile(True)
                return
            if not sent:  # the file is shorter than the length promised: changed in place
                logger.warning(
                    "%r ended %d bytes early", send.request.url.decode("latin-1"), send.left
                )
                self._end_sendfile(True)
                return
            self.write_stalled_since = None
            send.offset += sent
            send.left -= sent
            body.sent += sent
            budget -= sent
        if send.left > 0:
            self._when_writable(send)  # the next turn goes on (other connections first)
            return
        answer = send.answer
        if answer.left is not None:
            answer.left -= send.length
        self._end_sendfile(answer.close or answer.short)

    def _when_writable(self, send: _FileSend) -> None:
        if not send.watching:
            send.watching = True
            self.loop.add_writer(send.sock, self._sendfile)

    def _end_sendfile(self, close: bool) -> None:
        send, self.sending = self.sending, None
        if send is None:
            return
        if send.watching:
            self.loop.remove_writer(send.sock)
        os.close(send.sock)
        self.write_stalled_since = None
        try:
            _close_body(send.body)
        finally:
            self._finish(send.request, close)

    def _write_and_finish(self, request: _Request, data: bytes, close: bool) -> None:
        if not self.closed and self.transport is not None and not request.refused:
            self.transport.write(data)
            request.head_sent = True
        self._finish(request, close)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close_if_idle(self, now: float, timeout: float) -> None:
        """Close the connection when it waits for a request head longer than ``timeout``
        (or at once, with ``timeout`` 0, when it waits for one at all)."""
        since = self.idle_since
        if since is not None and now - since >= timeout and self.transport is not None:
            self.transport.close()

    def check_deadlines(self, now: float) -> None:
        """The sweep's look at the connection: silent too long (``timeout``), a request
        head not whole within ``header_timeout`` (408), a body that holds a thread and
        arrives too slowly (408), a client that reads nothing of its answer for
        ``timeout`` (closed)."""
        server = self.server
        if self.closed or self.transport is None:
            return
        self.close_if_idle(now, server.timeout)
        started = self.head_started
        if (
            started is not None
            and now - started >= server.header_timeout
            and not self.reading_paused
            and not self.unparsed
        ):
            logger.info("%s: no whole request head in %g s", self.peer[0], server.header_timeout)
            if self.reading is None:  # nothing came: nothing to answer
                self.closed = True
                self.transport.close()
            else:
                self._unreadable(408, "Request Timeout")
            return
        request = self.reading
        if request is not None and request.body is not None and request.body.too_slow(now):
            logger.info(
                "%s %s: the body arrives slower than %d bytes/s",
                request.environ.get("REQUEST_METHOD"),
                request.environ.get("PATH_INFO"),
                MIN_BODY_RATE,
            )
            self._unreadable(408, "Request Timeout")
            return
        stalled = self.write_stalled_since
        if stalled is not None and now - stalled >= server.timeout:
            logger.info("%s: read nothing of its answer for %g s", self.peer[0], server.timeout)
            self._abort()


#: Header names as they came -> their environ keys ("" for a name that is dropped).
_HEADER_KEYS: dict[bytes, str] = {}

#: Headers (lower case) that hold one value, not a list (RFC 9110 section 5.3, RFC 4918),
#: and their environ keys: sent twice, such a header is refused with 400. Joined with a
#: comma as list headers are, two credentials made wsgidav answer 500, and two
#: Destinations or Depths would be a value no client sent.
_SINGLE_VALUED_NAMES = frozenset(
    {b"authorization", b"host", b"content-type", b"range", b"if-range", b"destination"}
    | {b"if-modified-since", b"if-unmodified-since", b"depth", b"overwrite", b"lock-token"}
)


def _header_key(raw_name: bytes) -> str:
    """The environ key of a header name (``HTTP_X_A``, ``CONTENT_TYPE``), remembered; ""
    for a name with an underscore, which would pass for a dashed one (``X_User`` for
    ``X-User``)."""
    name = raw_name.decode("latin-1").upper()
    if "_" in name:
        key = ""
    else:
        key = name.replace("-", "_")
        if key not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            key = "HTTP_" + key
    if len(_HEADER_KEYS) < 1024:  # names clients send are few; a flood is not kept
        _HEADER_KEYS[raw_name] = key
    return key


_SINGLE_VALUED = frozenset(map(_header_key, _SINGLE_VALUED_NAMES))


_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\nInternal Server Error"
)


def _first_chunks(result: Iterable[bytes]) -> tuple[bytes, Iterator[bytes] | None]:
    """The start of ``result``: the whole body when it is short (rest None), else its first
    ``_WHOLE`` bytes or so and an iterator over the rest.

    ``start_response`` may be called while the result is first iterated (PEP 3333 allows
    that, and wsgidav's answers do it), so the head is built after this."""
    if type(result) is list:
        return b"".join(result), None
    it = iter(result)
    head: list[bytes] = []
    size = 0
    for chunk in it:
        if chunk:
            head.append(chunk)
            size += len(chunk)
            if size >= _WHOLE:
                return b"".join(head), it
    return b"".join(head), None


def _frame(answer: _Answer, chunk: bytes) -> bytes:
    """``chunk`` as it goes on the wire: chunked, cut at the Content-Length, or nothing."""
    if not answer.has_body:
        return b""
    if answer.chunked:
        return b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunk else b""
    left = answer.left
    if left is None:
        return chunk  # the end of the connection ends the body
    if len(chunk) > left:
        chunk = chunk[:left]
    answer.left = left - len(chunk)
    return chunk


class _FileSend:
    """A FileBody on its way out with sendfile: where it is, what is left."""

    __slots__ = ("answer", "body", "left", "length", "offset", "request", "sock", "watching")

    def __init__(
        self, request: _Request, answer: _Answer, body: FileBody, sock: int, length: int
    ) -> None:
        self.request = request
        self.answer = answer
        self.body = body
        self.sock = sock  # a duplicate of the connection's socket, watched for writability
        self.length = length
        self.offset = body.offset
        self.left = length
        self.watching = False


def _read_ahead(body: FileBody) -> None:
    """Ask the kernel to start reading the first part of ``body`` into the page cache (from
    the thread that made the answer), so that sendfile on the loop seldom waits for a disk:
    sendfile reads the file where its pages are not cached, and the kernel's readahead
    follows a sequential reader from there."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(
                body.fd, body.offset, min(body.length, 2 * _SENDFILE_TURN), os.POSIX_FADV_WILLNEED
            )


def _close_body(body: FileBody) -> None:
    try:
        body.close()
    except Exception:
        logger.exception("could not close an answer's file")


def _close_result(result: Iterable[bytes] | None) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


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
            sockets.append(_listen(host, port, _BACKLOG, reuse_port=True))
            port = sockets[0].getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


#: Connections the kernel keeps waiting for accept.
_BACKLOG = 1024


def tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """The server's TLS context for a PEM certificate (chain) and key (ValueError, OSError)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.fspath(cert), os.fspath(key))
    context.set_alpn_protocols(["http/1.1"])
    return context


def check_tls(cert: str | Path, key: str | Path) -> None:
    """Raise ValueError/OSError unless ``cert`` and ``key`` are a usable PEM pair."""
    tls_context(cert, key)


class Server:
    """Serves one WSGI app on ``host:port``.

    ``prepare()`` binds the port (an ``OSError`` when it is taken), ``serve()`` blocks
    until ``stop()``, and ``stop()`` stops accepting, then waits up to
    :attr:`shutdown_timeout` seconds for requests in progress before returning.

    The application may implement the quick-path contract of :mod:`davstore.http.wsgi`.
    It may have a ``runs_inline(environ) -> bool`` method (:class:`RunsInline`): requests it says
    yes to run on the event loop's thread, once their body is whole (see the module's
    docstring); it must only say yes to requests answered in well under a millisecond.

    It may also have ``answer_quick(method, path, headers, client, body)``
    (:class:`AnswersQuick`), asked on the
    loop's thread, before any environ is made, for a request that no earlier request of
    its connection waits ahead of, on a keep-alive HTTP/1.1 connection whose client
    reads, once its body (none, or a Content-Length of at most :data:`QUICK_BODY` bytes;
    never chunked, never with ``Expect``) has arrived whole. ``path`` is ``PATH_INFO`` as
    PEP 3333 has it, ``headers`` the raw ``(name, value)`` pairs, ``client`` the peer's
    address. It answers ``(status, headers, body)``, sent as a WSGI answer with those
    would be, or None: the request then goes to the WSGI application as any other, its
    body included. It is for answers made in microseconds (davstore's: a plain GET of a
    small file, a plain PUT of one); the same rule as ``runs_inline`` holds.
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
        tls: ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        busy_poll: float = BUSY_POLL,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
        threads_per_client: int | None = None,
    ) -> None:
        self.app = app
        self.runs_inline: Callable[[Environ], bool] | None = (
            app.runs_inline if isinstance(app, RunsInline) else None
        )
        self.answer_quick: Callable[..., QuickResponse | None] | None = (
            app.answer_quick if isinstance(app, AnswersQuick) else None
        )
        self.host = host
        self.port = port
        self.threads = threads
        self.timeout = timeout
        self.header_timeout = header_timeout
        self.max_connections_per_client = max_connections_per_client
        #: Threads the requests of one client address may hold at once (the others wait).
        self.threads_per_client = threads_per_client or max(1, threads // 2)
        #: Connections this process keeps open at most (set by serve(), from the limit of
        #: open files): beyond, the longest idle are closed.
        self.max_connections = 1 << 30
        self._by_client: collections.Counter[str] = collections.Counter()
        self._threads_by_client: collections.Counter[str] = collections.Counter()
        self._waiting_for_thread: dict[str, collections.deque[_Connection]] = {}
        self.tls = tls
        self.bind_addr: tuple[str, int] = (host, port)
        self._socket: socket.socket | None = None
        if sock is not None:  # listening already (a worker of ``davstore serve --workers``)
            sock.setblocking(False)
            self._socket = sock
            self.bind_addr = sock.getsockname()[:2]
        self.base_environ = dict(
            _BASE_ENVIRON, **{"wsgi.url_scheme": "https" if tls is not None else "http"}
        )
        self.loop: asyncio.AbstractEventLoop | None = None  # serve()'s
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, "davstore-http")
        self.connections: set[_Connection] = set()
        #: Requests being answered (changed on the loop's thread only).
        self.active = 0
        #: Seconds the loop polls after an answer before it sleeps (module docstring).
        self.busy_poll = busy_poll
        self._polling = False  # _poll is scheduled
        self._poll_until = 0.0
        self.stopping = False
        self._listener: asyncio.AbstractServer | None = None
        self._served = threading.Event()
        self._state = threading.Lock()

    def prepare(self) -> None:
        """Bind and listen (port 0 picks a free port; :attr:`bind_addr` has the real one)."""
        if self._socket is None:
            self._socket = _listen(self.host, self.port, _BACKLOG)
            self.bind_addr = self._socket.getsockname()[:2]

    def serve(self) -> None:
        """Serve until :meth:`stop` (binds first if :meth:`prepare` was not called)."""
        self.prepare()
        assert self._socket is not None
        limit = raise_open_files_limit()
        self.max_connections = max(16, limit - min(_FD_RESERVE, limit // 2))
        with self._state:  # stop() either sees the listener or finds serve() stopped
            if self.stopping:
                self._served.set()
                return
            self.loop = loop = uvloop.new_event_loop()
            try:
                self._listener = loop.run_until_complete(
                    loop.create_server(
                        lambda: _Connection(self),
                        sock=self._socket,
                        ssl=self.tls,
                        ssl_handshake_timeout=(
                            self.header_timeout if self.tls is not None else None
                        ),
                        backlog=_BACKLOG,
                    )
                )
            except BaseException:
                loop.close()
                self._served.set()
                raise
        try:
            loop.call_later(_SWEEP, self._sweep)
            loop.run_forever()
        finally:
            try:
                self._listener.close()
                for conn in list(self.connections):
                    if conn.transport is not None:
                        conn.transport.abort()
                loop.run_until_complete(self._listener.wait_closed())
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()
            finally:
                self.pool.shutdown(wait=False)
                self._served.set()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on the pool (from any thread; the pool may have been
        renewed meanwhile by :meth:`release_threads`)."""
        while True:
            pool = self.pool
            try:
                pool.submit(function, *args)
                return
            except RuntimeError:  # shut down: renewed since it was read, or stopping
                if pool is self.pool:
                    raise

    def release_threads(self) -> None:
        """Let the pool's threads end if none is in use (from any thread): a thread
        keeps the stack its deepest request touched resident for as long as it lives,
        and a burst of requests leaves up to ``threads`` of them. New ones start on
        demand, as they did the first time (serving/malloc.py calls this once a process
        goes quiet)."""
        loop = self.loop
        if loop is None or self.stopping:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: stopping
            loop.call_soon_threadsafe(self._renew_pool)

    def _renew_pool(self) -> None:
        if self.stopping or self.active or any(self._threads_by_client.values()):
            return
        old, self.pool = (
            self.pool,
            concurrent.futures.ThreadPoolExecutor(self.threads, "davstore-http"),
        )
        old.shutdown(wait=False)  # its idle threads end

    def answered(self) -> None:
        """An answer was written (on the loop's thread): keep polling for the next request
        for :attr:`busy_poll` seconds."""
        if self.busy_poll <= 0:
            return
        self._poll_until = time.perf_counter() + self.busy_poll
        if not self._polling and self.loop is not None:
            self._polling = True
            self.loop.call_soon(self._poll)

    def _poll(self) -> None:
        # A callback that is due keeps the loop from sleeping: its next turn polls the
        # sockets without waiting, then runs this again.
        if not self.active and not self.stopping and time.perf_counter() < self._poll_until:
            assert self.loop is not None
            self.loop.call_soon(self._poll)
        else:
            self._polling = False

    # Connections and threads per client (on the loop's thread)

    def admit(self, conn: _Connection) -> None:
        """A new connection: refused (503) past the client's share; past the limit of
        open connections, the longest idle ones are closed first."""
        self.connections.add(conn)
        client = conn.peer[0]
        self._by_client[client] += 1
        conn.counted = True
        if self._by_client[client] > self.max_connections_per_client:
            logger.warning(
                "%s: refused a connection beyond %d from one client",
                client,
                self.max_connections_per_client,
            )
            conn.refuse(503, "Service Unavailable")
        elif len(self.connections) > self.max_connections:
            self._shed(conn)

    def _shed(self, new: _Connection) -> None:
        """Close the connections that waited longest for a request (at least one in
        sixteen of the limit, so that this is seldom), or refuse ``new`` when none waits."""
        idle = sorted(
            (c for c in self.connections if c is not new and not c.requests and not c.closed),
            key=lambda c: c.idle_since or 0.0,
        )
        count = len(self.connections) - self.max_connections + self.max_connections // 16
        if not idle:
            logger.warning("refused a connection: %d open, all busy", len(self.connections))
            new.refuse(503, "Service Unavailable")
            return
        logger.warning(
            "%d connections open, near the limit of open files: closing %d idle ones",
            len(self.connections),
            min(count, len(idle)),
        )
        for conn in idle[:count]:
            conn.close_now()

    def release(self, conn: _Connection) -> None:
        """A connection ended."""
        self.connections.discard(conn)
        if conn.counted:
            conn.counted = False
            client = conn.peer[0]
            left = self._by_client[client] - 1
            if left > 0:
                self._by_client[client] = left
            else:
                del self._by_client[client]

    def may_start_thread(self, conn: _Connection) -> bool:
        """Whether a request of ``conn`` may take a thread now; if not, ``conn`` is told
        (its ``_next``) when one of its client's threads ends."""
        client = conn.peer[0]
        if self._threads_by_client[client] < self.threads_per_client:
            return True
        waiting = self._waiting_for_thread.setdefault(client, collections.deque())
        if conn not in waiting:
            waiting.append(conn)
        return False

    def thread_started(self, conn: _Connection) -> None:
        self._threads_by_client[conn.peer[0]] += 1

    def thread_ended(self, conn: _Connection) -> None:
        client = conn.peer[0]
        left = self._threads_by_client[client] - 1
        if left > 0:
            self._threads_by_client[client] = left
        else:
            del self._threads_by_client[client]
        waiting = self._waiting_for_thread.get(client)
        while waiting:
            following = waiting.popleft()
            if not following.closed:
                following.call_next()
                break
        if waiting is not None and not waiting:
            del self._waiting_for_thread[client]

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            conn.check_deadlines(now)
        if not self.stopping and self.loop is not None:
            self.loop.call_later(_SWEEP, self._sweep)

    def _begin_stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        now = time.monotonic()
        for conn in list(self.connections):
            if not conn.requests:  # waits for a request head (a body arriving goes on)
                conn.close_if_idle(now, 0)

    def _in_flight(self) -> bool:
        """Requests are being answered, or their bodies are arriving (from any thread:
        ``list`` copies the set at once, holding the GIL)."""
        return bool(self.active) or any(conn.requests for conn in list(self.connections))

    @property
    def in_progress(self) -> int:
        """Requests being handled now."""
        return self.active

    def stop(self) -> None:
        """Stop accepting, wait for requests in progress (up to :attr:`shutdown_timeout`).

        Requests still in progress then are left running (:attr:`in_progress` says how
        many); the process has to end to cut them off.
        """
        with self._state:
            self.stopping = True
            loop = self.loop if self._listener is not None else None
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # serve() ended already
                loop.call_soon_threadsafe(self._begin_stop)
            deadline = time.monotonic() + self.shutdown_timeout
            while self._in_flight() and time.monotonic() < deadline:
                time.sleep(0.02)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            self._served.wait(5)
        elif self._socket is not None:
            self._socket.close()  # serve() never ran


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
    busy_poll: float | None = None,
    header_timeout: float = HEADER_TIMEOUT,
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    threads_per_client: int | None = None,
) -> Server:
    """The HTTP server for ``app`` on ``host:port`` (not started yet).

    :param threads: requests handled at once on threads (the quick ones run on the loop).
    :param timeout: seconds a connection may stay silent: before its next request's head,
        within a request body, or while its answer waits to be read.
    :param tls_cert: a PEM certificate (chain) file: serve HTTPS with ``tls_key``, its PEM
        key. Raises ValueError or OSError when they are not usable.
    :param sock: a socket listening already, to serve instead of binding ``host:port``
        (each worker of ``davstore serve --workers`` gets one its parent made).
    :param busy_poll: seconds the loop polls after an answer before it sleeps (0: never;
        None: :data:`BUSY_POLL`; see the module's docstring).
    :param header_timeout: seconds a connection may take to send a whole request head
        (408 beyond); bytes trickling in do not extend it.
    :param max_connections_per_client: connections one client address may hold (503
        beyond).
    :param threads_per_client: threads the requests of one client address may hold at
        once (None: half of ``threads``); the others wait, costing their connection only.
    """
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together")
    tls = None
    if tls_cert is not None and tls_key is not None:
        tls = tls_context(tls_cert, tls_key)
    return Server(
        app,
        host,
        port,
        threads=threads,
        timeout=timeout,
        tls=tls,
        sock=sock,
        busy_poll=BUSY_POLL if busy_poll is None else busy_poll,
        header_timeout=header_timeout,
        max_connections_per_client=max_connections_per_client,
        threads_per_client=threads_per_client,
    )
