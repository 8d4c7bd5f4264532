"""Azurite's Blob service (npm ``azurite``) as a separate process, and clients on it.

tests/run.sh installs Azurite into ``.cache/node`` (``npm install --prefix .cache/node``);
an ``azurite-blob`` on PATH is used otherwise. Each server keeps its data in its own
temporary folder, removed when it stops.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.emulators import EmulatorError, ServerProcess

__all__ = ["ACCOUNT", "KEY", "AzuriteServer", "EmulatorError", "connection_string", "new_container"]

REPO = Path(__file__).resolve().parents[2]
#: Azurite's well-known development account.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str | None:
    local = REPO / ".cache" / "node" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


def connection_string(url: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint={url}/{ACCOUNT};"
    )


class AzuriteServer(ServerProcess):
    label = "azurite-blob"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.location = Path(tempfile.mkdtemp(prefix="davstore-azurite-"))
        self.connection_string = connection_string(self.url)

    def command(self) -> Sequence[str]:
        binary = azurite_binary()
        if binary is None:
            raise EmulatorError(
                "azurite-blob is not installed (bash tests/run.sh, or "
                "npm install --prefix .cache/node azurite)"
            )
        return [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.location),
            "--skipApiVersionCheck",
        ]

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.location, ignore_errors=True)

    def service(self, **options: Any) -> Any:
        """A plain BlobServiceClient on this server (set-up and checks)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string, **options)


def new_container(server: AzuriteServer) -> str:
    name = f"davstore-{uuid.uuid4().hex[:12]}"
    server.service().create_container(name)
    return name
