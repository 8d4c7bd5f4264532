"""The conformance driver that goes through WebDAV over HTTP (``requests``).

Statuses map back to the errors a person would see: 404 -> FileNotFoundError,
405 on MKCOL -> FileExistsError, 409 on a write -> FileNotFoundError (no parent folder),
403 -> PermissionError, anything else >= 400 -> OSError with the nearest errno.
"""

from __future__ import annotations

import errno
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

import requests

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
    """A share seen through WebDAV at ``base_url`` with ``session`` (auth set up)."""

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
        for node in ElementTree.fromstring(response.content).iter(f"{DAV}response"):
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
