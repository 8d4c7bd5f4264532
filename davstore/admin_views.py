"""The admin's "Files" pages: a file manager of a share (browse, preview, download, upload,
create, rename and delete).

:class:`FilesAdmin` holds the views for one admin: a :class:`~django.contrib.admin.AdminSite`
(:func:`davstore.admin.install` hooks them into one, ``admin.site`` by default) or another
admin's :class:`Frame` (Wagtail's: :mod:`davstore.wagtail_hooks`); the views, the rules and
the page bodies are the same in every frame, only the furniture differs. Every
operation goes through the share's VFS (:attr:`davstore.shares.Share.vfs`), never the
Storage, so the admin sees and makes exactly the changes the WebDAV share and the FUSE mount
see, and every change sends :data:`davstore.signals.file_changed` with the admin user.

Access, per share (:mod:`davstore.permissions`): the admin itself asks for an active staff
user (others go to the login page); a user who may not read the share gets 403; the write
actions (upload, new folder, rename, delete) are shown to and accepted from users who may
write only, and never on a read-only share (403). Every POST is CSRF-protected (the site's
``admin_view``). Paths come from the request as share paths (``?path=a/b``) and are checked
by the VFS (``..``, control characters and reserved names are refused). Errors from
:mod:`davstore.errors` become admin messages and a redirect, never a server error.

URLs, under the site (names in the site's namespace, ``admin:`` by default)::

    davstore/                         davstore_index     the shares this user may read
    davstore/<share>/?path=P&page=N   davstore_browse    folder P (PAGE_SIZE entries a page,
                                                         sorted by o=, narrowed by q=)
    davstore/<share>/download/?path=P davstore_download  file P, as an attachment
    davstore/<share>/preview/?path=P  davstore_preview   a page showing file P
    davstore/<share>/inline/?path=P   davstore_inline    a picture or PDF, inline (others:
                                                         as download/)
    davstore/<share>/thumbnail/?path= davstore_thumbnail a picture's thumbnail (404: none)
    davstore/<share>/upload/          davstore_upload    POST: folder, files, replace,
                                                         relative (JSON answer on request)
    davstore/<share>/mkdir/           davstore_mkdir     POST: folder, name
    davstore/<share>/rename/?path=P   davstore_rename    GET form, POST: path, name
    davstore/<share>/delete/?path=P   davstore_delete    GET confirmation, POST: path
    davstore/<share>/integrity/       davstore_integrity orphans and missing files
    davstore/<share>/integrity/trash-orphans/  davstore_trash_orphans  POST: min_age, path...
    davstore/<share>/trash/?path=&user=&kind=&since=&until=&page=
                                      davstore_trash     the share's trash (filtered)
    davstore/<share>/trash/download/?id=ID  davstore_trash_download  what file entry ID keeps
    davstore/<share>/trash/restore/   davstore_trash_restore  POST: id, to (optional)
    davstore/<share>/trash/purge/     davstore_trash_purge    GET confirmation, POST: id | all=1
    davstore/<share>/versions/?path=P davstore_versions  the previous versions of file P
    davstore/<share>/activity/?user=&action=&path=&page=
                                      davstore_activity  the share's activity log

The trash, versions and activity pages go through the share's VFS too: the trash API
(:mod:`davstore.vfs.trash`: entries, restore, purge) and the activity log's reader
(:mod:`davstore.vfs.activity`), never the Storage; restore and purge are POSTs (CSRF) for
users who may write the share.

The site guard (:mod:`davstore.site`) shows here too: each file of a listing says which rows
name it ("Used by: N", linked to their change pages; one query per page), the delete and
rename confirmations list the objects naming what would go or move (as Django's own delete
confirmation lists related objects) and say what the share's policy will do, and a refused
delete or move comes back as a message naming the rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import logging
import mimetypes
import unicodedata
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from davstore.errors import AlreadyExists, DavstoreError, InvalidPath, PartlyDone
from davstore.permissions import can_read, can_write
from davstore.shares import Share, get_share, get_shares
from davstore.signals import acting_as_user
from davstore.site.integrity import MIN_AGE, check, related, trash_orphans, usage
from davstore.site.references import Found, ReferenceIndex
from davstore.thumbnails import NoThumbnail, Thumbnails, may_have_thumbnail, version_tag
from davstore.vfs import VFS, Entry, ReadHandle
from davstore.vfs.events import Action
from davstore.vfs.paths import ROOT, basename, join, parent
from davstore.vfs.trash import Trash, TrashEntry, trash_of

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite

__all__ = ["AdminSiteFrame", "FilesAdmin", "Frame", "Row", "TrashRow", "View"]

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20
#: Entries shown per page of a folder listing.
PAGE_SIZE = 100
#: The orders a listing can be sorted in (``?o=``; a leading ``-`` reverses).
SORTS = ("name", "size", "modified")
#: A text preview shows at most this many bytes of the file.
TEXT_PREVIEW = 256 << 10
#: Media types served inline for the preview (``inline/``); anything else is a download.
#: No SVG or HTML: they run scripts in the admin's origin.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "application/pdf",
    }
)
#: Media types previewed as text whatever their content (others are sniffed).
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
#: A delete confirmation counts at most this many entries inside a folder.
_COUNT_LIMIT = 1000

View = Callable[..., HttpResponseBase]


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One line of a folder listing."""

    name: str
    path: str
    is_dir: bool
    size: int | None
    modified: datetime.datetime | None
    url: str | None
    #: Rows of the site naming this file (None for folders, or when no field is guarded).
    used_by: Found | None = None
    #: Whether a thumbnail is worth asking for (a picture, not too big).
    thumbnail: bool = False
    #: Names this version of the file in its thumbnail's URL (a new version, a new URL:
    #: browsers may keep a thumbnail as long as they like).
    version: str = ""


class Frame(Protocol):
    """The admin the Files pages live in: its URL namespace, its login check, its look.

    :class:`AdminSiteFrame` is Django's admin; :mod:`davstore.wagtail_hooks` has Wagtail's.
    The views, the permission rules and the page bodies are the same in every frame.
    """

    #: The URL namespace the pages are reversed in (``admin`` for ``admin.site``).
    name: str
    #: The template every Files page extends; it maps the ``davstore_*`` blocks onto the
    #: admin's own (``admin/davstore/frame_django.html``).
    base_template: str

    def admin_view(self, view: View, *, cacheable: bool = False) -> View:
        """``view`` behind the admin's login (and CSRF protection); its answers are never
        cached unless ``cacheable`` (the view then says how long itself)."""
        ...

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        """What every page of the admin needs in its context."""
        ...

    def home_url(self) -> str:
        """The admin's home page (the first crumb)."""
        ...


class AdminSiteFrame:
    """A Django :class:`~django.contrib.admin.AdminSite` as the Files pages' frame."""

    base_template = "admin/davstore/frame_django.html"

    def __init__(self, site: AdminSite) -> None:
        self.site = site
        self.name = site.name

    def admin_view(self, view: View, *, cacheable: bool = False) -> View:
        wrapped: View = self.site.admin_view(view, cacheable=cacheable)
        return wrapped

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context: dict[str, Any] = self.site.each_context(request)
        return context

    def home_url(self) -> str:
        return reverse(f"{self.name}:index", current_app=self.name)


def _guarded(
    view: Callable[[FilesAdmin, HttpRequest, Share], HttpResponseBase],
) -> Callable[[FilesAdmin, HttpRequest, str], HttpResponseBase]:
    """Look the share up (404), require read permission (403), and turn a davstore error
    into an error message and a redirect to the folder the request came from."""

    @functools.wraps(view)
    def wrapper(self: FilesAdmin, request: HttpRequest, share: str) -> HttpResponseBase:
        try:
            found = get_share(share)
        except LookupError:
            raise Http404(f"no share named {share!r}") from None
        if not can_read(request.user, found):
            raise PermissionDenied
        try:
            return view(self, request, found)
        except OSError as exc:
            _report(request, found, view.__name__, exc)
            return self._redirect_to_folder(found, _folder_of(request))

    return wrapper


class FilesAdmin:
    """The "Files" pages of one admin site (see the module docstring)."""

    def __init__(self, frame: AdminSite | Frame) -> None:
        """``frame``: a Django admin site, or another admin's :class:`Frame`."""
        from django.contrib.admin import AdminSite

        self.frame: Frame = AdminSiteFrame(frame) if isinstance(frame, AdminSite) else frame

    # -- wiring ----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        """The URL patterns, to be included under ``davstore/`` in the site's URLs."""
        wrap = self.frame.admin_view

        def view(
            method: View, *decorators: Callable[[View], View], cacheable: bool = False
        ) -> View:
            handler: View = method
            for decorator in decorators:
                handler = decorator(handler)
            return wrap(handler, cacheable=cacheable)

        return [
            path("", view(self.index, require_GET), name="davstore_index"),
            path("<str:share>/", view(self.browse, require_GET), name="davstore_browse"),
            path(
                "<str:share>/download/",
                view(self.download, require_GET),
                name="davstore_download",
            ),
            path("<str:share>/upload/", view(self.upload, require_POST), name="davstore_upload"),
            path("<str:share>/mkdir/", view(self.mkdir, require_POST), name="davstore_mkdir"),
            path(
                "<str:share>/rename/",
                view(self.rename, require_http_methods(["GET", "POST"])),
                name="davstore_rename",
            ),
            path(
                "<str:share>/delete/",
                view(self.delete, require_http_methods(["GET", "POST"])),
                name="davstore_delete",
            ),
            path(
                "<str:share>/integrity/",
                view(self.integrity, require_GET),
                name="davstore_integrity",
            ),
            path("<str:share>/preview/", view(self.preview, require_GET), name="davstore_preview"),
            path("<str:share>/inline/", view(self.inline, require_GET), name="davstore_inline"),
            path(
                "<str:share>/thumbnail/",
                view(self.thumbnail, require_GET, cacheable=True),
                name="davstore_thumbnail",
            ),
            path(
                "<str:share>/integrity/trash-orphans/",
                view(self.trash_orphans, require_POST),
                name="davstore_trash_orphans",
            ),
            path("<str:share>/trash/", view(self.trash, require_GET), name="davstore_trash"),
            path(
                "<str:share>/trash/download/",
                view(self.trash_download, require_GET),
                name="davstore_trash_download",
            ),
            path(
                "<str:share>/trash/restore/",
                view(self.trash_restore, require_POST),
                name="davstore_trash_restore",
            ),
            path(
                "<str:share>/trash/purge/",
                view(self.trash_purge, require_http_methods(["GET", "POST"])),
                name="davstore_trash_purge",
            ),
            path(
                "<str:share>/versions/",
                view(self.versions, require_GET),
                name="davstore_versions",
            ),
            path(
                "<str:share>/activity/",
                view(self.activity, require_GET),
                name="davstore_activity",
            ),
        ]

    def app_list_entry(self, request: HttpRequest) -> dict[str, Any] | None:
        """The "Files" app for the admin index and sidebar: one row per share ``request``'s
        user may read, or None when there is none."""
        rows = []
        for share in get_shares().values():
            if not can_read(request.user, share):
                continue
            rows.append(
                {
                    "model": None,
                    "name": share.name,
                    "object_name": "Share",
                    "perms": {
                        "add": False,
                        "change": False,
                        "delete": False,
                        "view": True,
                    },
                    "admin_url": self._url("davstore_browse", share.name),
                    "add_url": None,
                    "view_only": not _writable(request, share),
                }
            )
        if not rows:
            return None
        return {
            "name": "Files",
            "app_label": "davstore",
            "app_url": self._url("davstore_index"),
            "has_module_perms": True,
            "models": rows,
        }

    # -- views -----------------------------------------------------------------------

    def index(self, request: HttpRequest) -> HttpResponse:
        """The shares ``request``'s user may read."""
        shares = [
            {
                "name": share.name,
                "storage": share.config.storage,
                "writable": _writable(request, share),
                "read_only": share.config.read_only,
                "url": self._url("davstore_browse", share.name),
            }
            for share in get_shares().values()
            if can_read(request.user, share)
        ]
        if not shares:
            raise PermissionDenied
        return self._render(
            request, "admin/davstore/index.html", {"title": "Files", "shares": shares}
        )

    @_guarded
    def browse(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """One folder, a page at a time: sub-folders first, then files, sorted by ``o``
        (``name``, ``size`` or ``modified``; ``-`` first reverses) and narrowed to the names
        holding ``q``. One listing of the folder (the VFS caches it) answers every page;
        only the page's rows are looked at further (URLs, the objects using them)."""
        raw = request.GET.get("path", "")
        folder = ROOT
        try:
            vfs = share.vfs
            folder = vfs.normalize(raw)
            entries = vfs.listdir(folder)
        except OSError as exc:
            if raw.strip("/"):
                raise  # back to the parent folder, with the message
            # The root itself failed (missing, or the store is down): say so here, no
            # redirect loop.
            missing = share.missing_message()
            if missing is not None:
                messages.warning(request, missing)
            else:
                _report(request, share, "browse", exc)
            entries = []
        total = len(entries)
        query = request.GET.get("q", "").strip()
        if query:
            needle = unicodedata.normalize("NFC", query).casefold()  # names are NFC
            entries = [e for e in entries if needle in e.basename.casefold()]
        order = request.GET.get("o", "name")
        if order.removeprefix("-") not in SORTS:
            order = "name"
        entries = _sorted(entries, order)
        page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [self._row(share.vfs, e) for e in page.object_list]
        index = _index(share)
        used = _usage(request, index, [r.path for r in rows if not r.is_dir])
        if used is None:
            index = None  # no column rather than a wrong one
        else:
            rows = [
                dataclasses.replace(r, used_by=used.get(r.path, Found((), 0)))
                if not r.is_dir
                else r
                for r in rows
            ]
        state = {"path": folder, "q": query, "o": "" if order == "name" else order}

        def here(**changes: str) -> str:
            params = {k: v for k, v in {**state, **changes}.items() if v}
            return self._url("davstore_browse", share.name, **params)

        def page_url(number: int) -> str:
            return here(page=str(number))

        sorts = []
        for key, label in (("name", "Name"), ("size", "Size"), ("modified", "Modified")):
            current = order.lstrip("-") == key
            descending = order.startswith("-")
            flip = f"-{key}" if current and not descending else key
            sorts.append(
                {
                    "key": key,
                    "label": label,
                    "url": here(o="" if flip == "name" else flip),
                    "current": current,
                    "descending": current and descending,
                }
            )
        context = {
            "title": f"{share.name}/{folder}" if folder else share.name,
            "share": share,
            "folder": folder,
            "crumbs": self._crumbs(share, folder),
            "parent_url": self._browse_url(share, parent(folder)) if folder else None,
            "rows": rows,
            "page": page,
            "total": total,
            "query": query,
            "order": state["o"],
            "sorts": {sort["key"]: sort for sort in sorts},
            "clear_url": here(q=""),
            "first_url": page_url(1) if page.number > 2 else None,
            "last_url": (
                page_url(page.paginator.num_pages)
                if page.number < page.paginator.num_pages - 1
                else None
            ),
            "previous_url": page_url(page.number - 1) if page.has_previous() else None,
            "next_url": page_url(page.number + 1) if page.has_next() else None,
            "writable": _writable(request, share),
            "read_only": share.config.read_only,
            "urls": self._action_urls(share),
            "guarded": index is not None,
        }
        return self._render(request, "admin/davstore/browse.html", context)

    @_guarded
    def preview(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """A page showing one file: pictures and PDFs inline (from ``inline/``), text as
        text (its first :data:`TEXT_PREVIEW` bytes), anything else described only."""
        vfs = share.vfs
        name = vfs.normalize(request.GET.get("path", ""))
        entry = vfs.stat(name)
        if entry.is_dir:
            return self._redirect_to_folder(share, name)
        kind = _preview_kind(entry)
        text = None
        truncated = False
        if kind == "text" or kind is None:
            with vfs.open_read(name) as handle:
                data = handle.read(TEXT_PREVIEW + 1)
            truncated = len(data) > TEXT_PREVIEW
            text = _as_text(data[:TEXT_PREVIEW], sniff=kind is None)
            kind = "text" if text is not None else None
        row = self._row(vfs, entry)
        context = {
            "title": entry.basename,
            "share": share,
            "entry": entry,
            "row": row,
            "kind": kind,
            "text": text,
            "truncated": truncated,
            "limit": TEXT_PREVIEW,
            "crumbs": self._crumbs(share, parent(name)),
            "folder_url": self._browse_url(share, parent(name)),
            "writable": _writable(request, share),
            "urls": self._action_urls(share),
        }
        return self._render(request, "admin/davstore/preview.html", context)

    @_guarded
    def inline(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """A picture's or a PDF's content to show in the page (``Content-Disposition:
        inline``); any other file is sent as a download, so nothing a person uploaded runs
        as a page of the admin."""
        vfs = share.vfs
        name = vfs.normalize(request.GET.get("path", ""))
        content_type = mimetypes.guess_type(basename(name))[0] or ""
        if content_type not in INLINE_TYPES:
            return self.download(request, share.name)
        handle = vfs.open_read(name)
        response: HttpResponseBase
        if handle.size is not None:
            response = FileResponse(handle, content_type=content_type)
            response.block_size = _BLOCK
        else:
            response = StreamingHttpResponse(_chunks(handle), content_type=content_type)
        disposition = content_disposition_header(False, basename(name))
        if disposition:
            response["Content-Disposition"] = disposition
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Frame-Options"] = "SAMEORIGIN"  # the preview page frames PDFs
        response["Cache-Control"] = "private, no-cache"
        return response

    @_guarded
    def thumbnail(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """A picture's thumbnail (:mod:`davstore.thumbnails`), made on first request and
        kept in the share's state folder; 404 for a file that has none."""
        vfs = share.vfs
        try:
            name = vfs.normalize(request.GET.get("path", ""))
            made = Thumbnails(vfs, share.state_dir() / "thumbnails").get(name)
        except (NoThumbnail, DavstoreError) as exc:
            # An <img> asked: no message for the next page, no redirect.
            return HttpResponse(
                f"No thumbnail: {exc}.", status=404, content_type="text/plain; charset=utf-8"
            )
        response = HttpResponse(made.data, content_type=made.content_type)
        # The listing's URL names the version (``v``); another URL asks again soon.
        versioned = request.GET.get("v") == version_tag(vfs.stat(name))
        response["Cache-Control"] = f"private, max-age={86400 if versioned else 60}"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @_guarded
    def download(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """The file's content as an attachment, streamed from a VFS read handle."""
        vfs = share.vfs
        name = vfs.normalize(request.GET.get("path", ""))
        handle = vfs.open_read(name)
        filename = basename(name)
        if handle.size is not None:
            attachment = FileResponse(handle, as_attachment=True, filename=filename)
            attachment.block_size = _BLOCK  # read lazily, in 1 MiB pieces instead of 4 KiB
            return attachment
        # FileResponse would take the unknown size for 0 (Content-Length: 0).
        response = StreamingHttpResponse(_chunks(handle), content_type="application/octet-stream")
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response

    @_guarded
    def upload(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """Store the uploaded files in ``folder`` (below it in ``relative``, a path of
        folders made as needed: a dropped folder's structure); an existing file is
        replaced only when ``replace`` is ticked.

        The form's POST answers with messages and a redirect to the folder. The page's
        script (``Accept: application/json``, one file a request, for its progress bars)
        gets ``{"uploaded": [...], "errors": [...]}`` instead: 200 when every file was
        stored, else 400 (403 for a user who may not write, as for the form).
        """
        self._require_write(request, share)
        wants_json = "application/json" in request.headers.get("Accept", "")
        vfs = share.vfs
        uploaded_names: list[str] = []
        errors: list[str] = []

        def fail(message: str) -> None:
            errors.append(message)
            if not wants_json:
                messages.error(request, message)

        folder = vfs.normalize(request.POST.get("folder", ""))
        back = folder
        try:
            relative = request.POST.get("relative", "").strip("/")
            for part in relative.split("/") if relative else []:
                folder = join(folder, _single_name(part))
                if vfs.lookup(folder) is None:
                    with acting_as_user(request.user, "admin"), contextlib.suppress(AlreadyExists):
                        vfs.mkdir(folder)
        except DavstoreError as exc:
            if not wants_json:
                raise
            return JsonResponse({"uploaded": [], "errors": [_describe(exc)]}, status=400)
        replace = request.POST.get("replace") == "on"
        files = request.FILES.getlist("files")
        if not files:
            fail("Choose a file to upload.")
        for uploaded in files:
            name = uploaded.name or ""
            try:
                name = _single_name(name)
                target = join(folder, name)
                with acting_as_user(request.user, "admin"):
                    handle = vfs.open_write(target, exclusive=not replace)
                    try:
                        for chunk in uploaded.chunks(_BLOCK):
                            handle.write(chunk)
                    except BaseException:
                        handle.abort()
                        raise
                    handle.close()
            except DavstoreError as exc:
                if isinstance(exc, AlreadyExists):
                    fail(f"“{name}” already exists: tick “Replace existing files” to replace it.")
                else:
                    fail(_describe(exc))
                continue
            uploaded_names.append(target)
            if not wants_json:
                messages.success(request, f"Uploaded “{name}”.")
        if wants_json:
            return JsonResponse(
                {"uploaded": uploaded_names, "errors": errors}, status=400 if errors else 200
            )
        return self._redirect_to_folder(share, back)

    @_guarded
    def mkdir(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """Create the folder ``name`` in ``folder``."""
        self._require_write(request, share)
        vfs = share.vfs
        folder = vfs.normalize(request.POST.get("folder", ""))
        name = _single_name(request.POST.get("name", ""))
        with acting_as_user(request.user, "admin"):
            vfs.mkdir(join(folder, name))
        messages.success(request, f"Created the folder “{name}”.")
        return self._redirect_to_folder(share, folder)

    @_guarded
    def rename(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """GET: a form for the new name; POST: rename ``path`` to ``name`` in its folder
        (an existing ``name`` is never replaced)."""
        self._require_write(request, share)
        vfs = share.vfs
        data = request.POST if request.method == "POST" else request.GET
        source = vfs.normalize(data.get("path", ""))
        if not source:
            raise InvalidPath(source, "the share root cannot be renamed")
        entry = vfs.stat(source)
        if request.method == "POST":
            name = _single_name(request.POST.get("name", ""))
            target = join(parent(source), name)
            with acting_as_user(request.user, "admin"):
                vfs.rename(source, target, replace=False)
            messages.success(request, f"Renamed “{entry.basename}” to “{name}”.")
            return self._redirect_to_folder(share, parent(source))
        index = _index(share)
        found = index.find(source, folder=entry.is_dir) if index is not None else Found((), 0)
        context = {
            "title": f"Rename {entry.basename}",
            "share": share,
            "entry": entry,
            "related": related(found),
            "related_count": found.count,
            "related_more": found.count - len(found.rows),
            "policy": share.config.on_move_referenced,
            "crumbs": self._crumbs(share, parent(source)),
            "cancel_url": self._browse_url(share, parent(source)),
        }
        return self._render(request, "admin/davstore/rename.html", context)

    @_guarded
    def delete(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """GET: what would go, with a confirmation button; POST: remove the file or the
        folder with everything in it."""
        self._require_write(request, share)
        vfs = share.vfs
        data = request.POST if request.method == "POST" else request.GET
        target = vfs.normalize(data.get("path", ""))
        if not target:
            raise InvalidPath(target, "the share root cannot be deleted")
        entry = vfs.stat(target)
        if request.method == "POST":
            with acting_as_user(request.user, "admin"):
                vfs.remove_tree(target)
            kind = "folder" if entry.is_dir else "file"
            messages.success(request, f"Deleted the {kind} “{entry.basename}”.")
            return self._redirect_to_folder(share, parent(target))
        inside = _count(vfs.walk(target), _COUNT_LIMIT) if entry.is_dir else 0
        index = _index(share)
        found = index.find(target, folder=entry.is_dir) if index is not None else Found((), 0)
        context = {
            "title": f"Delete {entry.basename}",
            "share": share,
            "entry": entry,
            "related": related(found),
            "related_count": found.count,
            "related_more": found.count - len(found.rows),
            "protected": bool(found) and share.config.on_delete_referenced == "refuse",
            "inside": inside,
            "inside_more": inside >= _COUNT_LIMIT,
            "trash_on": trash_of(vfs) is not None,
            "retention": share.retention,
            "trash_url": self._url("davstore_trash", share.name),
            "crumbs": self._crumbs(share, parent(target)),
            "cancel_url": self._browse_url(share, parent(target)),
        }
        return self._render(request, "admin/davstore/delete_confirmation.html", context)

    @_guarded
    def integrity(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """Orphans (files no row names, older than ``min_age`` seconds) and missing files
        (rows naming files the share does not hold), with what to do about each."""
        try:
            min_age = float(request.GET.get("min_age", MIN_AGE))
        except ValueError:
            min_age = -1
        if not 0 <= min_age < 1e10:
            messages.error(request, "The minimum age is a number of seconds.")
            min_age = MIN_AGE
        report = check(share.name, share.vfs, _index(share), min_age=min_age)
        context = {
            "title": f"Integrity of {share.name}",
            "share": share,
            "report": report,
            "min_age": int(min_age),
            "crumbs": self._crumbs(share, ROOT),
            "browse_url": self._browse_url(share, ROOT),
            "writable": _writable(request, share),
            "trash_on": trash_of(share.vfs) is not None,
            "urls": self._action_urls(share),
        }
        return self._render(request, "admin/davstore/integrity.html", context)

    @_guarded
    def trash_orphans(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """POST ``min_age`` and the ``path`` of each orphan to move: the report is made
        again and the orphans it still finds among them go to the share's trash
        (:func:`davstore.site.integrity.trash_orphans`), never away."""
        self._require_write(request, share)
        try:
            min_age = float(request.POST.get("min_age", MIN_AGE))
        except ValueError:
            min_age = -1
        back = self._url("davstore_integrity", share.name)
        if not 0 <= min_age < 1e10:
            messages.error(request, "The minimum age is a number of seconds.")
            return HttpResponseRedirect(back)
        back = self._url("davstore_integrity", share.name, min_age=f"{min_age:g}")
        chosen = request.POST.getlist("path")
        if not chosen:
            messages.warning(request, "Tick the orphans to move to the trash.")
            return HttpResponseRedirect(back)
        report = check(share.name, share.vfs, _index(share), min_age=min_age)
        try:
            with acting_as_user(request.user, "admin"):
                done = trash_orphans(share.vfs, report, chosen)
        except DavstoreError as exc:
            messages.error(request, _describe(exc))
            return HttpResponseRedirect(back)
        if done.moved:
            count = len(done.moved)
            messages.success(
                request,
                f"Moved {count} orphan{'s' if count != 1 else ''} to the trash: "
                + ", ".join(f"“{o.path}”" for o in done.moved)
                + ".",
            )
        for orphan, why in done.failed:
            messages.error(request, f"“{orphan.path}” stays: {why}.")
        if not done.moved and not done.failed:
            messages.warning(request, "No orphan to move (the files are no orphans now).")
        return HttpResponseRedirect(back)

    # -- the trash, previous versions, the activity log ------------------------------

    @_guarded
    def trash(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """The share's trash, newest first: filtered by a part of the path, the user, the
        kind and the day (``since``/``until``, UTC), :data:`PAGE_SIZE` entries a page;
        restore (optionally elsewhere) and purge for users who may write."""
        entries = _trash(share).entries()
        total, size = len(entries), sum(e.size for e in entries)
        users = sorted({e.user for e in entries if e.user})
        query = {k: request.GET.get(k, "").strip() for k in ("path", "user", "kind")}
        since = _day(request, "since")
        until = _day(request, "until")
        needle = query["path"].casefold()
        chosen = [
            e
            for e in reversed(entries)
            if needle in e.path.casefold()
            and (not query["user"] or e.user == query["user"])
            and (not query["kind"] or e.kind == query["kind"])
            and (since is None or e.when >= since.timestamp())
            and (until is None or e.when < (until + datetime.timedelta(days=1)).timestamp())
        ]
        page = Paginator(chosen, PAGE_SIZE).get_page(request.GET.get("page"))
        shown = {
            **query,
            "since": request.GET.get("since", ""),
            "until": request.GET.get("until", ""),
        }
        filters = {k: v for k, v in shown.items() if v}

        def page_url(number: int) -> str:
            return self._url("davstore_trash", share.name, **filters, page=str(number))

        context = {
            "title": f"Trash of {share.name}",
            "share": share,
            "rows": [_trash_row(e) for e in page.object_list],
            "page": page,
            "previous_url": page_url(page.number - 1) if page.has_previous() else None,
            "next_url": page_url(page.number + 1) if page.has_next() else None,
            "filters": shown,
            "filtered": bool(filters),
            "users": users,
            "total": total,
            "size": size,
            "retention": share.retention,
            "trash_on": trash_of(share.vfs) is not None,
            "writable": _writable(request, share),
            "crumbs": self._crumbs(share, ROOT),
            "urls": self._action_urls(share),
        }
        return self._render(request, "admin/davstore/trash.html", context)

    @_guarded
    def trash_download(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """What file entry ``id`` keeps (a deleted file, a previous version), as an
        attachment named after its path, for users who may read the share."""
        try:
            entry, stream = _trash(share).open_content(request.GET.get("id", ""))
        except DavstoreError as exc:
            messages.error(request, _describe(exc))
            return HttpResponseRedirect(self._url("davstore_trash", share.name))
        attachment = FileResponse(stream, as_attachment=True, filename=basename(entry.path))
        attachment.block_size = _BLOCK
        return attachment

    @_guarded
    def trash_restore(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """POST ``id`` (and ``to``, another path): put the entry back through the share's
        trash (a file at the name is kept first as a version). Back to the trash page, or
        with ``back=versions`` to the versions of ``path``."""
        self._require_write(request, share)
        entry_id = request.POST.get("id", "")
        to = request.POST.get("to", "").strip() or None
        if request.POST.get("back") == "versions":
            back = self._url("davstore_versions", share.name, path=request.POST.get("path", ""))
        else:
            back = self._url("davstore_trash", share.name)
        try:
            with acting_as_user(request.user, "admin"):
                restored = _trash(share).restore(entry_id, to)
        except AlreadyExists as exc:
            messages.error(
                request,
                f"Something a restore does not replace is at “{exc.path}” now (a folder, "
                "or a file where a folder goes): restore it elsewhere with “Restore to”.",
            )
            return HttpResponseRedirect(back)
        except DavstoreError as exc:
            messages.error(request, _describe(exc))
            return HttpResponseRedirect(back)
        what = "folder" if restored.is_dir else "file"
        messages.success(request, f"Restored the {what} “{restored.path}”.")
        return HttpResponseRedirect(back)

    @_guarded
    def trash_purge(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """GET: a confirmation for entry ``id``, or the whole trash with ``all=1``; POST:
        purge it now (the share's trash, whatever retention says)."""
        self._require_write(request, share)
        data = request.POST if request.method == "POST" else request.GET
        entry_id = data.get("id", "")
        everything = data.get("all") == "1"
        box = _trash(share)
        back = HttpResponseRedirect(self._url("davstore_trash", share.name))
        if not everything and not entry_id:
            messages.error(request, "Choose an entry to purge.")
            return back
        try:
            if request.method == "POST":
                if everything:
                    result = box.purge(everything=True)
                    messages.success(
                        request,
                        f"Purged {result.removed} entr{'y' if result.removed == 1 else 'ies'} "
                        f"({result.freed} bytes) from the trash.",
                    )
                else:
                    gone = box.remove(entry_id)
                    messages.success(request, f"Purged “{gone.path}” from the trash.")
                return back
            entry = None if everything else box.entry(entry_id)
            entries = box.entries() if everything else []
        except DavstoreError as exc:
            messages.error(request, _describe(exc))
            return back
        context = {
            "title": "Empty the trash" if everything else f"Purge {entry.path if entry else ''}",
            "share": share,
            "entry": _trash_row(entry) if entry is not None else None,
            "everything": everything,
            "count": len(entries),
            "size": sum(e.size for e in entries),
            "crumbs": self._crumbs(share, ROOT),
            "cancel_url": self._url("davstore_trash", share.name),
        }
        return self._render(request, "admin/davstore/trash_purge.html", context)

    @_guarded
    def versions(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """The previous versions of file ``path`` (the contents replaced there, kept by
        the trash), newest first, each restorable onto the file (which is kept in turn)."""
        vfs = share.vfs
        name = vfs.normalize(request.GET.get("path", ""))
        if not name:
            raise InvalidPath(name, "choose a file")
        current = vfs.lookup(name)
        rows = [_trash_row(e) for e in reversed(_trash(share).versions(name))]
        context = {
            "title": f"Versions of {basename(name)}",
            "share": share,
            "path": name,
            "current": self._row(vfs, current) if current is not None else None,
            "rows": rows,
            "writable": _writable(request, share),
            "crumbs": self._crumbs(share, parent(name)),
            "folder_url": self._browse_url(share, parent(name)),
            "urls": self._action_urls(share),
        }
        return self._render(request, "admin/davstore/versions.html", context)

    @_guarded
    def activity(self, request: HttpRequest, share: Share) -> HttpResponseBase:
        """The share's activity log (:class:`~davstore.vfs.activity.ActivityLog`, what
        ``davstore activity`` prints), newest first, filtered by user, action and a part
        of the path (or target), :data:`PAGE_SIZE` records a page."""
        records = share.activity_log().read()
        users = sorted({r["user"] for r in records if r.get("user")})
        query = {k: request.GET.get(k, "").strip() for k in ("user", "action", "path")}
        needle = query["path"].casefold()
        chosen = [
            _activity_row(r)
            for r in reversed(records)
            if (not query["user"] or r.get("user") == query["user"])
            and (not query["action"] or r.get("action") == query["action"])
            and (
                needle in str(r.get("path", "")).casefold()
                or needle in str(r.get("target") or "").casefold()
            )
        ]
        page = Paginator(chosen, PAGE_SIZE).get_page(request.GET.get("page"))
        filters = {k: v for k, v in query.items() if v}

        def page_url(number: int) -> str:
            return self._url("davstore_activity", share.name, **filters, page=str(number))

        context = {
            "title": f"Activity in {share.name}",
            "share": share,
            "rows": page.object_list,
            "page": page,
            "previous_url": page_url(page.number - 1) if page.has_previous() else None,
            "next_url": page_url(page.number + 1) if page.has_next() else None,
            "filters": query,
            "users": users,
            "actions": [a.value for a in Action],
            "crumbs": self._crumbs(share, ROOT),
            "urls": self._action_urls(share),
        }
        return self._render(request, "admin/davstore/activity.html", context)

    # -- helpers ---------------------------------------------------------------------

    def _render(self, request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
        request.current_app = self.frame.name
        frame = {
            "davstore_base": self.frame.base_template,
            "home_url": self.frame.home_url(),
            "files_url": self._url("davstore_index"),
        }
        return TemplateResponse(
            request, template, {**self.frame.each_context(request), **frame, **context}
        )

    def _url(self, name: str, share: str | None = None, **query: str) -> str:
        args = [] if share is None else [share]
        url = reverse(f"{self.frame.name}:{name}", args=args, current_app=self.frame.name)
        return f"{url}?{urlencode(query)}" if query else url

    def _browse_url(self, share: Share, folder: str) -> str:
        return self._url("davstore_browse", share.name, **({"path": folder} if folder else {}))

    def _redirect_to_folder(self, share: Share, folder: str) -> HttpResponseRedirect:
        return HttpResponseRedirect(self._browse_url(share, folder))

    def _action_urls(self, share: Share) -> dict[str, str]:
        return {
            action: self._url(f"davstore_{action}", share.name)
            for action in (
                "browse",
                "download",
                "upload",
                "mkdir",
                "rename",
                "delete",
                "integrity",
                "trash_orphans",
                "trash",
                "trash_download",
                "trash_restore",
                "trash_purge",
                "versions",
                "activity",
                "preview",
                "inline",
                "thumbnail",
            )
        }

    def _crumbs(self, share: Share, folder: str) -> list[tuple[str, str]]:
        """(label, url) from the share root down to ``folder``."""
        crumbs = [(share.name, self._browse_url(share, ROOT))]
        done = ROOT
        for part in folder.split("/") if folder else []:
            done = join(done, part)
            crumbs.append((part, self._browse_url(share, done)))
        return crumbs

    def _row(self, vfs: VFS, entry: Entry) -> Row:
        url = None
        if not entry.is_dir and vfs.capabilities.url:
            try:
                url = vfs.url(entry.name)
            except DavstoreError:
                url = None
        modified = (
            datetime.datetime.fromtimestamp(entry.mtime, tz=datetime.timezone.utc)
            if entry.mtime is not None
            else None
        )
        return Row(
            entry.basename,
            entry.name,
            entry.is_dir,
            entry.size,
            modified,
            url,
            thumbnail=may_have_thumbnail(entry),
            version=version_tag(entry),
        )

    @staticmethod
    def _require_write(request: HttpRequest, share: Share) -> None:
        if not _writable(request, share):
            raise PermissionDenied


def _index(share: Share) -> ReferenceIndex | None:
    """The share's reference index, or None when no model field stores files in it."""
    from davstore.site.guard import index_for

    return index_for(share)


def _usage(
    request: HttpRequest, index: ReferenceIndex | None, names: list[str]
) -> dict[str, Found] | None:
    """:func:`usage` of ``names``, or None (with a warning) when the index's table cannot
    be read (``migrate`` not run): the listing still shows."""
    if index is None:
        return None
    try:
        return usage(index, names)
    except DatabaseError as exc:
        logger.warning("share %r: the reference index cannot be read: %s", index.share, exc)
        messages.warning(
            request, "Which objects use these files is unknown: run `manage.py migrate`."
        )
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class TrashRow:
    """One entry of the Trash page or of a file's versions."""

    id: str
    path: str
    kind: str
    is_dir: bool
    when: datetime.datetime
    user: str | None
    origin: str | None
    size: int
    state: str


def _trash_row(entry: TrashEntry) -> TrashRow:
    when = datetime.datetime.fromtimestamp(entry.when, tz=datetime.timezone.utc)
    return TrashRow(
        entry.id,
        entry.path,
        entry.kind,
        entry.is_dir,
        when,
        entry.user,
        entry.origin,
        entry.size,
        entry.state,
    )


def _activity_row(record: dict[str, Any]) -> dict[str, Any]:
    try:
        when = datetime.datetime.fromtimestamp(float(record["when"]), tz=datetime.timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError):
        when = None
    return {**record, "when": when}


def _trash(share: Share) -> Trash:
    """The trash of ``share``'s VFS; with the trash off (``TRASH: False``), one over the
    same store all the same, so what was kept before can still be restored and purged."""
    return trash_of(share.vfs) or Trash(share.vfs, share.retention)


def _day(request: HttpRequest, key: str) -> datetime.datetime | None:
    """The UTC midnight of the ``YYYY-MM-DD`` day in ``request.GET[key]``; None when
    absent, and a message when it is not a day."""
    raw = request.GET.get(key, "").strip()
    if not raw:
        return None
    try:
        day = datetime.date.fromisoformat(raw)
    except ValueError:
        messages.error(request, f"“{raw}” is not a day (use YYYY-MM-DD).")
        return None
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)


def _writable(request: HttpRequest, share: Share) -> bool:
    return not share.config.read_only and can_write(request.user, share)


def _folder_of(request: HttpRequest) -> str:
    """The folder to go back to after a failed request: the ``folder`` it was made from,
    else the parent of its ``path`` (for browse: of the folder that failed), else the root."""
    data = request.POST if request.method == "POST" else request.GET
    folder = data.get("folder")
    if folder is None:
        folder = parent(data.get("path", "").strip("/"))
    try:
        return VFS.normalize(folder)
    except DavstoreError:
        return ROOT


def _single_name(name: str) -> str:
    """``name`` as one path component, or InvalidPath."""
    name = name.strip()
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise InvalidPath(name, "a name must not be empty or contain '/'")
    return VFS.normalize(name)


def _report(request: HttpRequest, share: Share, action: str, exc: OSError) -> None:
    """Show ``exc`` as an error message. A davstore error names the share path (and is
    logged, but for a change done in part: the VFS logged that one); any other OSError (a
    store that fails to build, say) is logged with its traceback and shown without its
    host path."""
    if isinstance(exc, DavstoreError):
        if not isinstance(exc, PartlyDone):
            logger.info("admin %s on share %r failed: %s", action, share.name, exc)
        messages.error(request, _describe(exc))
    else:
        logger.error("admin %s on share %r failed", action, share.name, exc_info=exc)
        messages.error(request, f"The store failed: {exc.strerror or type(exc).__name__}.")


def _describe(exc: DavstoreError) -> str:
    reason = exc.reason[:1].upper() + exc.reason[1:]
    return f"{reason}: “{exc.path}”." if exc.path else f"{reason}."


def _sorted(entries: list[Entry], order: str) -> list[Entry]:
    """Folders first, then files, each by ``order`` (see :data:`SORTS`); names break ties
    and unknown sizes and times come last whichever the direction."""
    key = order.lstrip("-")
    reverse = order.startswith("-")

    def by_name(e: Entry) -> str:
        return e.basename.casefold()

    result: list[Entry] = []
    for group in ([e for e in entries if e.is_dir], [e for e in entries if not e.is_dir]):
        group.sort(key=by_name, reverse=reverse and key == "name")
        if key == "name":
            result.extend(group)
            continue
        known = [e for e in group if getattr(e, _FIELDS[key]) is not None]
        known.sort(key=lambda e: getattr(e, _FIELDS[key]), reverse=reverse)
        result.extend(known)
        result.extend(e for e in group if getattr(e, _FIELDS[key]) is None)
    return result


_FIELDS = {"size": "size", "modified": "mtime"}


def _preview_kind(entry: Entry) -> str | None:
    """``image``, ``pdf`` or ``text`` by the file's name; None: look at the content."""
    content_type = mimetypes.guess_type(entry.basename)[0] or ""
    if content_type == "application/pdf":
        return "pdf"
    if content_type in INLINE_TYPES and content_type.startswith("image/"):
        return "image"
    if content_type.startswith(_TEXT_TYPES):
        return "text"
    return None


def _as_text(data: bytes, *, sniff: bool) -> str | None:
    """``data`` as text (UTF-8, else Latin-1), or None when ``sniff`` and it looks binary
    (a NUL byte, or not UTF-8)."""
    if sniff and b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # cut in the middle of a character
            return data[: exc.start].decode("utf-8")
        if sniff:
            return None
        return data.decode("latin-1")


def _count(entries: Iterator[Entry], limit: int) -> int:
    count = 0
    for _ in entries:
        count += 1
        if count >= limit:
            break
    return count


def _chunks(handle: ReadHandle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_BLOCK):
            yield chunk
