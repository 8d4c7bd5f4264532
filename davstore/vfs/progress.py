"""How long work tells how far it got: the :class:`Progress` port.

Work that walks a whole share or table (the trash purge, the site guard's index rebuild
and integrity check) takes a ``Progress`` and calls :meth:`Progress.total` once it knows how
many steps there are, then :meth:`Progress.advance` as it goes. What is shown, and where,
is the caller's: the commands show a bar on a terminal and nothing in logs
(:mod:`davstore.serving.progress`); :data:`NO_PROGRESS` shows nothing.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_PROGRESS", "NoProgress", "Progress"]


class Progress(Protocol):
    """Told how far a long piece of work got."""

    def total(self, count: int | None) -> None:
        """The work has ``count`` steps (None: not known)."""

    def advance(self, count: int = 1) -> None:
        """``count`` more steps are done."""


class NoProgress:
    """A :class:`Progress` that shows nothing."""

    def total(self, count: int | None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass


#: The default of every ``progress`` parameter.
NO_PROGRESS: Progress = NoProgress()
