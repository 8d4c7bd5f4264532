"""Operations: a health endpoint, Prometheus metrics and an access log for the WebDAV server.

:class:`Observability` is the outermost WSGI middleware of ``davstore serve``. It answers
two paths itself, before authentication and path checks:

``GET /.davstore/health``
    ``200`` with ``{"status": "ok"}`` when the store answers a cheap call (a HEAD of a
    name that does not exist) within :data:`HEALTH_TIMEOUT` seconds and the share's folder
    exists, else ``503`` with ``{"status": "unavailable"}`` (a share whose folder is not
    made yet, ``STATIC_ROOT`` before ``collectstatic``, answers nothing: its detail is
    :data:`MISSING`). Load balancers, Docker's HEALTHCHECK and Kubernetes
    probes use it: it needs no credentials and shows no content. What failed (the store's
    error, each share's state) is only told to a caller who may see the metrics, and on
    the metrics port.
``GET /.davstore/metrics``
    Prometheus' text format: the request metrics below, the store calls of
    :mod:`davstore.serving.store_metrics`, and the process metrics of ``prometheus_client``. It
    tells who is busy with what, so it is not for anyone: on the share's port it needs
    the credentials of a user of the share (HTTP Basic, as Prometheus' ``basic_auth``
    sends them; for ``manage.py davstore serve`` a staff user), unless the share is
    anonymous. With ``--metrics-port`` both endpoints are served on a port of their own
    (``--metrics-host``, loopback by default) without credentials, and the share's port
    no longer has the metrics (404), as rclone's ``--metrics-addr`` does.

Every other request is passed on, counted and logged:

- ``davstore_http_requests_total{method, status}``, ``davstore_http_request_seconds{method}``
  (until the last byte of the answer is sent), ``davstore_http_received_bytes_total`` and
  ``davstore_http_sent_bytes_total`` (by method), ``davstore_http_errors_total{method}``
  (5xx answers and exceptions), ``davstore_http_requests_in_progress``;
- ``davstore_trash_entries{share}`` and ``davstore_trash_bytes{share}``: what the share's
  trash holds (:class:`TrashMetrics`);
- one INFO line per request on the ``davstore.access`` logger::

      127.0.0.1 alice PUT /docs/a.txt 201 in=5 out=0 12.3ms

  (client address, user or ``-``, method, path as requested, status, body bytes received
  and sent, duration). The request only queues the line's fields; a background thread
  hands them to ``logging`` (time stamped when the request ended) within
  :data:`ACCESS_LOG_DELAY` seconds and at exit, so the formatting and the write to the log
  are off the request's path (the same idea as nginx's ``access_log ... buffer= flush=``).

The metrics live in the ``CollectorRegistry`` of the :class:`Observability`, not in the
process-global one, so several servers in one process do not mix their figures.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from davstore.errors import DavstoreError, NotFound
from davstore.frontends.webdav.app import QuickAnswer
from davstore.frontends.webdav.fixed_users import basic_user
from davstore.http.basic_auth import parse_basic
from davstore.http.wsgi import Environ, FileBody, StartResponse, WSGIApp
from davstore.serving.queued_metrics import QueuedMetrics, fold_all, multiprocess
from davstore.serving.store_metrics import MetricsStore, StoreMetrics
from davstore.serving.workers import WORKER_PARENT_ENV, children
from davstore.vfs import VFS
from davstore.vfs.trash import trash_of

__all__ = [
    "HEALTH_PATH",
    "HEALTH_TIMEOUT",
    "METRICS_PATH",
    "MISSING",
    "Observability",
    "TrashMetrics",
    "WorkerProcessMetrics",
    "access_logger",
    "flush_access_log",
    "instrument",
    "instrument_shares",
]

logger = logging.getLogger(__name__)
#: The access log: one INFO line per request.
access_logger = logging.getLogger("davstore.access")

#: Seconds at most between a request's end and its access-log line reaching ``logging``.
ACCESS_LOG_DELAY = 0.1

_ACCESS_FORMAT = "%s %s %s %s %s in=%d out=%d %.1fms"


class _AccessLog:
    """Access-log lines queued by requests, handed to ``logging`` by a background thread."""

    #: Queued lines that wake the thread before :data:`ACCESS_LOG_DELAY` is up.
    BATCH = 512

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._pending: collections.deque[tuple[float, tuple[Any, ...]]] = collections.deque()
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def add(self, created: float, args: tuple[Any, ...]) -> None:
        """Queue one line (``created``: its time, seconds since the epoch)."""
        self._pending.append((created, args))
        if self._thread is None:
            self._start()
        elif len(self._pending) >= self.BATCH:
            self._wake.set()

    def flush(self) -> None:
        """Hand every queued line to ``logging`` now, in order.

        The records are copies of one made by ``makeRecord`` (``LogRecord.__init__`` costs
        half of a line's time: thread, process and path names, the same for every line),
        with the line's own fields set. Every record but the batch's last carries
        ``more_follow = True``: a handler may hold those and write the batch at once (the
        CLI's stderr handler does; others ignore the attribute).
        """
        logger, pending = self.logger, self._pending
        with self._flushing:
            if not pending:
                return
            write_lines = _lines_writer(logger)
            if write_lines is not None:
                batch = list(pending)
                if write_lines(logger.name, [(at, _ACCESS_FORMAT % args) for at, args in batch]):
                    for _ in batch:  # lines queued meanwhile stay
                        pending.popleft()
                    return
            template = logger.makeRecord(
                logger.name, logging.INFO, __file__, 0, _ACCESS_FORMAT, (), None
            )
            fields = template.__dict__
            made, relative = template.created, template.relativeCreated
            new = object.__new__
            while pending:
                created, args = pending.popleft()
                record = new(logging.LogRecord)
                record.__dict__.update(fields)
                record.args = args
                record.created = created
                record.msecs = (created - int(created)) * 1000
                record.relativeCreated = relative + (created - made) * 1000
                record.more_follow = bool(pending)
                logger.handle(record)

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="davstore-access-log", daemon=True)
                thread.start()
                atexit.register(self.flush)
                self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait(ACCESS_LOG_DELAY)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a failing handler must not stop the log
                logger.exception("the access log could not be written")


def _lines_writer(logger: logging.Logger) -> Callable[[str, list[tuple[float, str]]], bool] | None:
    """The ``write_lines(name, lines)`` of the one handler an INFO record of ``logger``
    reaches (the CLI's stderr handler has one: serving/logs.py), when exactly one does and
    no filter is on the way; None otherwise: the lines go as records."""
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if handler.level > logging.INFO:
                continue
            if found is not None or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return getattr(found, "write_lines", None) if found is not None else None


_access_log = _AccessLog(access_logger)


def flush_access_log() -> None:
    """Write the queued access-log lines now (before a hard exit, for instance)."""
    _access_log.flush()


HEALTH_PATH = "/.davstore/health"
METRICS_PATH = "/.davstore/metrics"
#: Seconds the store has to answer the health check.
HEALTH_TIMEOUT = 5.0
#: The health detail of a share whose root folder does not exist (STATIC_ROOT before
#: collectstatic): unavailable, it answers nothing.
MISSING = "missing: the share's folder does not exist yet"
#: A name no share holds (``.davstore*`` names are reserved); HEAD of it costs one request.
_PROBE = ".davstore-health-probe"

_ENDPOINTS = frozenset({HEALTH_PATH, METRICS_PATH})
_METHODS = frozenset(
    {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCOL", "COPY"}
    | {"MOVE", "LOCK", "UNLOCK", "POST"}
)
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _RequestMetrics:
    """The request metrics (:mod:`davstore.serving.queued_metrics`: a request queues its
    samples)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        metrics = QueuedMetrics(registry)
        self.requests = metrics.counter(
            "davstore_http_requests", "HTTP requests answered", ["method", "status"]
        )
        self.seconds = metrics.histogram(
            "davstore_http_request_seconds",
            "Time to answer a request, last byte included",
            ["method"],
            _LATENCY_BUCKETS,
        )
        self.received = metrics.counter(
            "davstore_http_received_bytes", "Request body bytes received", ["method"]
        )
        self.sent = metrics.counter(
            "davstore_http_sent_bytes", "Response body bytes sent", ["method"]
        )
        self.errors = metrics.counter(
            "davstore_http_errors",
            "Requests that ended in a 5xx answer or an exception",
            ["method"],
        )
        self.in_progress = metrics.gauge(
            "davstore_http_requests_in_progress", "Requests being answered"
        )
        #: One sample per answered request: ``(method, status)``, ``(seconds, in, out)``.
        self.answered = metrics.event(self._fold_answered)
        #: The same for a request answered at once (never counted in progress).
        self.answered_at_once = metrics.event(self._fold_answered_at_once)

    def _fold_answered(self, labels: tuple[str, ...], value: tuple[float, int, int]) -> None:
        self.in_progress.apply((), -1)
        self._fold_answered_at_once(labels, value)

    def _fold_answered_at_once(
        self, labels: tuple[str, ...], value: tuple[float, int, int]
    ) -> None:
        method = labels[:1]
        elapsed, received, sent = value
        self.requests.apply(labels, 1)
        self.seconds.apply(method, elapsed)
        # Applied also when 0: a method's series exist (at 0) from its first request on.
        self.received.apply(method, received)
        self.sent.apply(method, sent)
        self.errors.apply(method, 1 if labels[1][:1] == "5" else 0)


class _CountingInput:
    """``wsgi.input`` that counts the bytes read."""

    __slots__ = ("_stream", "count")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self.count += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class Observability:
    """Health and metrics endpoints, request metrics and the access log around ``app``.

    :param vfs: the share; its store is asked for the health check. Or several shares by
        name (``manage.py davstore serve``): each store is asked, and the health document
        names each (``{"status": "ok", "shares": {"media": "ok", ...}}``).
    :param registry: where the metrics live (the store's metrics too, see :func:`instrument`).
    :param authorize: whether a request on the share's port may see the metrics and the
        health details (its credentials); None: everyone may (an anonymous share).
    :param metrics_elsewhere: the metrics are served on a port of their own
        (:attr:`endpoints`): the share's port answers 404 for them.
    :param realm: the realm of the Basic challenge for the metrics.
    """

    def __init__(
        self,
        app: WSGIApp,
        vfs: VFS | Mapping[str, VFS],
        registry: CollectorRegistry,
        *,
        authorize: Callable[[Environ], bool] | None = None,
        metrics_elsewhere: bool = False,
        realm: str = "davstore",
    ) -> None:
        self.app = app
        self.authorize = authorize
        self.metrics_elsewhere = metrics_elsewhere
        self.realm = realm
        #: The stores the health check asks, by share name ("" for the one share).
        self.checked = {"": vfs} if isinstance(vfs, VFS) else dict(vfs)
        self._named = not isinstance(vfs, VFS)
        self.registry = registry
        self.metrics = _RequestMetrics(registry)
        self._checker = concurrent.futures.ThreadPoolExecutor(  # a hung check and a new one
            max_workers=2 * len(self.checked), thread_name_prefix="davstore-health"
        )

    def close(self) -> None:
        self._checker.shutdown(wait=False, cancel_futures=True)

    # -- endpoints ----------------------------------------------------------------------

    @staticmethod
    def check_store(vfs: VFS) -> str | None:
        """``None`` when the store of ``vfs`` answers and the share's folder exists, else
        why not (``missing: ...`` for a folder not made yet: the share answers nothing)."""
        try:
            vfs.store.head(_PROBE)
        except NotFound:
            pass
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if vfs.root_exists() else MISSING

    def health(self, *, details: bool = True) -> tuple[int, dict[str, Any]]:
        """The health endpoint's status and document (only ``status`` without
        ``details``). Every store is asked at once, each given :data:`HEALTH_TIMEOUT`
        seconds."""
        futures = {
            name: self._checker.submit(self.check_store, vfs) for name, vfs in self.checked.items()
        }
        deadline = time.monotonic() + HEALTH_TIMEOUT
        problems: dict[str, str | None] = {}
        for name, future in futures.items():
            try:
                problems[name] = future.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                problems[name] = f"the store did not answer within {HEALTH_TIMEOUT:g} s"
        failed = {name: problem for name, problem in problems.items() if problem is not None}
        for name, problem in failed.items():
            where = f" (share {name})" if name else ""
            logger.warning("health check failed%s: %s", where, problem)
        document: dict[str, Any] = {"status": "unavailable" if failed else "ok"}
        if details and self._named:
            document["shares"] = {name: problem or "ok" for name, problem in problems.items()}
        elif details:
            document["store"] = problems[""] or "ok"
        return (503 if failed else 200), document

    def _answer(
        self, environ: Environ, start_response: StartResponse, status: str, body: bytes, kind: str
    ) -> list[bytes]:
        start_response(
            status,
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def endpoints(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """The WSGI application of the metrics port: both endpoints, with every detail and
        no credentials (it listens where only operators reach, loopback by default)."""
        if environ.get("PATH_INFO") in _ENDPOINTS:
            return self._endpoint(environ, start_response, trusted=True)
        return self._answer(environ, start_response, "404 Not Found", b"Not found\n", "text/plain")

    def _endpoint(
        self, environ: Environ, start_response: StartResponse, *, trusted: bool = False
    ) -> list[bytes]:
        """The answer of the health or metrics endpoint ``PATH_INFO`` names (``trusted``:
        on the metrics port)."""
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH and self.metrics_elsewhere and not trusted:
            return self._answer(
                environ, start_response, "404 Not Found", b"Not found\n", "text/plain"
            )
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._answer(
                environ, start_response, "405 Method Not Allowed", b"GET or HEAD\n", "text/plain"
            )
        if path == HEALTH_PATH:
            details = trusted or (
                not self.metrics_elsewhere and (self.authorize is None or self.authorize(environ))
            )
            code, document = self.health(details=details)
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            body = (json.dumps(document) + "\n").encode()
            return self._answer(environ, start_response, status, body, "application/json")
        if not trusted and self.authorize is not None and not self.authorize(environ):
            body = b"401 Unauthorized\nThe metrics need the credentials of a user.\n"
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]
        return self._answer(environ, start_response, "200 OK", self.page(), CONTENT_TYPE_LATEST)

    def page(self) -> bytes:
        """The metrics page. With ``--workers`` (prometheus-client's multiprocess mode) the
        sums over every worker's files, this process's queued samples folded first, and
        the process metrics of the parent and of each worker (labelled ``pid``)."""
        if not multiprocess():
            return generate_latest(self.registry)
        fold_all()
        summed = CollectorRegistry()
        MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
        parent = os.environ.get(WORKER_PARENT_ENV, "")
        if parent.isdigit():
            summed.register(WorkerProcessMetrics(int(parent)))
        return generate_latest(summed)

    # -- everything else ----------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in _ENDPOINTS:
            return self._endpoint(environ, start_response)
        exchange = _Exchange(environ, start_response)
        self.metrics.in_progress.inc()
        try:
            body = self.app(environ, exchange.start_response)
        except BaseException:
            exchange.code = "500"
            self._finish(exchange, 0)
            raise
        if type(body) is list:  # whole already: counted and logged now
            self._finish(exchange, sum(map(len, body)))
            return body
        if type(body) is FileBody:  # passed on as it is: the server sends it with sendfile
            file_body = body
            file_body.on_close(lambda: self._finish(exchange, file_body.sent))
            return file_body
        return _Body(body, lambda sent: self._finish(exchange, sent))

    def _finish(self, exchange: _Exchange, sent: int) -> None:
        measured = (time.perf_counter() - exchange.started, exchange.received.count, sent)
        method, code, environ = exchange.method, exchange.code, exchange.environ
        self.metrics.answered.record((_label(method), code), measured)
        if access_logger.isEnabledFor(logging.INFO):
            user = environ.get("wsgidav.auth.user_name") or environ.get("REMOTE_USER")
            _log(
                environ.get("REMOTE_ADDR", "-"),
                str(user) if user else _basic_name(environ.get("HTTP_AUTHORIZATION"), code),
                (method, exchange.target, code),
                measured,
            )

    def answered_quick(self, answer: QuickAnswer) -> None:
        """Count and log a request the app answered without the WSGI stack
        (``DavstoreApp.answer_quick``), as :meth:`__call__` would have."""
        method, code = answer.method, answer.code
        measured = (time.perf_counter() - answer.started, *answer.sizes)
        self.metrics.answered_at_once.record((_label(method), code), measured)
        if access_logger.isEnabledFor(logging.INFO):
            _log(
                answer.client,
                _basic_name(answer.authorization, code) if answer.authorization else "-",
                (method, answer.path, code),
                measured,
            )


class _Exchange:
    """One request on its way through :class:`Observability`."""

    __slots__ = (
        "_start_response",
        "code",
        "environ",
        "method",
        "received",
        "started",
        "target",
    )

    def __init__(self, environ: Environ, start_response: StartResponse) -> None:
        self.environ = environ
        self._start_response = start_response
        self.started = time.perf_counter()
        self.method = str(environ.get("REQUEST_METHOD", "-"))
        # Taken now: wsgidav rewrites PATH_INFO on its way.
        self.target = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""))
        self.received = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        self.code = "500"

    def start_response(self, status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        """The application's ``start_response``: notes the status code."""
        self.code = status.split(" ", 1)[0]
        return self._start_response(status, headers, *exc)


class _Body:
    """The answer's body, counted as it is sent; ``done`` runs once, when it is closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done: Callable[[int], None] | None = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done(self.sent)


def _label(method: str) -> str:
    """The ``method`` label of a request: its method, or ``OTHER`` for one WebDAV does not
    name (the label's values stay few)."""
    return method if method in _METHODS else "OTHER"


def _log(
    client: str, user: str, request: tuple[str, str, str], measured: tuple[float, int, int]
) -> None:
    """Queue the access-log line of one request (``request``: its method, target and
    status code; ``measured``: the seconds it took, the bytes received and sent)."""
    method, target, code = request
    elapsed, received, sent = measured
    _access_log.add(
        time.time(),
        (
            _printable(client),
            _printable(user),
            _printable(method),
            _printable(target, wire=True),
            _printable(code),
            received,
            sent,
            elapsed * 1000,
        ),
    )


def _printable(text: str, *, wire: bool = False) -> str:
    """``text`` as the access log writes it: control characters, other non-printables,
    spaces and backslashes as ``\\xHH`` (``\\uHHHH``), so that a field is one word and no
    request can write a line break or a terminal escape into the log (a name with
    ``%0d%0a`` would plant a fake line). ``wire``: text decoded from the request line as
    Latin-1 (PATH_INFO), shown as UTF-8 where it is."""
    if text.isascii() and text.isprintable() and " " not in text and "\\" not in text:
        return text
    if wire:
        with contextlib.suppress(UnicodeError):
            text = text.encode("latin-1").decode("utf-8")
    return "".join(
        char if char.isprintable() and char not in " \\" else _escape(char) for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _basic_name(authorization: Any, code: str) -> str:
    """Who the access log names when no user was authenticated: the name in Basic
    credentials that were not refused, else ``-``."""
    if code == "401":
        return "-"
    credentials = parse_basic(str(authorization or ""), strict=False)
    return (credentials[0] if credentials is not None else "") or "-"


def instrument(
    app: Any,
    vfs: VFS,
    *,
    registry: CollectorRegistry | None = None,
    metrics_elsewhere: bool = False,
    authorize: Callable[[Environ], bool] | None = None,
) -> Observability:
    """Give a :class:`~davstore.frontends.webdav.DavstoreApp` its operations endpoints.

    Wraps ``vfs.store`` in a :class:`~davstore.serving.store_metrics.MetricsStore` and ``app`` in an
    :class:`Observability` (outermost); call before serving. Returns the middleware. The
    metrics need the Basic credentials of one of the app's users (none for an anonymous
    app, or those ``authorize`` accepts: the project's staff when Django users are
    served); with ``metrics_elsewhere`` they are only on the middleware's :meth:`endpoints`
    (the metrics port).
    """
    registry = _metered([vfs], registry)
    holder: list[Observability] = []
    users: dict[str, str] | None = app.users

    def known_user(environ: Environ) -> bool:
        assert users is not None
        return basic_user(users, str(environ.get("HTTP_AUTHORIZATION", ""))) is not None

    if authorize is None and users is not None:
        authorize = known_user

    def wrap(inner: WSGIApp) -> WSGIApp:
        holder.append(
            Observability(
                inner,
                vfs,
                registry,
                authorize=authorize,
                metrics_elsewhere=metrics_elsewhere,
            )
        )
        return holder[0]

    def observe(answer: QuickAnswer) -> None:
        holder[0].answered_quick(answer)

    app.wrap(wrap, quick_observer=observe)
    app.on_close(holder[0].close)
    return holder[0]


def instrument_shares(
    app: WSGIApp,
    shares: Mapping[str, VFS],
    *,
    registry: CollectorRegistry | None = None,
    authorize: Callable[[Environ], bool] | None = None,
    metrics_elsewhere: bool = False,
) -> Observability:
    """Put the operations endpoints, request metrics and access log around ``app``, a
    WSGI app serving several ``shares`` (``manage.py davstore serve``'s ``SharesApp``).

    Wraps each share's store in a :class:`~davstore.serving.store_metrics.MetricsStore`: the store
    metrics are summed over the shares. ``authorize`` and ``metrics_elsewhere`` are
    :class:`Observability`'s. Serve the returned middleware; call its ``close`` after the
    server stopped.
    """
    return Observability(
        app,
        shares,
        _metered(shares.values(), registry),
        authorize=authorize,
        metrics_elsewhere=metrics_elsewhere,
    )


class TrashMetrics(Collector):
    """``davstore_trash_entries`` and ``davstore_trash_bytes``: what each share's trash
    holds as last counted (at each purge, every 10 minutes) and changed since by this
    process; a share whose trash was not counted yet has no sample. Under ``--workers``
    the page shows the parent's multiprocess sums, without these."""

    def __init__(self, shares: Iterable[VFS]) -> None:
        self.shares = list(shares)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        entries = GaugeMetricFamily(
            "davstore_trash_entries", "Entries in the share's trash", labels=["share"]
        )
        size = GaugeMetricFamily(
            "davstore_trash_bytes", "Bytes in the share's trash", labels=["share"]
        )
        for vfs in self.shares:
            trash = trash_of(vfs)
            if trash is None:
                continue
            figures = trash.figures
            if figures is None:
                # Not counted yet (the first purge is a minute away): the first scrape
                # lists the trash once; deletes and purges keep the figures after that.
                try:
                    trash.entries()
                except DavstoreError:
                    logger.warning("could not count the trash of %s", vfs.describe())
                figures = trash.figures
            if figures is not None:
                entries.add_metric([vfs.describe()], figures[0])
                size.add_metric([vfs.describe()], figures[1])
        return [entries, size]


def _metered(shares: Iterable[VFS], registry: CollectorRegistry | None) -> CollectorRegistry:
    """``registry`` (a new one when None) with the process metrics and the store metrics of
    ``shares``, whose stores are wrapped to record them."""
    registry = registry or CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    metrics = StoreMetrics(registry)
    shares = list(shares)
    for vfs in shares:
        vfs.wrap_store(lambda store: MetricsStore(store, metrics))
    registry.register(TrashMetrics(shares))
    return registry


class WorkerProcessMetrics(Collector):
    """The ``process_*`` metrics (memory, CPU, open files, start time) of the parent of
    ``--workers`` and of each of its workers, one series per process, labelled ``pid``.

    prometheus-client's multiprocess collector leaves them out (they cannot be summed);
    every worker's scrape shows them all, read from ``/proc`` at the scrape.
    """

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in (self.parent, *children(self.parent)):
            collector = ProcessCollector(pid=_constant(pid), registry=None)
            for family in collector.collect():
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return merged.values()


def _constant(value: int) -> Callable[[], int]:
    return lambda: value
