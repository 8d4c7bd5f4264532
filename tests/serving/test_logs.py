"""The CLI's stderr handler writes the access log's batches in one write, in order."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from davstore.serving.logs import _LOG_FORMAT, _Formatter, _StderrHandler
from davstore.serving.observability import _ACCESS_FORMAT, _AccessLog


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def access() -> Any:
    logger = logging.getLogger("davstore.test-access-batches")
    stream = _Writes()
    handler = _StderrHandler()
    handler.setStream(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_a_batch_is_one_write_in_order(access: Any) -> None:
    logger, stream = access
    log = _AccessLog(logger)
    for number in range(5):
        log._pending.append(
            (1_700_000_000.25 + number, ("10.0.0.1", "-", "GET", f"/{number}", "200", 0, 3, 1.0))
        )
    log.flush()
    assert len(stream.writes) == 1
    lines = stream.getvalue().splitlines()
    assert [line.split()[5] for line in lines] == ["/0", "/1", "/2", "/3", "/4"]
    assert lines[0] == ("INFO davstore.test-access-batches: 10.0.0.1 - GET /0 200 in=0 out=3 1.0ms")


def test_records_keep_their_own_times(access: Any) -> None:
    logger, _ = access
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keeper = Keep()
    logger.addHandler(keeper)
    try:
        log = _AccessLog(logger)
        log._pending.append((1_700_000_000.5, ("a", "-", "PUT", "/x", "201", 1, 0, 2.0)))
        log._pending.append((1_700_000_003.25, ("b", "-", "GET", "/y", "200", 0, 1, 3.0)))
        log.flush()
    finally:
        logger.removeHandler(keeper)
    assert [record.created for record in seen] == [1_700_000_000.5, 1_700_000_003.25]
    assert [round(record.msecs) for record in seen] == [500, 250]
    assert seen[1].relativeCreated - seen[0].relativeCreated == pytest.approx(2750)
    assert [record.getMessage().split()[0] for record in seen] == ["a", "b"]
    assert [record.more_follow for record in seen] == [True, False]  # type: ignore[attr-defined]


def test_other_records_are_written_at_once_after_what_is_held(access: Any) -> None:
    logger, stream = access
    held = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "held", (), None)
    held.more_follow = True
    logger.handle(held)
    assert stream.writes == []
    logger.warning("plain")
    assert stream.writes == [
        "INFO davstore.test-access-batches: held\nWARNING davstore.test-access-batches: plain\n"
    ]
    logger.warning("again")
    assert stream.writes[-1] == "WARNING davstore.test-access-batches: again\n"


def _cli_logging(stream: io.StringIO) -> tuple[logging.Logger, _StderrHandler]:
    """A logger named as the access log's, under a root configured as the CLI does."""
    handler = _StderrHandler()
    handler.setStream(stream)
    handler.setFormatter(_Formatter(_LOG_FORMAT))
    parent = logging.getLogger("davstore-test-cli")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False
    return logging.getLogger("davstore-test-cli.access"), handler


LINES = [
    (1_700_000_000.25, ("10.0.0.1", "-", "GET", "/a", "200", 0, 1024, 0.1)),
    (1_700_000_000.9999, ("10.0.0.2", "ann", "PUT", "/b\\x0a", "201", 3, 0, 12.25)),
    (1_700_000_001.0, ("::1", "-", "PROPFIND", "/", "207", 0, 700, 1.0)),
]


def test_the_cli_handler_writes_access_lines_without_records_as_records_would() -> None:
    by_records, direct = _Writes(), _Writes()
    logger, handler = _cli_logging(by_records)
    try:
        for created, args in LINES:  # what logging makes of each line's record
            record = logger.makeRecord(
                logger.name, logging.INFO, "x", 0, _ACCESS_FORMAT, args, None
            )
            record.created = created
            record.msecs = (created - int(created)) * 1000
            handler.emit(record)
        log = _AccessLog(logger)
        handler.setStream(direct)
        log._pending.extend(LINES)
        made: list[object] = []
        original = logging.LogRecord.__init__

        def counted(self: logging.LogRecord, *args: Any, **kwargs: Any) -> None:
            made.append(self)
            original(self, *args, **kwargs)

        logging.LogRecord.__init__ = counted  # type: ignore[method-assign]
        try:
            log.flush()
        finally:
            logging.LogRecord.__init__ = original  # type: ignore[method-assign]
    finally:
        logging.getLogger("davstore-test-cli").removeHandler(handler)
    assert direct.getvalue() == by_records.getvalue()
    assert (
        direct.getvalue()
        .splitlines()[0]
        .endswith(" INFO    davstore-test-cli.access: 10.0.0.1 - GET /a 200 in=0 out=1024 0.1ms")
    )
    assert len(direct.writes) == 1 and not log._pending
    assert made == []  # no record was made


@pytest.mark.parametrize("added", ["filter", "handler"])
def test_access_lines_are_records_where_a_filter_or_another_handler_is(added: str) -> None:
    stream = _Writes()
    logger, handler = _cli_logging(stream)
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            keep(record)

    keeper = Keep()
    if added == "filter":
        logger.addFilter(keep)
    else:
        logger.addHandler(keeper)
    try:
        log = _AccessLog(logger)
        log._pending.extend(LINES)
        log.flush()
    finally:
        logger.removeFilter(keep)
        logger.removeHandler(keeper)
        logging.getLogger("davstore-test-cli").removeHandler(handler)
    assert [record.getMessage().split()[3] for record in seen] == ["/a", "/b\\x0a", "/"]
    assert len(stream.getvalue().splitlines()) == 3
