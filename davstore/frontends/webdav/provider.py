"""The wsgidav provider: WebDAV resources that delegate every operation to a VFS.

Each method translates and delegates; the VFS owns the semantics and
:mod:`davstore.frontends.webdav.error_status` turns what it raises into HTTP statuses.

Writes: a PUT streams the body into a VFS write handle (``begin_write``) and commits it in
``end_write``. A PUT of a new file gets a lazy resource from ``create_empty_resource``, so
nothing is stored before the body arrives (no double write on object stores). A body that
breaks off (fewer bytes than Content-Length, a read error) or fails at the store is aborted:
the old content stays and no partial file is left.

Dead properties and locks live in wsgidav's property and lock managers, keyed by the
resource's ref-URL; deleting, moving and copying carry them along.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from lxml import etree
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_CREATED,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
    DAVErrorCondition,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from davstore.errors import NotFound, PartlyCopied, PartlyDone, PartlyRemoved
from davstore.frontends.webdav.content_safety import CONTENT_HEADERS
from davstore.frontends.webdav.desktop import WIN32_LAST_MODIFIED, win32_mtime_ns
from davstore.frontends.webdav.error_status import dav_errors, to_dav_error
from davstore.frontends.webdav.limits import DAVSTORE_NS, DavLimits
from davstore.frontends.webdav.locked_empty import note_created
from davstore.frontends.webdav.propfind import Fragments, answer_propfind, stream_propfind
from davstore.frontends.webdav.sync import SYNC_PROPERTIES, sync_properties
from davstore.http.wsgi import Environ
from davstore.store.base import Usage
from davstore.vfs import VFS, Entry, ReadHandle, WriteHandle
from davstore.vfs.paths import is_within

__all__ = ["FileResource", "FolderResource", "VfsProvider", "expected_length"]

logger = logging.getLogger(__name__)


_USAGE_KEY = "davstore.usage"
#: A PROPPATCH's dead property names per ref-URL: those stored plus those it adds.
_PLANNED_KEY = "davstore.planned_properties"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _method(environ: Environ) -> str:
    return str(environ.get("REQUEST_METHOD", ""))


class VfsProvider(DAVProvider):  # type: ignore[misc]
    """One share: the resources of ``vfs``.

    :param max_upload_size: a PUT body past this many bytes is refused with 413, also
        when it is sent chunked (no Content-Length).
    :param limits: the share's bounds on PROPFIND depth, properties and locks.
    """

    def __init__(
        self, vfs: VFS, *, max_upload_size: int | None = None, limits: DavLimits | None = None
    ) -> None:
        super().__init__()
        self.vfs = vfs
        self.max_upload_size = max_upload_size
        self.limits = limits or DavLimits()
        #: Answer what :mod:`~davstore.frontends.webdav.propfind` understands without
        #: wsgidav's generic code (tests turn it off to compare both answers).
        self.fast_paths = True
        #: The PROPFIND elements rendered for this share, reused while entries stay.
        self.propfind_fragments = Fragments()
        self.verbose = 1  # wsgidav prints tracebacks to stdout from verbose 2 on

    def __repr__(self) -> str:
        mode = "read-only" if self.vfs.read_only else "read-write"
        return f"VfsProvider({self.vfs.describe()}, {mode})"

    def is_readonly(self) -> bool:
        return self.vfs.read_only

    def custom_request_handler(
        self, environ: Environ, start_response: Callable[..., Any], default_handler: Any
    ) -> Any:
        """Answer the requests of :mod:`~davstore.frontends.webdav.propfind` directly, and
        apply the share's :class:`~davstore.frontends.webdav.limits.DavLimits`."""
        method = environ["REQUEST_METHOD"]
        if method == "PROPFIND":
            depth = environ.get("HTTP_DEPTH", "infinity").lower()
            if depth == "infinity":
                return self._propfind_infinity(environ, start_response, default_handler)
            if self.fast_paths:
                answer = answer_propfind(self, environ, start_response)
                if answer is not None:
                    return answer
        elif method == "PROPPATCH":
            self._check_proppatch_size(environ)
        elif method == "LOCK":
            requested = util.read_timeout_value_header(environ.get("HTTP_TIMEOUT", ""))
            environ["HTTP_TIMEOUT"] = f"Second-{self.limits.lock_timeout(requested)}"
        return default_handler(environ, start_response)

    def _propfind_infinity(
        self, environ: Environ, start_response: Callable[..., Any], default_handler: Any
    ) -> Any:
        """Depth infinity on a folder: refused (403 ``propfind-finite-depth``) or streamed.
        On a file it is Depth 0 (wsgidav answers), on nothing a 404."""
        resource = self.get_resource_inst(environ["PATH_INFO"], environ)
        if resource is None or not resource.is_collection:
            return default_handler(environ, start_response)
        if not self.limits.depth_infinity:
            raise DAVError(
                HTTP_FORBIDDEN,
                "PROPFIND with Depth: infinity is not allowed on this share (use Depth: 1)",
                err_condition=PRECONDITION_CODE_PropfindFiniteDepth,
            )
        # wsgidav's own checks of the If headers, as its do_PROPFIND makes them.
        default_handler.__self__._evaluate_if_headers(resource, environ)
        return stream_propfind(self, resource, environ, start_response)

    def _check_proppatch_size(self, environ: Environ) -> None:
        """413 before anything changes when a PROPPATCH names too many properties."""
        stream = environ.get("wsgi.input")
        if not isinstance(stream, io.BytesIO):  # XmlGuard reads XML bodies into memory
            return
        body = stream.getvalue()
        limit = self.limits.max_properties_per_request
        if body.count(b"<") <= limit:  # every property takes a tag at least: no parse
            return
        try:
            root = etree.fromstring(body, parser=_PARSER)
        except (etree.XMLSyntaxError, ValueError):
            return  # wsgidav answers 400
        named = sum(len(prop) for prop in root.iterfind("{DAV:}*/{DAV:}prop"))
        if named > limit:
            raise DAVError(
                HTTP_REQUEST_ENTITY_TOO_LARGE,
                f"a PROPPATCH may change at most {limit} properties ({named} asked)",
                err_condition=DAVErrorCondition(f"{{{DAVSTORE_NS}}}too-many-properties"),
            )

    def get_resource_inst(self, path: str, environ: Environ) -> _Resource | None:
        self._count_get_resource_inst += 1
        with dav_errors(_method(environ)):
            try:
                entry = self.vfs.stat(path)
            except NotFound:
                return None
        return self.resource_for(path, entry, environ)

    def resource_for(self, path: str, entry: Entry, environ: Environ) -> _Resource:
        if entry.is_dir:
            return FolderResource(path, environ, entry)
        return FileResource(path, environ, entry)

    def usage(self, environ: Environ) -> Usage:
        """The store's quota figures, asked once per request."""
        usage = environ.get(_USAGE_KEY)
        if usage is None:
            with dav_errors(_method(environ)):
                usage = environ[_USAGE_KEY] = self.vfs.usage()
        return usage


class _ResourceMixin:
    """What files and folders share: metadata from the VFS entry, properties, locks."""

    path: str
    environ: Environ
    provider: VfsProvider
    entry: Entry | None

    @property
    def vfs(self) -> VFS:
        return self.provider.vfs

    def get_last_modified(self) -> float | None:
        return None if self.entry is None else self.entry.mtime

    remove_all_locks: Callable[..., None]  # these two come from wsgidav's _DAVResource
    get_preferred_path: Callable[[], str]
    _ref_url: str | None = None

    def get_ref_url(self) -> str:
        # wsgidav asks for it about ten times per member of a PROPFIND: quote it once.
        if self._ref_url is None:
            self._ref_url = quote(self.provider.share_path + self.get_preferred_path())
        return self._ref_url

    def _dest_ref_url(self, dest_path: str, *, is_collection: bool) -> str:
        # wsgidav's member-by-member copy names members "/dst//name": the canonical path.
        with dav_errors(_method(self.environ)):
            dest_path = "/" + self.vfs.normalize(dest_path)
        dest = self.provider.get_resource_inst(dest_path, self.environ)
        if dest is not None:
            return str(dest.get_ref_url())
        path = dest_path.rstrip("/") + ("/" if is_collection else "")
        return quote(self.provider.share_path + path)

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        """Dead properties as wsgidav keeps them; ``Win32LastModifiedTime`` also sets the
        file's modification time where the store keeps one. A new dead property past
        the share's ``max_properties`` is 507 (checked in wsgidav's dry run, so a
        PROPPATCH changes all or nothing)."""
        if dry_run and value is not None and not name.startswith("{DAV:}"):
            self._check_property_room(name)
        result = super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        if name == WIN32_LAST_MODIFIED and not dry_run and value is not None:
            self._apply_mtime(win32_mtime_ns(value.text))
        return result

    def _check_property_room(self, name: str) -> None:
        manager = self.provider.prop_manager
        if manager is None:
            return
        url = self.get_ref_url()
        planned: dict[str, set[str]] = self.environ.setdefault(_PLANNED_KEY, {})
        names = planned.get(url)
        if names is None:
            names = planned[url] = set(manager.get_properties(url, self.environ))
        if name in names:
            return
        limit = self.provider.limits.max_properties
        if len(names) >= limit:
            raise DAVError(
                HTTP_INSUFFICIENT_STORAGE,
                f"a resource may hold at most {limit} dead properties",
                err_condition=DAVErrorCondition(f"{{{DAVSTORE_NS}}}too-many-properties"),
            )
        names.add(name)

    def _apply_mtime(self, mtime_ns: int | None) -> None:
        if mtime_ns is None:
            return
        with dav_errors("PROPPATCH"):
            self.vfs.set_mtime(self.path, mtime_ns)
            self.entry = self.vfs.stat(self.path)

    def reapply_win32_mtime(self) -> None:
        """After a PUT under a lock: the ``Win32LastModifiedTime`` Explorer set before it."""
        manager = self.provider.prop_manager
        if manager is None or not self.environ.get("wsgidav.ifLockTokenList"):
            return
        value = manager.get_property(self.get_ref_url(), WIN32_LAST_MODIFIED, self.environ)
        if value is None:
            return
        try:
            text = etree.fromstring(value).text
        except etree.XMLSyntaxError:
            return
        self._apply_mtime(win32_mtime_ns(text))

    def remove_all_properties(self, *, recursive: bool) -> None:
        manager = self.provider.prop_manager
        if manager is None:
            return
        if recursive and hasattr(manager, "remove_tree"):
            manager.remove_tree(self.get_ref_url())
        else:
            manager.remove_properties(self.get_ref_url(), self.environ)

    def _carry_properties(self, dest_path: str, *, is_move: bool, with_children: bool) -> None:
        manager = self.provider.prop_manager
        if manager is None:
            return
        is_collection = isinstance(self, FolderResource)
        dest_url = self._dest_ref_url(dest_path, is_collection=is_collection)
        if is_move:
            manager.move_properties(
                self.get_ref_url(), dest_url, with_children=with_children, environ=self.environ
            )
        else:
            manager.copy_properties(self.get_ref_url(), dest_url, self.environ)

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def _refuse_onto_holder(self, dest_path: str, method: str) -> None:
        """403 for a COPY or MOVE onto a folder that holds the source: wsgidav would
        delete that destination first, the source with it, and then find nothing to
        copy or move (RFC 4918 section 9.8.4 makes the destination go first)."""
        with dav_errors(method):
            source, target = self.vfs.normalize(self.path), self.vfs.normalize(dest_path)
        if source != target and is_within(source, target):
            raise DAVError(
                HTTP_FORBIDDEN, f"cannot {method} {self.path!r} onto {dest_path!r}, which holds it"
            )

    def handle_move(self, dest_path: str) -> bool:
        """Refuse a MOVE onto a folder that holds the source; the rest is wsgidav's (it
        removes an existing destination, then calls :meth:`move_recursive`)."""
        self._refuse_onto_holder(dest_path, "MOVE")
        return False

    def move_recursive(self, dest_path: str) -> list[tuple[str, DAVError]]:
        """Move in one VFS call (``vfs.rename``, a folder streamed where the store cannot
        rename); dead properties follow, locks stay behind. Members that could not be
        copied are the answer's (a 207 Multi-Status) and nothing moved: the source is
        whole and the destination holds nothing (the VFS removed what the copy made
        there; members it could not remove are the answer's too, at the destination).
        Members of the source that could not be removed once all was copied are the
        answer's as well, the move having happened."""
        failed: list[tuple[str, DAVError]] = []
        with dav_errors("MOVE"):
            try:
                self.vfs.rename(self.path, dest_path)
            except PartlyCopied as exc:
                failed = self._failures(exc)
                if isinstance(exc.left, PartlyDone):
                    failed += [(self._href_of(n), to_dav_error(e)) for n, e in exc.left.failures]
                elif exc.left is not None:
                    at = exc.left.path or self.vfs.normalize(dest_path)
                    failed.append((self._href_of(at), to_dav_error(exc.left)))
                return failed
            except PartlyRemoved as exc:
                failed = self._failures(exc)
        self._carry_properties(dest_path, is_move=True, with_children=True)
        lock_manager = self.provider.lock_manager
        if lock_manager is not None:
            lock_manager.remove_all_locks_from_url(self.get_ref_url(), recursive=True)
        return failed

    def _failures(self, exc: PartlyDone) -> list[tuple[str, DAVError]]:
        """Each member ``exc`` names, as wsgidav reports it in a 207 Multi-Status (the VFS
        logged the change that was done in part: one line a request)."""
        return [(self._href_of(name), to_dav_error(err)) for name, err in exc.failures]

    def _href_of(self, name: str) -> str:
        """The href of share path ``name`` (canonical), as :meth:`get_href` makes one."""
        base = self.provider.mount_path + self.provider.share_path
        return quote(f"{base}/{name}", safe="/!*'(),$-_|.")


class FileResource(_ResourceMixin, DAVNonCollection):  # type: ignore[misc]
    """A file. ``entry`` is ``None`` for a file a PUT is about to create."""

    def __init__(self, path: str, environ: Environ, entry: Entry | None) -> None:
        super().__init__(path, environ)
        self.entry = entry
        self._upload: _PutStream | None = None
        self._reader: ReadHandle | None = None
        self._content_type: str | None = None

    def get_content_length(self) -> int | None:
        if self.entry is None:
            return 0
        if _method(self.environ) == "GET" and self._reader is None:
            # wsgidav promises this length (and the ETag) before it reads the content: open
            # the content now and describe the version that will be sent.
            with dav_errors("GET"):
                self._reader = self.vfs.open_read(self.path, exact=True)
            self.entry = self._reader.entry
        return self.entry.size

    def get_content_type(self) -> str:
        if self._content_type is None:
            config = self.environ["wsgidav.config"]
            self._content_type = str(util.guess_mime_type(self.path, config))
        return self._content_type

    def get_etag(self) -> str | None:
        return None if self.entry is None else self.entry.etag

    def finalize_headers(self, environ: Environ, response_headers: list[tuple[str, str]]) -> None:
        """wsgidav's hook on the headers of a GET or HEAD of the file: the file's content
        may not act as a page of the share (content_safety.py)."""
        response_headers.extend(CONTENT_HEADERS)

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> ReadHandle:
        reader, self._reader = self._reader, None
        if reader is not None:
            return reader
        with dav_errors(_method(self.environ)):
            return self.vfs.open_read(self.path)

    def begin_write(self, *, content_type: str | None = None) -> _PutStream:
        with dav_errors("PUT"):
            handle = self.vfs.open_write(self.path)
        self._upload = _PutStream(handle, self.environ, limit=self.provider.max_upload_size)
        return self._upload

    def end_write(self, *, with_errors: bool) -> None:
        upload, self._upload = self._upload, None
        if upload is None:
            return
        upload.finish(failed=with_errors)
        if not with_errors:
            with dav_errors("PUT"):
                self.entry = self.vfs.stat(self.path)
            self.reapply_win32_mtime()

    def delete(self) -> None:
        if not self._replaced_by_request():
            with dav_errors("DELETE"):
                self.vfs.remove(self.path)
        self.remove_all_properties(recursive=False)
        self.remove_all_locks(recursive=True)

    def _replaced_by_request(self) -> bool:
        """Whether this file is the destination of the MOVE or COPY of a file being served.

        wsgidav deletes an existing destination before moving or copying onto it; the
        VFS's rename and copy replace a file in one step instead (nothing is ever missing
        in between), and its policies then see what it is: new content at that name (the
        site guard validates it and keeps the rows naming it), not a delete refused
        because rows name the file. So the file is left for the move or copy to replace.
        """
        if _method(self.environ) not in ("MOVE", "COPY"):
            return False
        with dav_errors("DELETE"):
            source = self.vfs.normalize(self.environ.get("PATH_INFO", ""))
            if source == self.vfs.normalize(self.path):
                return False
            entry = self.vfs.lookup(source)
        return entry is not None and not entry.is_dir

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        """Refuse a COPY onto a folder that holds the file; the rest is wsgidav's."""
        self._refuse_onto_holder(dest_path, "COPY")
        return False

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        # wsgidav deletes the source itself after a move done this way.
        with dav_errors("MOVE" if is_move else "COPY"):
            self.vfs.copy(self.path, dest_path, replace=True)
        self._carry_properties(dest_path, is_move=is_move, with_children=False)


class FolderResource(_ResourceMixin, DAVCollection):  # type: ignore[misc]
    """A folder."""

    def __init__(self, path: str, environ: Environ, entry: Entry) -> None:
        super().__init__(path, environ)
        self.entry = entry

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        """wsgidav's, and the sync properties when asked for names (never in allprop)."""
        names: list[str] = super().get_property_names(is_allprop=is_allprop)
        if not is_allprop and self.vfs.change_feed is not None:
            names.extend(SYNC_PROPERTIES)
        return names

    def get_property_value(self, name: str) -> Any:
        if name in SYNC_PROPERTIES:
            return sync_properties(self.vfs, name)
        return super().get_property_value(name)

    def get_member_names(self) -> list[str]:
        with dav_errors(_method(self.environ)):
            return [entry.basename for entry in self.vfs.listdir(self.path)]

    def get_member_list(self) -> list[_Resource]:
        with dav_errors(_method(self.environ)):
            entries = self.vfs.listdir(self.path)
        return [
            self.provider.resource_for(
                util.join_uri(self.path, entry.basename), entry, self.environ
            )
            for entry in entries
        ]

    def get_used_bytes(self) -> int | None:
        return self.provider.usage(self.environ).used

    def get_available_bytes(self) -> int | None:
        return self.provider.usage(self.environ).available

    def create_empty_resource(self, name: str) -> FileResource:
        path = util.join_uri(self.path, name)
        if _method(self.environ) != "LOCK":
            return FileResource(path, self.environ, None)  # PUT: begin_write stores it
        with dav_errors("LOCK"):
            entry = self.vfs.write_file(path, b"")
        resource = FileResource(path, self.environ, entry)
        note_created(resource.get_ref_url(), entry.etag)
        return resource

    def create_collection(self, name: str) -> None:
        with dav_errors("MKCOL"):
            self.vfs.mkdir(util.join_uri(self.path, name))

    def support_recursive_delete(self) -> bool:
        return True

    def handle_delete(self) -> bool | list[tuple[str, DAVError]]:
        """The folder's DELETE in one VFS call, without wsgidav's resource per member
        (however many members: the VFS streams it). A lock below the folder the request
        holds no token of sends it back to wsgidav's member-by-member delete, which
        answers each locked member 423."""
        manager = self.provider.lock_manager
        if manager is not None:
            environ = self.environ
            if "wsgidav.conditions.if" not in environ:
                util.parse_if_header_dict(environ)
            try:
                manager.check_write_permission(
                    url=self.get_ref_url(),
                    depth="infinity",
                    token_list=environ["wsgidav.ifLockTokenList"],
                    principal=environ.get("wsgidav.user_name"),
                )
            except DAVError:
                return False
        return self.delete() or True

    def delete(self) -> list[tuple[str, DAVError]]:
        """Remove the folder and its tree; members that could not be removed are the
        answer's (a 207 Multi-Status, RFC 4918 section 9.6.1)."""
        failed: list[tuple[str, DAVError]] = []
        with dav_errors("DELETE"):
            try:
                self.vfs.remove_tree(self.path)
            except PartlyRemoved as exc:
                failed = self._failures(exc)
        self.remove_all_properties(recursive=True)
        self.remove_all_locks(recursive=True)
        return failed

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool | list[Any]:
        """The folder's COPY in one VFS call, without wsgidav's resource per member
        (however many members: the VFS streams the tree); dead properties follow.

        To a new name the copy is 201 (RFC 4918 section 9.8.5). Onto an existing folder
        (wsgidav has answered Overwrite: F with 412, and a lock there the request holds no
        token of with 423, before it asks) the folder becomes the copy, as if it had been
        removed first (section 9.8.4): the members the source also has are replaced
        (through the share's policies: the trash keeps their versions, the site guard may
        refuse), the others removed, and the folder tree's dead properties become the
        source's; that is 204. Members that could not be copied or removed are the
        answer's (a 207 Multi-Status, section 9.8.8), the rest being done; those kept at
        the destination keep their properties. A property store that cannot copy a tree
        (``copy_tree``; onto a folder ``replace_tree``), and a destination that is a
        file, send the COPY to wsgidav's member-by-member copy.

        wsgidav answers a handled COPY 204; a new folder's 201 is told to it as the one
        error naming the request's resource, which it then sends."""
        self._refuse_onto_holder(dest_path, "COPY")
        manager = self.provider.prop_manager
        with dav_errors("COPY"):
            dest = self.vfs.lookup(dest_path)
            onto = dest is not None
            if dest is not None and not dest.is_dir:
                return False  # wsgidav removes the file, then copies
            if manager is not None and not hasattr(
                manager, "replace_tree" if onto else "copy_tree"
            ):
                return False
            try:
                self.vfs.copy(
                    self.path, dest_path, replace=onto, recursive=depth_infinity, onto_folder=onto
                )
            except PartlyCopied as exc:
                partly: PartlyCopied | None = exc
                failed = self._failures(exc)
            else:
                partly = None
                failed = [] if onto else [(self.get_href(), DAVError(HTTP_CREATED))]
        if manager is not None:
            dest_url = self._dest_ref_url(dest_path, is_collection=True)
            if onto:
                self._replace_properties(dest_path, dest_url, partly)
            elif depth_infinity:
                manager.copy_tree(self.get_ref_url(), dest_url)
            else:
                manager.copy_properties(self.get_ref_url(), dest_url, self.environ)
        return failed

    def _replace_properties(
        self, dest_path: str, dest_url: str, partly: PartlyCopied | None
    ) -> None:
        """After a copy onto folder ``dest_path``: its tree's dead properties become the
        source's, but for the members ``partly`` names that stayed at the destination
        (they keep theirs)."""
        manager = self.provider.prop_manager
        source, target = self.vfs.normalize(self.path), self.vfs.normalize(dest_path)
        kept = []
        for name, _ in partly.failures if partly is not None else ():
            at = name if is_within(name, target) else target + name[len(source) :]
            kept.append(quote(f"{self.provider.share_path}/{at}"))
        manager.replace_tree(self.get_ref_url(), dest_url, kept)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        # Members are copied one by one by wsgidav; only the folder itself is made here.
        with dav_errors("MOVE" if is_move else "COPY"):
            if not self.vfs.exists(dest_path):
                self.vfs.mkdir(dest_path)
        self._carry_properties(dest_path, is_move=is_move, with_children=False)


_Resource = FileResource | FolderResource


def expected_length(environ: Environ) -> int | None:
    """The body size a PUT announces: Content-Length, or for a chunked body Finder's
    ``X-Expected-Entity-Length``; ``None`` when unknown."""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    key = "HTTP_X_EXPECTED_ENTITY_LENGTH" if chunked else "CONTENT_LENGTH"
    declared = (environ.get(key) or "").strip()
    return int(declared) if declared.isdigit() else None


class _PutStream:
    """The body of one PUT on its way into a VFS write handle.

    Counts what arrives: more than ``limit`` is 413 at once; fewer bytes than the
    Content-Length announced (the client went away) aborts instead of committing.
    """

    def __init__(self, handle: WriteHandle, environ: Environ, *, limit: int | None) -> None:
        self._handle = handle
        self._limit = limit
        self.received = 0
        self._expected = expected_length(environ)

    def write(self, data: bytes) -> int:
        self.received += len(data)
        if self._limit is not None and self.received > self._limit:
            raise DAVError(413, f"uploads are limited to {self._limit} bytes")
        with dav_errors("PUT"):
            return self._handle.write(data)

    def close(self) -> None:
        """wsgidav closes the stream before ``end_write``, which decides commit or abort."""

    def finish(self, *, failed: bool) -> None:
        """Commit the body, or drop it when the request failed or broke off."""
        short = self._expected is not None and self.received < self._expected
        if failed or short:
            self._handle.abort()
            if short and not failed:
                logger.warning(
                    "PUT %r broke off after %d of %s bytes: not stored",
                    self._handle.path,
                    self.received,
                    self._expected,
                )
                raise DAVError(400, "the request body ended before its Content-Length")
            return
        with dav_errors("PUT"):
            self._handle.close()
