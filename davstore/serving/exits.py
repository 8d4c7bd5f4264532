"""The two ways a command that runs a share fails, each one line for a person.

:class:`UsageError` (exit status 2) is bad input: arguments or settings that contradict
each other, a store that cannot be built. :class:`CommandError` (exit status 1) is a
command that could not do its work (the port is taken). The CLI and the management command
print them as one line, never as a traceback.
"""

from __future__ import annotations

__all__ = ["CommandError", "UsageError"]


class UsageError(Exception):
    """Bad command-line or configuration input.

    ``str(error)`` is one line for a person (no traceback is shown); the CLI exits with
    :attr:`exit_code`.
    """

    exit_code: int = 2


class CommandError(Exception):
    """The command could not do its work (say, the port is taken); one line, exit 1."""

    exit_code: int = 1
