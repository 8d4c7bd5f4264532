"""moto's S3 API server as a separate process on loopback, for the S3 tests.

``moto_server`` is the console script of ``moto[server]`` (the ``test`` extra). It keeps
everything in memory, so a restarted server starts empty; :meth:`MotoServer.suspend` and
:meth:`MotoServer.resume` (SIGSTOP/SIGCONT) make it stop answering and come back with its
data, as an endpoint that hangs mid-transfer does.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

from tests.conftest import free_port

__all__ = ["ACCESS_KEY", "SECRET_KEY", "MotoServer", "MotoServerError", "moto_binary", "new_bucket"]

ACCESS_KEY, SECRET_KEY = "testing", "testing"


def moto_binary() -> str | None:
    """The ``moto_server`` script beside the running interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    return shutil.which("moto_server")


class MotoServerError(RuntimeError):
    """moto_server could not be started (the message holds its output)."""


class MotoServer:
    """One ``moto_server -H 127.0.0.1 -p PORT`` process."""

    def __init__(self, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        binary = moto_binary()
        if binary is None:
            raise MotoServerError("moto_server is not installed (pip install 'moto[server]')")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise MotoServerError(f"moto_server did not start on {self.port}:\n{output}")
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/moto-api/")
            return conn.getresponse().status == 200
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
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
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

    def client(self) -> Any:
        """A plain boto3 client on this server (for set-up and checks, not the adapter)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )


def new_bucket(server: MotoServer) -> str:
    """Create a bucket with a fresh name on ``server``."""
    name = f"davstore-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    return name
