"""Storages the FUSE tests mount (by dotted path, in the mount subprocess).

- :class:`FaultyStorage`: local disk whose ``_save`` fails for chosen content, so a store
  error reaches the mount (content starting ``FAIL``: a backend bug, EIO; ``DENY``:
  the backend's PermissionError, EACCES).
- :class:`SizelessStorage`: a flat store that cannot tell sizes (``size`` not implemented).
- :class:`StuckCopyStorage`: a flat store (no rename: a folder's move is a copy then a
  delete) that refuses to save a name holding ``stuck`` below ``moved/`` (EACCES), so a
  move there cannot copy that member.
- :class:`SlowStorage`: local disk whose ``_open`` sleeps and which keeps a per-thread
  "client" in ``threading.local``, logging every client it has to build and every call's
  thread, as django-storages does with boto3 sessions.

Overriding ``_open``/``_save`` puts them on the generic adapter (the accelerator would
bypass the override), which is the path every third-party backend takes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage

from tests.minimal_storages import MinimalStorage


class FaultyStorage(FileSystemStorage):
    def _save(self, name: str, content: Any) -> str:
        content.seek(0)
        head = content.read(4)
        content.seek(0)
        if head == b"DENY":
            raise PermissionError(13, "Permission denied by the backend", name)
        if head == b"FAIL":
            raise RuntimeError(f"injected backend failure for {name}")
        return str(super()._save(name, content))


class SizelessStorage(MinimalStorage):
    size = Storage.size  # type: ignore[assignment]


class StuckCopyStorage(MinimalStorage):
    def _save(self, name: str, content: Any) -> str:
        if name.startswith("moved/") and "stuck" in name:
            raise PermissionError(13, "Permission denied by the backend", name)
        return super()._save(name, content)


class SlowStorage(FileSystemStorage):
    def __init__(self, *, delay: float = 0.0, log: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.log = log
        self.local = threading.local()
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        if self.log:
            with self.lock, open(self.log, "a") as out:
                out.write(f"{what} {threading.get_ident()} {time.monotonic():.6f}\n")

    def _client(self) -> object:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = object()
            self._note("client")
        return client

    def _open(self, name: str, mode: str = "rb") -> Any:
        self._client()
        self._note("open-start")
        time.sleep(self.delay)
        self._note("open-end")
        return super()._open(name, mode)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        self._client()
        self._note("listdir")
        return super().listdir(path)  # type: ignore[no-any-return]
