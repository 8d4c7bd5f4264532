"""The HTML page a browser gets for ``GET`` on a folder.

:class:`DirectoryListing` takes the place of wsgidav's ``WsgiDavDirBrowser`` in the
middleware stack (after authentication, so only users who may read the share see it).
The page is rendered from one VFS listing (no per-file store calls) into davstore's page
template (pages.py): the share's name and the folder as title, breadcrumbs (the list of
shares where there is one, the share by its name, each folder), folders first and then files
(each sorted by name, case-insensitively), sizes, modification dates, a download link per
file and, for office documents, "open in the desktop app" links:

- Microsoft Office's URI schemes, ``ms-word:ofe|u|<URL>`` (also ``ms-excel``,
  ``ms-powerpoint``), by file suffix (:data:`OFFICE_SCHEMES`);
- LibreOffice's ``vnd.sun.star.webdav://host/path`` (``vnd.sun.star.webdavs`` over HTTPS)
  for the same documents and the OpenDocument ones.

Icons are inline SVG pictures (never controls). A folder that is not there gets
davstore's 404 page; a share whose own folder does not exist yet (``STATIC_ROOT`` before
``collectstatic``) gets a page that says so and what makes it (503 at its root).

The page needs no JavaScript and no other resource. Every name is escaped for HTML and
percent-encoded in links (``quote`` with only ``/`` left as is), so names with spaces,
``#``, ``%``, ``?``, ``+``, ``&``, quotes, any script or emoji link to themselves.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from wsgidav.mw.base_mw import BaseMiddleware

from davstore.errors import DavstoreError, NotFound
from davstore.frontends.webdav.error_status import to_dav_error
from davstore.frontends.webdav.pages import (
    FILE_ICON,
    FOLDER_ICON,
    UP_ICON,
    SharePages,
    breadcrumbs,
    missing_root_notice,
    render_page,
    status_page,
)
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
    pages: SharePages | None = None,
) -> bytes:
    """The page for folder ``path`` (a share path) holding ``entries``.

    :param base: the URL path of the share root (``SCRIPT_NAME``, may be ``""``).
    :param origin: ``scheme://host[:port]``, for the absolute URLs desktop apps get.
    :param pages: how the share is named (title, breadcrumbs); default: ``davstore``.
    """
    pages = pages or SharePages()
    parts = [p for p in path.strip("/").split("/") if p]
    folder_url = base + "/" + "".join(p + "/" for p in parts)
    folders = sorted((e for e in entries if e.is_dir), key=lambda e: e.basename.casefold())
    files = sorted((e for e in entries if not e.is_dir), key=lambda e: e.basename.casefold())
    rows = []
    if parts:
        parent = quote(base + "/" + "".join(p + "/" for p in parts[:-1]))
        rows.append(
            f'<tr class="up"><td class="name"><a href="{html.escape(parent)}">'
            f"{UP_ICON}Parent folder</a></td>"
            '<td class="size"></td><td class="date"></td><td class="actions"></td></tr>'
        )
    for entry in folders:
        name = entry.basename
        href = html.escape(quote(folder_url + name + "/"))
        rows.append(
            f'<tr class="folder"><td class="name"><a href="{href}">'
            f"{FOLDER_ICON}{html.escape(name)}/</a></td>"
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
            f"{FILE_ICON}{html.escape(name)}</a></td>"
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
    return render_page(
        title=f"{pages.name} — {shown}",
        crumbs=breadcrumbs(pages, base, parts),
        content=content,
        footer=f"{counts} - served by davstore",
    )


class DirectoryListing(BaseMiddleware):  # type: ignore[misc]
    """Answer ``GET``/``HEAD`` on a folder with :func:`render_listing`; pass the rest on."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        pages = config.get("davstore", {}).get("pages")
        self.pages = pages if isinstance(pages, SharePages) else SharePages()

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
        except NotFound:
            return self._not_found(environ, start_response, vfs, path)
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
            pages=self.pages,
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

    def _not_found(
        self, environ: Environ, start_response: StartResponse, vfs: VFS, path: str
    ) -> list[bytes]:
        """davstore's 404 page; when the share's folder itself is missing, a page that says
        so (503 for the share's root: the share cannot answer yet, 404 below it)."""
        missing = not vfs.root_exists()
        root = not path.strip("/")
        code = 503 if missing and root else 404
        body = status_page(
            code,
            pages=self.pages,
            base=environ.get("SCRIPT_NAME", "").rstrip("/"),
            notice=missing_root_notice(self.pages) if missing else "",
        )
        start_response(
            f"{code} {'Service Unavailable' if code == 503 else 'Not Found'}",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
            ],
        )
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]
