"""A project's own Storage: files kept in a dict, folders only as name prefixes (like an
object store). davstore serves it with its generic adapter."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage


class DictStorage(Storage):
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, datetime]] = {}
        self.lock = threading.Lock()

    def _get(self, name: str) -> tuple[bytes, datetime]:
        with self.lock:
            if name not in self.files:
                raise FileNotFoundError(2, "No such file", name)
            return self.files[name]

    def _open(self, name: str, mode: str = "rb") -> File:
        return ContentFile(self._get(name)[0], name=name)

    def _save(self, name: str, content: Any) -> str:
        data = b"".join(
            chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in content.chunks()
        )
        with self.lock:
            self.files[name] = (data, datetime.now(timezone.utc))
        return name

    def exists(self, name: str) -> bool:
        prefix = name.rstrip("/") + "/"
        with self.lock:
            return name in self.files or any(key.startswith(prefix) for key in self.files)

    def delete(self, name: str) -> None:
        with self.lock:
            self.files.pop(name, None)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        folders: set[str] = set()
        files: list[str] = []
        with self.lock:
            for key in self.files:
                if not key.startswith(prefix):
                    continue
                head, sep, _ = key[len(prefix) :].partition("/")
                if sep:
                    folders.add(head)
                else:
                    files.append(head)
        return sorted(folders), sorted(files)

    def size(self, name: str) -> int:
        return len(self._get(name)[0])

    def get_modified_time(self, name: str) -> datetime:
        return self._get(name)[1]
