"""Run the real ``davstore`` command in tests.

:func:`start_serve` starts ``davstore serve`` as a subprocess on a free port and returns
once it answers HTTP; the :class:`ServeProcess` it returns knows the URL and the generated
credentials, and stops the server (always, also when a test fails) when used as a context
manager::

    with start_serve(["--anonymous", str(tmp_path)], cwd=tmp_path) as server:
        requests.get(server.url)

:func:`run_davstore` runs a command to completion (for commands that are meant to fail).
Both run ``python -m davstore`` with the running interpreter, set ``XDG_STATE_HOME`` to a
private folder unless the caller passes one, and drop ``DJANGO_SETTINGS_MODULE`` from the
environment unless the caller passes it.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.conftest import free_port

__all__ = [
    "MODULE",
    "ServeError",
    "ServeProcess",
    "davstore_env",
    "open_files_limit",
    "run_davstore",
    "run_on_a_terminal",
    "start_serve",
    "wait_for_workers",
    "workers_of",
]

_CREDENTIALS = re.compile(r"User:\s+(\S+)\s+Password:\s+(\S+)", re.MULTILINE)


class ServeError(RuntimeError):
    """``davstore serve`` exited or did not answer in time (the message holds its output)."""


def davstore_env(
    base: Path, extra: Mapping[str, str] | None = None, *, pythonpath: Sequence[Path] = ()
) -> dict[str, str]:
    """The environment for a davstore subprocess: state under ``base``, no Django
    settings unless ``extra`` names them, ``pythonpath`` in front of ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["XDG_STATE_HOME"] = str(base / "xdg-state")
    env["PYTHONUNBUFFERED"] = "1"
    if pythonpath:
        paths = [str(p) for p in pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


#: How davstore is run by default: ``python -m davstore``.
MODULE = (sys.executable, "-m", "davstore")


def run_davstore(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    entry: Sequence[str] = MODULE,
) -> subprocess.CompletedProcess[str]:
    """Run ``davstore ARGS`` (``entry``: the command that runs it) to completion and
    capture its output as text."""
    return subprocess.run(
        [*entry, *args],
        cwd=cwd,
        env=dict(env) if env is not None else davstore_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_on_a_terminal(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 60
) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdin, stdout and stderr (as a person
    at a terminal would); its exit status and all it wrote there."""
    import pty
    import select

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdin=follower, stdout=follower, stderr=follower
        )
    finally:
        os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            output += chunk
        status = proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return status, output.decode(errors="replace")


class ServeProcess:
    """A running ``davstore serve``; stopped by :meth:`stop` or on leaving a ``with``."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        host: str,
        port: int,
        stdout: IO[bytes],
        stderr: IO[bytes],
        *,
        scheme: str = "http",
    ) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.scheme = scheme
        self.url = f"{scheme}://{host}:{port}/"
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> str:
        self._stdout.seek(0)
        return self._stdout.read().decode(errors="replace")

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The generated ``(user, password)`` from the start banner, if one was printed."""
        match = _CREDENTIALS.search(self.stdout)
        return (match.group(1), match.group(2)) if match else None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether the server answers an HTTP request (with any status) right now."""
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            context = ssl._create_unverified_context()
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("OPTIONS", "/")
            conn.getresponse().read()
        except OSError:
            return False
        finally:
            conn.close()
        return True

    def wait_until_answers(self, timeout: float = 30.0) -> None:
        """Return once the server answers; raise ServeError if it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ServeError(self._report(f"exited with {self.proc.returncode}"))
            if self.answers(timeout=1.0):
                return
            time.sleep(0.05)
        raise ServeError(self._report(f"did not answer within {timeout} s"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit status (killed after ``timeout`` seconds,
        then ServeError)."""
        if self.running:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ServeError(self._report(f"did not stop within {timeout} s of {sig}")) from None

    def close(self) -> None:
        """Stop the server if it still runs, and release the output files."""
        try:
            if self.running:
                self.stop()
        finally:
            self._stdout.close()
            self._stderr.close()

    def _report(self, what: str) -> str:
        return f"davstore serve {what}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_serve(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 30.0,
    open_files: tuple[int, int] | None = None,
    entry: Sequence[str] = MODULE,
) -> ServeProcess:
    """Start ``davstore serve ARGS --host HOST --port PORT`` and wait until it answers.

    ``entry`` is the command that runs davstore (default ``python -m davstore``, which
    puts the current folder on the path; a console script does not); ``port`` defaults to
    a free one; ``open_files`` is the ``(soft, hard)`` limit of open files it starts with
    (``RLIMIT_NOFILE``, set by ``prlimit``, which then runs it). Raises ServeError (with the
    server's output) when it exits early or does not answer within ``timeout`` seconds.
    """
    port = free_port() if port is None else port
    stdout = tempfile.TemporaryFile()  # noqa: SIM115 -- owned by the ServeProcess
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    limit = [] if open_files is None else ["prlimit", f"--nofile={open_files[0]}:{open_files[1]}"]
    proc = subprocess.Popen(
        [
            *limit,
            *entry,
            "serve",
            *args,
            "--host",
            host,
            "--port",
            str(port),
        ],
        cwd=cwd,
        env=dict(env) if env is not None else davstore_env(cwd),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
    )
    scheme = "https" if "--tls-cert" in args else "http"
    server = ServeProcess(proc, host, port, stdout, stderr, scheme=scheme)
    try:
        server.wait_until_answers(timeout)
    except BaseException:
        server.close()
        raise
    return server


def open_files_limit(pid: int) -> tuple[int, int]:
    """The ``(soft, hard)`` limit of open files of process ``pid``."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise LookupError(pid)


def workers_of(server: ServeProcess) -> list[int]:
    """The pids of the child processes of ``server`` (its ``--workers``)."""
    from davstore.serving.workers import children

    return children(server.proc.pid)


def wait_for_workers(
    server: ServeProcess, count: int, *, besides: frozenset[int] = frozenset()
) -> list[int]:
    """The pids of ``count`` workers of ``server`` once they are there (none of ``besides``)
    and the server answers; AssertionError after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = workers_of(server)
        if len(pids) == count and not besides & set(pids) and server.answers(timeout=1):
            return pids
        time.sleep(0.1)
    raise AssertionError(f"workers: {workers_of(server)}\n{server.stderr}")
