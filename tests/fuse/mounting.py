"""Real mounts for tests: the conformance kit's (davstore.testing.fuse) with this suite's
environment.

:func:`start_mount` returns once the kernel shows the mount; :meth:`MountProcess.stop`
unmounts (SIGTERM, then ``fusermount3 -u -z`` and SIGKILL if that does not do it) and is
safe to call twice, so fixtures call it in their finalizers whatever the test did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from davstore.testing.fuse import MountError, MountProcess, force_unmount, is_mounted
from davstore.testing.fuse import start_mount as _start_mount
from tests.process import davstore_env

__all__ = [
    "REPO",
    "MountError",
    "MountProcess",
    "force_unmount",
    "is_mounted",
    "start_mount",
    "wait_until",
]

REPO = Path(__file__).resolve().parents[2]


def start_mount(
    mountpoint: Path,
    args: Sequence[str],
    *,
    base: Path,
    env: dict[str, str] | None = None,
    timeout: float = 20,
) -> MountProcess:
    """Run ``davstore mount MOUNTPOINT ARGS --foreground`` and wait until it is mounted:
    the kit's :func:`davstore.testing.fuse.start_mount`, its state under ``base``, no Django
    settings unless ``env`` names them, and this repository importable."""
    return _start_mount(
        mountpoint,
        args,
        log_dir=base,
        env=davstore_env(base, env, pythonpath=[REPO]),
        timeout=timeout,
    )


def wait_until(predicate: object, timeout: float = 5.0, interval: float = 0.05) -> float:
    """Poll ``predicate()`` until true; the seconds it took. Raises TimeoutError."""
    assert callable(predicate)
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not true within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start
