"""The HTML page a browser gets for ``GET`` on a folder.

:class:`DirectoryListing` takes the place of wsgidav's ``WsgiDavDirBrowser`` in the
middleware stack (after authentication, so only users who may read the share see it).
The page is rendered from one VFS listing (no per-file store calls) into
``davstore/templates/webdav/listing.html``: breadcrumbs, folders first and then files
(each sorted by name, case-insensitively), sizes, modification dates, a download link per
file and, for office documents, "open in the desktop app" links:

- Microsoft Office's URI schemes, ``ms-word:ofe|u|<URL>`` (also ``ms-excel``,
  ``ms-powerpoint``), by file suffix (:data:`OFFICE_SCHEMES`);
- LibreOffice's ``vnd.sun.star.webdav://host/path`` (``vnd.sun.star.webdavs`` over HTTPS)
  for the same documents and the OpenDocument ones.

The page needs no JavaScript and no other resource. Every name is escaped for HTML and
percent-encoded in links (``quote`` with only ``/`` left as is), so names with spaces,
``#``, ``%``, ``?``, ``+``, ``&``, quotes, any script or emoji link to themselves.
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wsgidav.mw.base_mw import BaseMiddleware

from davstore.errors import DavstoreError
from davstore.frontends.webdav.error_status import to_dav_error
from davstore.http.wsgi import Environ, StartResponse
from davstore.vfs import VFS, Entry

__all__ = ["LIBREOFFICE_SUFFIXES", "OFFICE_SCHEMES", "DirectoryListing", "render_listing"]


#: File suffix -> Microsoft Office URI scheme.
OFFICE_SCHEMES: dict[str, str] = {
    **dict.fromkeys(
        ("doc", "docx", "docm", "dot", "dotx", "dotm", "rtf"),
        "ms-word",
    ),
    **dict.fromkeys(("xls", "xlsx", "xlsm", "xlsb", "xlt", "xltx", "xltm", "csv"), "ms-excel"),
    **dict.fromkeys(
        ("ppt", "pptx", "pptm", "pps", "ppsx", "ppsm", "pot", "potx", "potm"), "ms-powerpoint"
    ),
}
#: Suffixes LibreOffice is offered for (besides the Office ones).
LIBREOFFICE_SUFFIXES = frozenset(
    {*OFFICE_SCHEMES, "odt", "ods", "odp", "odg", "ott", "ots", "otp", "fodt", "fods", "fodp"}
)

_TEMPLATE: string.Template | None = None


#: The package folder this module was loaded from (``davstore/``). Not looked up by the
#: name ``davstore``: a process started with the current folder on its path, in a folder
#: holding a ``davstore/`` folder, sees that folder as the package by that name (a namespace
#: package, on an editable install): the template would be missing (every listing a 500) or
#: one that a user uploaded.
_PACKAGE = Path(__file__).resolve().parents[len(__name__.split(".")) - 2]


def _template() -> string.Template:
    global _TEMPLATE  # noqa: PLW0603 -- the packaged template, read once
    if _TEMPLATE is None:
        text = (_PACKAGE / "templates" / "webdav" / "listing.html").read_text(encoding="utf-8")
        _TEMPLATE = string.Template(text)
    return _TEMPLATE


def _size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{size} B"  # pragma: no cover -- the loop always returns


def _date(mtime: float | None) -> str:
    return "" if mtime is None else formatdate(mtime, usegmt=True)


def _suffix(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""


def _app_links(name: str, url: str, scheme: str) -> str:
    """The "open in" links of one file (``url`` is its absolute http(s) URL)."""
    suffix = _suffix(name)
    links = []
    office = OFFICE_SCHEMES.get(suffix)
    if office is not None:
        links.append((f"{office}:ofe|u|{url}", "Open in Office"))
    if suffix in LIBREOFFICE_SUFFIXES:
        dav = "vnd.sun.star.webdavs" if scheme == "https" else "vnd.sun.star.webdav"
        links.append((dav + url[url.index(":") :], "Open in LibreOffice"))
    return "".join(
        f'<a class="app" href="{html.escape(href)}">{label}</a>' for href, label in links
    )


def render_listing(
    entries: list[Entry],
    *,
    path: str,
    base: str,
    origin: str,
    scheme: str,
    title: str = "davstore",
) -> bytes:
    """The page for folder ``path`` (a share path) holding ``entries``.

    :param base: the URL path of the share root (``SCRIPT_NAME``, may be ``""``).
    :param origin: ``scheme://host[:port]``, for the absolute URLs desktop apps get.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    crumbs = [f'<a href="{html.escape(quote(base + "/"))}">{html.escape(title)}</a>']
    for depth, part in enumerate(parts, 1):
        href = quote(base + "/" + "/".join(parts[:depth]) + "/")
        crumbs.append(f'<a href="{html.escape(href)}">{html.escape(part)}</a>')
    folder_url = base + "/" + "".join(p + "/" for p in parts)
    folders = sorted((e for e in entries if e.is_dir), key=lambda e: e.basename.casefold())
    files = sorted((e for e in entries if not e.is_dir), key=lambda e: e.basename.casefold())
    rows = []
    if parts:
        parent = quote(base + "/" + "".join(p + "/" for p in parts[:-1]))
        rows.append(
            f'<tr class="up"><td class="name"><a href="{html.escape(parent)}">'
            '<span class="icon up"></span>Parent folder</a></td>'
            '<td class="size"></td><td class="date"></td><td class="actions"></td></tr>'
        )
    for entry in folders:
        name = entry.basename
        href = html.escape(quote(folder_url + name + "/"))
        rows.append(
            f'<tr class="folder"><td class="name"><a href="{href}">'
            f'<span class="icon folder"></span>{html.escape(name)}/</a></td>'
            f'<td class="size"></td><td class="date">{_date(entry.mtime)}</td>'
            '<td class="actions"></td></tr>'
        )
    for entry in files:
        name = entry.basename
        link = quote(folder_url + name)
        href = html.escape(link)
        apps = _app_links(name, origin + link, scheme)
        rows.append(
            f'<tr class="file"><td class="name"><a href="{href}">'
            f'<span class="icon file"></span>{html.escape(name)}</a></td>'
            f'<td class="size">{_size(entry.size)}</td><td class="date">{_date(entry.mtime)}</td>'
            f'<td class="actions"><a class="download" href="{href}" '
            f'download="{html.escape(name)}">Download</a>{apps}</td></tr>'
        )
    if entries:
        content = (
            '<table><thead><tr><th>Name</th><th class="size">Size</th><th>Modified</th>'
            "<th>Actions</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
    else:
        content = (
            "<table><tbody>" + "".join(rows) + "</tbody></table>"
            '<p class="empty">This folder is empty.</p>'
        )
    counts = f"{len(folders)} folder(s), {len(files)} file(s)"
    shown = "/" + "".join(p + "/" for p in parts)
    page = _template().substitute(
        title=html.escape(f"Index of {shown} - {title}"),
        heading=html.escape(f"Index of {shown}"),
        breadcrumbs='<span class="sep">/</span>'.join(crumbs),
        content=content,
        footer=html.escape(f"{counts} - served by davstore"),
    )
    return page.encode("utf-8")


class DirectoryListing(BaseMiddleware):  # type: ignore[misc]
    """Answer ``GET``/``HEAD`` on a folder with :func:`render_listing`; pass the rest on."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.title = str(config.get("davstore", {}).get("listing_title", "davstore"))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            return self.next_app(environ, start_response)  # type: ignore[no-any-return]
        provider = environ["wsgidav.provider"]
        vfs: VFS = provider.vfs
        path = environ["PATH_INFO"]
        try:
            if not vfs.stat(path).is_dir:
                return self.next_app(environ, start_response)  # type: ignore[no-any-return]
            entries = vfs.listdir(path)
        except DavstoreError as exc:
            raise to_dav_error(exc, method=method) from exc
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        body = render_listing(
            entries,
            path=path,
            base=environ.get("SCRIPT_NAME", "").rstrip("/"),
            origin=f"{scheme}://{host}",
            scheme=scheme,
            title=self.title,
        )
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
            ],
        )
        return [b"" if method == "HEAD" else body]
