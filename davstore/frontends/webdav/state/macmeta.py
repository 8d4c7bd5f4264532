"""macOS metadata files (``._*`` AppleDouble files and ``.DS_Store``): a per-share policy.

Finder writes a ``._name`` beside every file it copies that has extended attributes
(tags, quarantine flags, resource forks) and a ``.DS_Store`` into every folder it opens.

``store`` (:attr:`MacMetadata.STORE`)
    They are ordinary files: stored, listed, seen by every client and by the Django site.
``hide`` (:attr:`MacMetadata.HIDE`, the default)
    They are accepted and kept out of the store: :class:`MacMetadataSideStore` keeps them
    beside it (hidden_files.py: a SQLite file in the state folder, shared by the processes
    of the host and kept across restarts; in memory when the share's state is), bounded,
    answers ``PUT``, ``GET``, ``HEAD``,
    ``PROPFIND``, ``PROPPATCH``, ``LOCK``, ``UNLOCK``, ``DELETE``, ``MOVE`` and ``COPY`` of
    those names itself, never lists them and never asks the store about them (Finder's
    many probes for them are answered without a store call). A folder moved, copied or
    deleted through the share takes its hidden files along. Finder copies files to and
    from the share with their metadata (tags, resource forks).
"""

from __future__ import annotations

import enum
import html
import uuid
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from lxml import etree
from wsgidav.mw.base_mw import BaseMiddleware

from davstore.frontends.webdav.content_safety import CONTENT_HEADERS
from davstore.frontends.webdav.state.hidden_files import HiddenFile, HiddenFiles, MemoryHiddenFiles
from davstore.http.wsgi import Environ, StartResponse
from davstore.vfs.paths import normalize

__all__ = ["MacMetadata", "MacMetadataSideStore", "is_mac_metadata"]


#: Bytes the hidden files of one share may take in memory, and one file at most.
DEFAULT_BUDGET = 64 << 20
MAX_FILE = 16 << 20


class MacMetadata(enum.Enum):
    """What a share does with ``._*`` and ``.DS_Store`` files."""

    STORE = "store"
    HIDE = "hide"


def is_mac_metadata(path: str) -> bool:
    """Whether the last segment of ``path`` is ``.DS_Store`` or an AppleDouble ``._*`` name."""
    name = path.rstrip("/").rpartition("/")[2]
    return name == ".DS_Store" or (name.startswith("._") and len(name) > 2)


def _canonical(path: str) -> str | None:
    try:
        return normalize(path)
    except OSError:
        return None


def _empty_element(clark: str) -> str:
    name = etree.QName(clark)
    return f'<ns:{name.localname} xmlns:ns="{html.escape(name.namespace or "")}"/>'


def _answer(
    start_response: StartResponse,
    status: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(status, [*(headers or []), ("Content-Length", str(len(body)))])
    return [body]


class MacMetadataSideStore(BaseMiddleware):  # type: ignore[misc]
    """The ``hide`` policy: macOS metadata files live here, never in the store.

    They are kept in ``config["davstore"]["mac_metadata_files"]`` (a
    :class:`~davstore.frontends.webdav.state.hidden_files.HiddenFiles`; ``create_app`` opens one
    in the state folder), else in this process's memory.
    """

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        options = config.get("davstore", {})
        files = options.get("mac_metadata_files")
        if files is None:
            files = MemoryHiddenFiles(int(options.get("mac_metadata_budget", DEFAULT_BUDGET)))
        self.files: HiddenFiles = files

    def used(self) -> int:
        return self.files.used()

    def names(self) -> list[str]:
        return self.files.names()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        method = environ["REQUEST_METHOD"]
        if is_mac_metadata(path):
            key = _canonical(path)
            if key is not None:
                return self._serve(method, key, environ, start_response)
        if method in ("MOVE", "COPY", "DELETE"):
            return self._follow(method, path, environ, start_response)
        return self.next_app(environ, start_response)  # type: ignore[no-any-return]

    # -- the hidden files themselves -------------------------------------------------------

    def _serve(
        self, method: str, key: str, environ: Environ, start_response: StartResponse
    ) -> list[bytes]:
        if method == "PUT":
            return self._put(key, environ, start_response, existed=self.files.exists(key))
        if method in ("GET", "HEAD", "PROPFIND"):  # the only ones that need the bytes
            found = self.files.get(key)
            if found is None:
                return _answer(start_response, "404 Not Found")
            if method == "PROPFIND":
                return self._propfind(key, found, environ, start_response)
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Last-Modified", formatdate(found.mtime, usegmt=True)),
                *CONTENT_HEADERS,
            ]
            if method == "HEAD":
                start_response("200 OK", [*headers, ("Content-Length", str(len(found.data)))])
                return [b""]
            return _answer(start_response, "200 OK", found.data, headers)
        if method == "DELETE":
            gone = self.files.delete(key)
            return _answer(start_response, "204 No Content" if gone else "404 Not Found")
        if method == "LOCK":
            created = not self.files.exists(key)
            return self._lock_answer(key, environ, start_response, created=created)
        if method == "UNLOCK":
            return _answer(start_response, "204 No Content")
        if method == "PROPPATCH":
            if not self.files.exists(key):
                return _answer(start_response, "404 Not Found")
            return self._proppatch(environ, start_response)
        if method in ("MOVE", "COPY"):
            if not self.files.exists(key):
                return _answer(start_response, "404 Not Found")
            return self._copy_or_move(method, key, environ, start_response)
        if method == "OPTIONS":
            return _answer(start_response, "200 OK", headers=[("DAV", "1,2")])
        return _answer(start_response, "405 Method Not Allowed")

    def _put(
        self, key: str, environ: Environ, start_response: StartResponse, *, existed: bool
    ) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts: list[bytes] = []
        size = 0
        while chunk := stream.read(65536):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_FILE:
                return _answer(start_response, "507 Insufficient Storage")
        environ["wsgidav.all_input_read"] = 1
        data = b"".join(parts)
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if declared.isdigit() and int(declared) != len(data):
            return _answer(start_response, "400 Bad Request")
        if not self.files.put(key, data):
            return _answer(start_response, "507 Insufficient Storage")
        return _answer(start_response, "204 No Content" if existed else "201 Created")

    def _href(self, environ: Environ, key: str) -> str:
        return quote(environ.get("SCRIPT_NAME", "") + "/" + key)

    def _propfind(
        self, key: str, found: HiddenFile, environ: Environ, start_response: StartResponse
    ) -> list[bytes]:
        name = html.escape(key.rpartition("/")[2])
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<D:multistatus xmlns:D=\"DAV:\">"
            f"<D:response><D:href>{html.escape(self._href(environ, key))}</D:href>"
            "<D:propstat><D:prop><D:resourcetype/>"
            f"<D:getcontentlength>{len(found.data)}</D:getcontentlength>"
            "<D:getcontenttype>application/octet-stream</D:getcontenttype>"
            f"<D:getlastmodified>{formatdate(found.mtime, usegmt=True)}</D:getlastmodified>"
            f"<D:displayname>{name}</D:displayname>"
            "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
            "</D:response></D:multistatus>"
        ).encode()
        return _answer(
            start_response,
            "207 Multi-Status",
            body,
            [("Content-Type", "application/xml; charset=utf-8")],
        )

    def _proppatch(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        body = stream.read()
        names: list[str] = []
        try:
            root = etree.fromstring(body) if body else None
        except etree.XMLSyntaxError:
            return _answer(start_response, "400 Bad Request")
        if root is not None:
            names = [p.tag for p in root.iter() if isinstance(p.tag, str)]
            names = [n for n in names if not n.startswith("{DAV:}")]
        props = "".join(_empty_element(n) for n in names)
        href = html.escape(self._href(environ, environ["PATH_INFO"].lstrip("/")))
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<D:multistatus xmlns:D=\"DAV:\">"
            f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{props}</D:prop>"
            "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"
        ).encode()
        return _answer(
            start_response,
            "207 Multi-Status",
            xml,
            [("Content-Type", "application/xml; charset=utf-8")],
        )

    def _lock_answer(
        self, key: str, environ: Environ, start_response: StartResponse, *, created: bool
    ) -> list[bytes]:
        environ["wsgi.input"].read()
        if created:
            self.files.touch(key)
        token = f"opaquelocktoken:{uuid.uuid4()}"
        timeout = environ.get("HTTP_TIMEOUT", "Second-3600").split(",")[0].strip()
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>"
            "<D:activelock><D:locktype><D:write/></D:locktype>"
            "<D:lockscope><D:exclusive/></D:lockscope><D:depth>0</D:depth>"
            f"<D:timeout>{html.escape(timeout)}</D:timeout>"
            f"<D:locktoken><D:href>{token}</D:href></D:locktoken>"
            f"<D:lockroot><D:href>{html.escape(self._href(environ, key))}</D:href></D:lockroot>"
            "</D:activelock></D:lockdiscovery></D:prop>"
        ).encode()
        return _answer(
            start_response,
            "201 Created" if created else "200 OK",
            body,
            [("Content-Type", "application/xml; charset=utf-8"), ("Lock-Token", f"<{token}>")],
        )

    def _destination(self, environ: Environ) -> str | None:
        header = environ.get("HTTP_DESTINATION", "")
        path = unquote(urlsplit(header, allow_fragments=False).path)
        script = environ.get("SCRIPT_NAME", "")
        if script and path.startswith(script + "/"):
            path = path[len(script) :]
        return _canonical(path)

    def _copy_or_move(
        self,
        method: str,
        key: str,
        environ: Environ,
        start_response: StartResponse,
    ) -> list[bytes]:
        target = self._destination(environ)
        if target is None or not is_mac_metadata(target):
            return _answer(start_response, "403 Forbidden")
        overwrite = environ.get("HTTP_OVERWRITE", "T").upper() != "F"
        done = self.files.copy(key, target, move=method == "MOVE", overwrite=overwrite)
        status = {
            "missing": "404 Not Found",
            "refused": "412 Precondition Failed",
            "created": "201 Created",
            "replaced": "204 No Content",
        }[done]
        return _answer(start_response, status)

    # -- hidden files following their folder ------------------------------------------------

    def _follow(
        self, method: str, path: str, environ: Environ, start_response: StartResponse
    ) -> Iterator[bytes]:
        source = _canonical(path)
        target = self._destination(environ) if method != "DELETE" else None
        status: list[str] = []

        def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *exc)

        result = self.next_app(environ, recording)
        # wsgidav answers from a generator: the status is known once the body is read.
        try:
            yield from result
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            if source and status and status[0][:1] == "2":
                self._carry(method, source, target)

    def _carry(self, method: str, source: str, target: str | None) -> None:
        if method == "DELETE":
            self.files.carry(source, None)
        elif target is not None:
            if method == "MOVE":
                self.files.carry(source, target)
            else:
                self.files.copy_tree(source, target)
