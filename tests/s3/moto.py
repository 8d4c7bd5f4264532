"""moto's S3 API server as a separate process on loopback, for the S3 tests.

``moto_server`` is the console script of ``moto[server]`` (the ``test`` extra). It keeps
everything in memory, so a restarted server starts empty; :meth:`MotoServer.suspend` and
:meth:`MotoServer.resume` (SIGSTOP/SIGCONT) make it stop answering and come back with its
data, as an endpoint that hangs mid-transfer does. :meth:`MotoServer.recording` counts the
requests the server receives from any process (a FUSE mount, ``davstore serve``), through
moto's own request recorder (``/moto-api/recorder/``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import free_port

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "MotoServer",
    "MotoServerError",
    "Requests",
    "moto_binary",
    "new_bucket",
    "operation",
    "running_moto",
]

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
        self._recording_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        binary = moto_binary()
        if binary is None:
            raise MotoServerError("moto_server is not installed (pip install 'moto[server]')")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        self._recording_dir = tempfile.TemporaryDirectory(prefix="moto-recording-")
        env = dict(os.environ)
        env["MOTO_RECORDER_FILEPATH"] = str(Path(self._recording_dir.name) / "requests.jsonl")
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
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
        if self._recording_dir is not None:
            self._recording_dir.cleanup()
            self._recording_dir = None

    def _api(self, method: str, action: str) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, f"/moto-api/recorder/{action}")
            response = conn.getresponse()
            body = response.read().decode()
            if response.status != 200:
                raise MotoServerError(f"moto recorder {action}: {response.status} {body[:200]}")
            return body
        finally:
            conn.close()

    @contextlib.contextmanager
    def recording(self) -> Iterator[Requests]:
        """Count every S3 request the server receives inside the block, from any process.

        The recorder keeps request bodies: keep big uploads out of the block."""
        requests = Requests()
        self._api("POST", "reset-recording")
        self._api("POST", "start-recording")
        try:
            yield requests
        finally:
            self._api("POST", "stop-recording")
            for line in self._api("GET", "download-recording").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    requests.calls.append(operation(entry["method"], entry["url"]))
            self._api("POST", "reset-recording")

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


@contextlib.contextmanager
def running_moto() -> Iterator[MotoServer]:
    """A moto server of its own for the ``with`` block (a fixture's body); the test fails,
    never skips, when it cannot start."""
    server = MotoServer()
    try:
        server.start()
    except MotoServerError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def new_bucket(server: MotoServer) -> str:
    """Create a bucket with a fresh name on ``server``."""
    name = f"davstore-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    return name


class Requests:
    """The S3 operations a server received (filled when :meth:`MotoServer.recording` ends)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.calls)


def operation(method: str, url: str) -> str:
    """The S3 operation of a path-style request (the ones davstore and s3fs make)."""
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    has_key = bool(parsed.path.strip("/").partition("/")[2])
    if method == "GET" and not has_key:
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "GET":
        return "GetObject"
    if method == "PUT" and "partNumber" in query:
        return "UploadPart"  # UploadPartCopy too (told apart only by a header)
    if method == "PUT":
        return "PutObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "DELETE":
        return "DeleteObject"
    return f"{method} {parsed.path}"
