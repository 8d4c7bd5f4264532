"""gcp-storage-emulator (PyPI) as a separate process, and GCS clients on it.

The emulator keeps everything in memory (``--in-memory``): a restarted server starts
empty. google-cloud-storage finds it through ``STORAGE_EMULATOR_HOST``, which is how a
project points django-storages' ``GoogleCloudStorage`` at it as well (credentials become
anonymous).
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.emulators import EmulatorError, ServerProcess

__all__ = ["PROJECT", "EmulatorError", "GCSEmulator", "new_bucket"]

PROJECT = "davstore-test"


def emulator_binary() -> str | None:
    beside = Path(sys.executable).with_name("gcp-storage-emulator")
    if beside.exists():
        return str(beside)
    return shutil.which("gcp-storage-emulator")


class GCSEmulator(ServerProcess):
    label = "gcp-storage-emulator"

    def command(self) -> Sequence[str]:
        binary = emulator_binary()
        if binary is None:
            raise EmulatorError(
                "gcp-storage-emulator is not installed (pip install gcp-storage-emulator)"
            )
        return [binary, "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"]

    def client(self) -> Any:
        """A plain google-cloud-storage client on this server (set-up and checks)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )


def new_bucket(server: GCSEmulator) -> str:
    name = f"davstore-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(name)
    return name
