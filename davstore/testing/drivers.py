"""The drivers the conformance suite runs through: one share, seen through one frontend.

The same tests (:mod:`davstore.testing.suite`) run through every driver: the VFS called
directly (:class:`VFSDriver`), WebDAV over HTTP (:class:`WebDAVDriver`, in-process or a real
``davstore serve``), and a real FUSE mount (:class:`FuseDriver`). A driver raises the built-in
errors a person would see: ``FileNotFoundError``, ``FileExistsError``, ``IsADirectoryError``,
``NotADirectoryError``, ``PermissionError`` (read-only, or refused), and ``OSError`` with a
fitting errno for the rest (``ENOSYS`` where the store cannot do an operation).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

import requests
from lxml import etree

from davstore.vfs import VFS
from davstore.vfs.paths import basename

__all__ = ["Driver", "FuseDriver", "VFSDriver", "WebDAVDriver"]


class Driver(Protocol):
    """Paths are share paths without a leading slash (``"a/b.txt"``); ``""`` is the root."""

    #: The frontend's name, for messages.
    name: str

    def write(self, path: str, data: bytes) -> None:
        """Create or replace a whole file. Missing parent folder: FileNotFoundError."""

    def read(self, path: str) -> bytes:
        """The whole content. Missing: FileNotFoundError; a folder: IsADirectoryError."""

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the file)."""

    def mkdir(self, path: str) -> None:
        """Create one folder. Exists: FileExistsError; no parent: FileNotFoundError."""

    def listdir(self, path: str) -> dict[str, bool]:
        """Children of a folder: name -> is_dir. Missing: FileNotFoundError."""

    def stat(self, path: str) -> tuple[bool, int]:
        """(is_dir, size) of an entry (size 0 for folders). Missing: FileNotFoundError."""

    def remove(self, path: str) -> None:
        """Remove a file. Missing: FileNotFoundError."""

    def rmtree(self, path: str) -> None:
        """Remove a folder and all it holds. Missing: FileNotFoundError."""

    def rename(self, source: str, target: str) -> None:
        """Move a file or folder, replacing a file at ``target``."""

    def copy(self, source: str, target: str) -> None:
        """Copy a file or a folder tree, replacing a file at ``target``."""


class VFSDriver:
    """The share's :class:`~davstore.vfs.VFS`, called directly."""

    name = "vfs"

    def __init__(self, vfs: VFS) -> None:
        self.vfs = vfs

    def write(self, path: str, data: bytes) -> None:
        self.vfs.write_file(path, data)

    def read(self, path: str) -> bytes:
        with self.vfs.open_read(path) as handle:
            return handle.read()

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        with self.vfs.open_read(path) as handle:
            return handle.pread(length, offset)

    def mkdir(self, path: str) -> None:
        self.vfs.mkdir(path)

    def listdir(self, path: str) -> dict[str, bool]:
        return {basename(e.name): e.is_dir for e in self.vfs.listdir(path)}

    def stat(self, path: str) -> tuple[bool, int]:
        entry = self.vfs.stat(path)
        return entry.is_dir, 0 if entry.is_dir else (entry.size or 0)

    def remove(self, path: str) -> None:
        self.vfs.remove(path)

    def rmtree(self, path: str) -> None:
        self.vfs.remove_tree(path)

    def rename(self, source: str, target: str) -> None:
        self.vfs.rename(source, target)

    def copy(self, source: str, target: str) -> None:
        self.vfs.copy(source, target)


DAV = "{DAV:}"

_ERRNO_BY_STATUS = {
    400: errno.EINVAL,
    403: errno.EACCES,
    404: errno.ENOENT,
    405: errno.EEXIST,
    409: errno.ENOTDIR,
    412: errno.EEXIST,
    413: errno.EFBIG,
    423: errno.EBUSY,
    501: errno.ENOSYS,
    507: errno.ENOSPC,
}


def _error(response: requests.Response, path: str) -> OSError:
    status = response.status_code
    code = _ERRNO_BY_STATUS.get(status, errno.EIO)
    message = f"HTTP {status} {response.reason}"
    if code == errno.ENOENT:
        return FileNotFoundError(code, message, path)
    if code == errno.EEXIST:
        return FileExistsError(code, message, path)
    if code == errno.EACCES:
        return PermissionError(code, message, path)
    if code == errno.ENOTDIR:
        return NotADirectoryError(code, message, path)
    return OSError(code, message, path)


class WebDAVDriver:
    """A share seen through WebDAV at ``base_url`` with ``session`` (auth set up).

    Statuses map back to the errors a person would see: 404 -> FileNotFoundError, 405 on
    MKCOL -> FileExistsError, 409 on a write -> FileNotFoundError (no parent folder), 403 ->
    PermissionError, 501 -> ``ENOSYS``, anything else >= 400 -> OSError with the nearest errno.
    """

    name = "webdav"

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session

    def url(self, path: str) -> str:
        return f"{self.base_url}/{quote(path.strip('/'))}"

    def _request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = self.session.request(method, self.url(path), timeout=60, **kwargs)  # type: ignore[arg-type]
        if response.status_code >= 400:
            raise _error(response, path)
        return response

    def write(self, path: str, data: bytes) -> None:
        try:
            self._request("PUT", path, data=data)
        except NotADirectoryError as exc:  # 409: the parent folder is missing
            raise FileNotFoundError(errno.ENOENT, "no parent folder", path) from exc

    def read(self, path: str) -> bytes:
        if self.stat(path)[0]:
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        return self._request("GET", path).content

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        return self._request("GET", path, headers=headers).content

    def mkdir(self, path: str) -> None:
        try:
            self._request("MKCOL", path)
        except NotADirectoryError as exc:  # 409: the parent folder is missing
            raise FileNotFoundError(errno.ENOENT, "no parent folder", path) from exc

    def _propfind(self, path: str, depth: str) -> dict[str, tuple[bool, int]]:
        response = self._request("PROPFIND", path, headers={"Depth": depth})
        found: dict[str, tuple[bool, int]] = {}
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        for node in etree.fromstring(response.content, parser).iter(f"{DAV}response"):
            href = unquote(urlsplit(node.findtext(f"{DAV}href") or "").path)
            is_dir = node.find(f".//{DAV}resourcetype/{DAV}collection") is not None
            size = int(node.findtext(f".//{DAV}getcontentlength") or 0)
            found[href.strip("/")] = (is_dir, 0 if is_dir else size)
        return found

    def listdir(self, path: str) -> dict[str, bool]:
        entries = self._propfind(path, "1")
        own = path.strip("/")
        if own in entries and not entries[own][0]:
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", path)
        return {
            name.rpartition("/")[2]: is_dir for name, (is_dir, _) in entries.items() if name != own
        }

    def stat(self, path: str) -> tuple[bool, int]:
        entries = self._propfind(path, "0")
        return next(iter(entries.values()))

    def remove(self, path: str) -> None:
        if self.stat(path)[0]:
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        self._request("DELETE", path)

    def rmtree(self, path: str) -> None:
        self._request("DELETE", path)

    def _transfer(self, method: str, source: str, target: str) -> None:
        headers = {"Destination": self.url(target), "Overwrite": "T"}
        self._request(method, source, headers=headers)

    def rename(self, source: str, target: str) -> None:
        self._transfer("MOVE", source, target)

    def copy(self, source: str, target: str) -> None:
        self._transfer("COPY", source, target)


class FuseDriver:
    """A share mounted with ``davstore mount`` at ``mountpoint``: plain ``os``/``shutil``
    calls, so the errors are the ones a program on the mount sees (see
    :func:`davstore.testing.fuse.start_mount`)."""

    name = "fuse"

    def __init__(self, mountpoint: Path) -> None:
        self.root = Path(mountpoint)

    def _p(self, path: str) -> Path:
        return self.root / path if path else self.root

    def write(self, path: str, data: bytes) -> None:
        with open(self._p(path), "wb") as out:
            out.write(data)

    def read(self, path: str) -> bytes:
        with open(self._p(path), "rb") as src:
            return src.read()

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        with open(self._p(path), "rb") as src:
            return os.pread(src.fileno(), length, offset)

    def mkdir(self, path: str) -> None:
        os.mkdir(self._p(path))

    def listdir(self, path: str) -> dict[str, bool]:
        with os.scandir(self._p(path)) as entries:
            return {e.name: e.is_dir() for e in entries}

    def stat(self, path: str) -> tuple[bool, int]:
        st = os.stat(self._p(path))
        is_dir = os.path.isdir(self._p(path))
        return is_dir, 0 if is_dir else st.st_size

    def remove(self, path: str) -> None:
        if os.path.isdir(self._p(path)):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        os.unlink(self._p(path))

    def rmtree(self, path: str) -> None:
        if not os.path.lexists(self._p(path)):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        shutil.rmtree(self._p(path))

    def rename(self, source: str, target: str) -> None:
        os.rename(self._p(source), self._p(target))

    def copy(self, source: str, target: str) -> None:
        if os.path.isdir(self._p(source)):
            if os.path.isfile(self._p(target)):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", target)
            shutil.copytree(self._p(source), self._p(target), dirs_exist_ok=True)
        else:
            if os.path.isdir(self._p(target)):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", target)
            shutil.copyfile(self._p(source), self._p(target))
