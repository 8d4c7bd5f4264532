"""Progress bars of the commands whose work is long (``davstore trash purge``, ``manage.py
davstore index|check``), drawn by tqdm on stderr, only when both stdout and stderr are
terminals: a command whose output goes to a file, a pipe or a log shows none (its
output stays the lines it always wrote)."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from typing import IO, Any

from davstore.vfs.progress import NO_PROGRESS, Progress

__all__ = ["on_a_terminal", "terminal_progress"]


def on_a_terminal(out: IO[str] | Any | None = None) -> bool:
    """Whether ``out`` (default: stdout) and stderr are both terminals."""
    streams = (sys.stdout if out is None else out, sys.stderr)
    for stream in streams:
        isatty = getattr(stream, "isatty", None)
        try:
            if isatty is None or not isatty():
                return False
        except (OSError, ValueError):  # closed
            return False
    return True


class _Bar:
    """A :class:`~davstore.vfs.progress.Progress` drawn by a tqdm bar."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def total(self, count: int | None) -> None:
        self._bar.reset(total=count)

    def advance(self, count: int = 1) -> None:
        self._bar.update(count)


@contextlib.contextmanager
def terminal_progress(
    description: str, *, unit: str, out: IO[str] | Any | None = None
) -> Iterator[Progress]:
    """A progress bar on stderr named ``description`` counting ``unit`` while the block
    runs, when :func:`on_a_terminal` (``out``: the command's output); else one that
    shows nothing."""
    if not on_a_terminal(out):
        yield NO_PROGRESS
        return
    from tqdm import tqdm

    # A terminal that reports no size gets 80x24, as shutil falls back to (tqdm would
    # draw nothing there).
    size = shutil.get_terminal_size()
    bar = tqdm(
        desc=description,
        unit=unit,
        file=sys.stderr,
        ncols=size.columns,
        nrows=size.lines,
        leave=True,
    )
    try:
        yield _Bar(bar)
    finally:
        bar.close()
