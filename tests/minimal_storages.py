"""Custom Storage subclasses used to test the generic adapter.

``MinimalStorage`` implements only ``_open``, ``_save``, ``exists``, ``delete``, ``listdir``,
``size`` and ``get_modified_time`` over a flat dict (so folders are only name prefixes, as on
an object store). ``LimitedStorage`` lacks ``listdir`` and ``delete`` as well,
``NoDeleteStorage`` only ``delete``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage


class MinimalStorage(Storage):
    """A flat key -> bytes store: like an object store, folders are prefixes."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.lock = threading.Lock()

    def _open(self, name: str, mode: str = "rb") -> File:
        with self.lock:
            if name not in self.objects:
                raise FileNotFoundError(2, "No such object", name)
            return ContentFile(self.objects[name][0], name=name)

    def _save(self, name: str, content: Any) -> str:
        data = b"".join(
            chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in content.chunks()
        )
        with self.lock:
            self.objects[name] = (data, datetime.now(timezone.utc))
        return name

    def exists(self, name: str) -> bool:
        with self.lock:
            prefix = name.rstrip("/") + "/"
            return name in self.objects or any(k.startswith(prefix) for k in self.objects)

    def delete(self, name: str) -> None:
        with self.lock:
            self.objects.pop(name, None)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = path.rstrip("/") + "/" if path.strip("/") else ""
        dirs: set[str] = set()
        files: list[str] = []
        with self.lock:
            for key in self.objects:
                if not key.startswith(prefix):
                    continue
                rest = key[len(prefix) :]
                head, sep, _ = rest.partition("/")
                if sep:
                    dirs.add(head)
                else:
                    files.append(rest)
        return sorted(dirs), sorted(files)

    def size(self, name: str) -> int:
        with self.lock:
            if name not in self.objects:
                raise FileNotFoundError(2, "No such object", name)
            return len(self.objects[name][0])

    def get_modified_time(self, name: str) -> datetime:
        with self.lock:
            if name not in self.objects:
                raise FileNotFoundError(2, "No such object", name)
            return self.objects[name][1]


class LimitedStorage(MinimalStorage):
    """Lacks ``listdir`` and ``delete``: the adapter must degrade, not break."""

    listdir = Storage.listdir  # type: ignore[assignment]
    delete = Storage.delete  # type: ignore[assignment]


class NoDeleteStorage(MinimalStorage):
    """Lacks ``delete``: files can be written once and never removed or replaced."""

    delete = Storage.delete  # type: ignore[assignment]


class NamespacedStorage(MinimalStorage):
    """A store of a project's own class whose option picks the objects (a tenant), with
    none of the attributes davstore reads a location from."""

    def __init__(self, *, namespace: str = "", region: str = "") -> None:
        super().__init__()
        self.namespace = namespace
        self.region = region
