"""Logging of a running share: one line per record on stderr, the access log in batches."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["configure", "configure_logging"]

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Formatter(logging.Formatter):
    """``logging.Formatter`` with the date part of ``asctime`` made once per second: the
    access log writes a line per request. Same text as the default formatter."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._asctime(int(record.created), int(record.msecs))

    def asctime(self, created: float) -> str:
        """``asctime`` of a record made at ``created`` (seconds since the epoch)."""
        second = int(created)
        return self._asctime(second, int((created - second) * 1000))

    def _asctime(self, second: int, msecs: int) -> str:
        cached = self._second
        if cached[0] != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            cached = self._second = (second, text)
        return f"{cached[1]},{msecs:03d}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """``logging.StreamHandler`` on stderr that writes the access log a batch at a time.

    A record with ``more_follow`` set (see observability.py's access log) is formatted and
    held; the next record without it writes everything held with its own line in one
    write. stderr is line-buffered: a write per line was a system call per request.
    :meth:`write_lines` writes a batch of INFO lines without making records at all.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "more_follow", False):
            if self._held:
                self._held.append(self.format(record) + self.terminator)
                text, self._held = "".join(self._held), []
                try:
                    self.stream.write(text)
                    self.flush()
                except Exception:
                    self.handleError(record)
                return
            super().emit(record)
            return
        try:
            self._held.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write_lines(self, name: str, lines: Iterable[tuple[float, str]]) -> bool:
        """Write INFO lines of logger ``name`` (``(created, message)`` each, in order) in
        one write, after what is held, with the text :meth:`emit` of their records would
        write. False, writing nothing, when this handler's formatter is not the CLI's
        (records are needed then). Made for the access log: a line through ``logging``
        cost more than the small request it tells of (benchmarks/README.md, "The access
        log")."""
        formatter = self.formatter
        if type(formatter) is not _Formatter or formatter._fmt != _LOG_FORMAT:
            return False
        if formatter.datefmt is not None:
            return False
        middle = f" INFO    {name}: "
        asctime = formatter.asctime
        text = "".join([f"{asctime(created)}{middle}{message}\n" for created, message in lines])
        with self.lock:  # type: ignore[union-attr]
            held, self._held = self._held, []
            try:
                self.stream.write("".join(held) + text)
                self.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"name": name, "msg": "(access log)"}))
        return True


def configure_logging(args: argparse.Namespace) -> None:
    """Log to stderr at the level ``args`` ask for."""
    verbose = int(getattr(args, "verbose", 0) or 0)
    level_name: str | None = getattr(args, "log_level", None)
    level = logging.getLevelName(level_name) if level_name else logging.INFO
    if verbose >= 2:
        level = logging.DEBUG
    configure(level, logging.DEBUG if verbose >= 1 else None)


def configure(level: int, davstore_level: int | None = None) -> None:
    """Log to stderr at ``level``, the ``davstore`` loggers at ``davstore_level`` if given
    (the supervisor of the workers logs as its parent did: supervisor.py)."""
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(_LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if davstore_level is not None:
        logging.getLogger("davstore").setLevel(davstore_level)
