"""Real mounts for tests: ``davstore mount --foreground`` in a subprocess.

:func:`start_mount` returns once the kernel shows the mount; :meth:`MountProcess.stop`
unmounts (SIGTERM, then ``fusermount3 -u -z`` and SIGKILL if that does not do it) and is
safe to call twice, so fixtures call it in their finalizers whatever the test did. A mount
that cannot be made raises :class:`MountError` (with the mount's log): a test fails, it
never skips.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["MountError", "MountProcess", "force_unmount", "is_mounted", "start_mount"]


class MountError(RuntimeError):
    """The mount process exited or the mount did not show in time (message: its log)."""


def is_mounted(path: Path) -> bool:
    """Whether something is mounted at ``path`` (Linux: ``/proc/self/mounts``)."""
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def force_unmount(path: Path) -> None:
    """Lazy unmount with whatever tool works (also for a mount whose process died)."""
    for command in (["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]):
        if not is_mounted(path):
            return
        with contextlib.suppress(OSError):
            subprocess.run([*command, str(path)], capture_output=True, check=False)


class MountProcess:
    """One ``davstore mount --foreground`` subprocess and its mount point."""

    def __init__(self, mountpoint: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.mountpoint = mountpoint
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> int | None:
        """Unmount and end the process; its exit status (None if it had to be killed)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                force_unmount(self.mountpoint)
                self.process.kill()
                self.process.wait(5)
                return None
        force_unmount(self.mountpoint)
        return self.process.returncode


def start_mount(
    mountpoint: Path,
    args: Sequence[str],
    *,
    log_dir: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 20,
) -> MountProcess:
    """Run ``davstore mount MOUNTPOINT ARGS --foreground`` (this interpreter, ``env`` or
    this process's environment, in ``cwd`` or ``log_dir``) and wait until it is mounted.
    Its output goes to ``log_dir/<mountpoint name>.log``. Raises MountError."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{mountpoint.name}.log"
    command = [sys.executable, "-m", "davstore", "mount", str(mountpoint), *args, "--foreground"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(cwd or log_dir),
            env=dict(os.environ if env is None else env),
        )
    mount = MountProcess(mountpoint, process, log)
    deadline = time.monotonic() + timeout
    while not is_mounted(mountpoint):
        if not mount.alive() or time.monotonic() > deadline:
            mount.stop()
            raise MountError(f"{' '.join(command)} did not mount:\n{mount.output()}")
        time.sleep(0.05)
    return mount
