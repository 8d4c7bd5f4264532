"""Cloud API emulators as separate processes on loopback (GCS, Azure Blob), for the tests.

:class:`ServerProcess` starts one command on a free port, waits until the port answers
HTTP, and stops it (SIGCONT first, so a suspended server can end). :meth:`suspend` and
:meth:`resume` (SIGSTOP/SIGCONT) make it hang and come back with its data, as an endpoint
that stops answering mid-transfer does. A server that cannot start raises
:class:`EmulatorError` with its output: fixtures turn that into a failure, never a skip.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import IO

from tests.conftest import free_port

__all__ = ["EmulatorError", "ServerProcess"]


class EmulatorError(RuntimeError):
    """An emulator could not be started (the message holds its output)."""


class ServerProcess:
    """One emulator process listening on ``127.0.0.1:port``."""

    #: What the process is called in messages.
    label = "server"

    def __init__(self, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> Sequence[str]:
        """The argv that starts the server on :attr:`port`."""
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> ServerProcess:
        argv = list(self.command())
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        try:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            self.stop()
            raise EmulatorError(f"{self.label} could not be run ({argv[0]}): {exc}") from exc
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise EmulatorError(f"{self.label} did not start on {self.port}:\n{output}")
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        """True once anything answers HTTP on the port."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def suspend(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
