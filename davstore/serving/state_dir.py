"""The state folder of a share: its locks, dead properties and change file live there.

Without ``--state-dir`` (``STATE_DIR``) it is a folder per share identity under
:func:`default_state_root`, so the state of different shares never mixes.
"""

from __future__ import annotations

import os
from pathlib import Path

from davstore.serving.exits import UsageError

__all__ = ["default_state_root", "prepare_state_dir"]


def default_state_root(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/davstore``, else ``~/.local/state/davstore``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "davstore"


def prepare_state_dir(explicit: str | None, identity: str) -> Path:
    """The share's state folder, created and checked writable.

    ``explicit`` (``--state-dir``) is used as given; else a folder per share identity
    under :func:`default_state_root`, so the state of different shares never mixes.
    Raises UsageError when it cannot be created or written.
    """
    path = Path(explicit).expanduser() if explicit else default_state_root() / identity
    path = path.absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".davstore-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"state directory {path} is not writable: {exc.strerror or exc} "
            "(choose another with --state-dir)"
        ) from exc
    return path
