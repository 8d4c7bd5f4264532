"""WebDAV collection synchronisation (RFC 6578): ``REPORT`` ``DAV:sync-collection``.

wsgidav knows no ``REPORT``; :class:`SyncCollectionReport` answers it before wsgidav's
request resolver, after authentication and the XML guard. The changes come from the VFS
(:mod:`davstore.vfs.sync`, fed by the share's change journal: every process's changes and
the site's own writes); this module translates and renders.

- An empty ``DAV:sync-token``: every member now (``DAV:sync-level`` ``1``: the direct
  ones, ``infinite``: all below), and a token. A token: the members changed since it, as
  they are now, and ``404`` ``<D:status>`` responses for the removed ones (a removed
  folder once, what it held with it). The collection itself is never a member.
- A token this share's journal cannot continue from (malformed, of another journal,
  older than the journal's retention, or the collection itself replaced since):
  ``403`` with ``<D:valid-sync-token/>``; the client starts again with an empty token.
- ``DAV:limit``/``DAV:nresults`` (and the server's own :data:`MAX_RESULTS`): changes past
  it are left for the next request: a ``507`` response for the collection with
  ``<D:number-of-matches-within-limits/>`` and a token from which to go on. A full listing
  cannot be continued that way: one over the limit is refused with ``507`` and
  ``<D:number-of-matches-within-limits/>``. A share that allows ``Depth: infinity``
  (``depth_infinity``) lists whole trees without the server's bound.
- ``Depth`` must be ``0`` or absent (RFC 6578 3.2; ``1`` is taken too, as python-caldav
  sends it, and means nothing more: ``DAV:sync-level`` decides), else 400. Another report,
  or ``REPORT`` on a file or on a share without a journal, is ``403`` with
  ``<D:supported-report/>`` (RFC 3253 3.6).

Tokens are URIs: :data:`TOKEN_PREFIX` followed by the journal's identity and a cursor.
Collections also carry the ``DAV:sync-token`` and ``DAV:supported-report-set`` properties
(:func:`sync_properties`), named in ``PROPFIND`` only (never in ``allprop``, RFC 6578 4).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from lxml import etree
from wsgidav import util, xml_tools
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    DAVError,
    DAVErrorCondition,
)
from wsgidav.mw.base_mw import BaseMiddleware

from davstore.errors import ChangesLost, DavstoreError, NotSupported
from davstore.frontends.webdav.error_status import dav_errors
from davstore.http.wsgi import Environ, StartResponse
from davstore.vfs import VFS
from davstore.vfs import sync as vfs_sync

__all__ = [
    "MAX_RESULTS",
    "SYNC_PROPERTIES",
    "TOKEN_PREFIX",
    "SyncCollectionReport",
    "format_token",
    "parse_token",
    "sync_properties",
]

logger = logging.getLogger(__name__)

#: A sync token is this, the journal's identity, ``:`` and a cursor in it.
TOKEN_PREFIX = "urn:x-davstore:sync:"  # noqa: S105 -- a URI scheme, no secret
#: The most members one answer reports (a client's ``DAV:limit`` may ask for fewer).
MAX_RESULTS = 10_000
#: The live properties a collection has for sync clients, named in PROPFIND only.
SYNC_PROPERTIES = ("{DAV:}sync-token", "{DAV:}supported-report-set")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_HREF_SAFE = "/!*'(),$-_|."
_NOT_FOUND = "HTTP/1.1 404 Not Found"
_INSUFFICIENT = "HTTP/1.1 507 Insufficient Storage"


def format_token(position: vfs_sync.Position) -> str:
    return f"{TOKEN_PREFIX}{position.journal}:{position.cursor}"


def parse_token(token: str) -> vfs_sync.Position:
    """The position a token names; 403 ``valid-sync-token`` for one that names none."""
    journal, colon, cursor = token.removeprefix(TOKEN_PREFIX).partition(":")
    if not token.startswith(TOKEN_PREFIX) or not colon or not journal or not cursor:
        raise _invalid_token(f"not a sync token of this server: {token[:200]!r}")
    return vfs_sync.Position(journal, cursor)


def _with_report(allow: str) -> str:
    """An ``Allow`` value with ``REPORT`` at its end (once)."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    return allow if "REPORT" in methods else ", ".join([*methods, "REPORT"])


def _is_collection(vfs: VFS, path: str) -> bool:
    """Whether ``path`` is a folder of the share now (the VFS's cached answer)."""
    try:
        found = vfs.lookup(path)
    except DavstoreError:
        return False
    return found is not None and found.is_dir


def _invalid_token(reason: str) -> DAVError:
    return DAVError(
        HTTP_FORBIDDEN, reason, err_condition=DAVErrorCondition("{DAV:}valid-sync-token")
    )


def _unsupported(reason: str) -> DAVError:
    return DAVError(
        HTTP_FORBIDDEN, reason, err_condition=DAVErrorCondition("{DAV:}supported-report")
    )


def sync_properties(vfs: VFS, name: str) -> Any:
    """The value of one of :data:`SYNC_PROPERTIES` of a collection (``name``); a 404
    DAVError when the share has no change journal."""
    with dav_errors("PROPFIND"):
        try:
            position = vfs_sync.position(vfs)
        except NotSupported as exc:
            raise DAVError(404, "this share has no change journal") from exc
    if name == "{DAV:}sync-token":
        return format_token(position)
    supported = etree.Element("{DAV:}supported-report-set")
    report = etree.SubElement(etree.SubElement(supported, "{DAV:}supported-report"), "{DAV:}report")
    etree.SubElement(report, "{DAV:}sync-collection")
    return supported


class _Request:
    """A parsed ``DAV:sync-collection`` request body."""

    def __init__(self, body: bytes) -> None:
        try:
            root = etree.fromstring(body, parser=_PARSER)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise DAVError(HTTP_BAD_REQUEST, f"malformed REPORT body: {exc}") from exc
        if root.tag != "{DAV:}sync-collection":
            raise _unsupported(f"this share answers only sync-collection, not {root.tag}")
        token = root.find("{DAV:}sync-token")
        self.token = (token.text or "").strip() if token is not None else ""
        level = root.find("{DAV:}sync-level")
        text = (level.text or "").strip().lower() if level is not None else "1"
        if text not in ("1", "infinite", "infinity"):
            raise DAVError(HTTP_BAD_REQUEST, f"DAV:sync-level must be 1 or infinite: {text!r}")
        self.infinite = text != "1"
        self.limit: int | None = None
        nresults = root.find("{DAV:}limit/{DAV:}nresults")
        if root.find("{DAV:}limit") is not None:
            raw = (nresults.text or "").strip() if nresults is not None else ""
            if not raw.isdigit() or int(raw) < 1:
                raise DAVError(HTTP_BAD_REQUEST, f"DAV:nresults must be a number >= 1: {raw!r}")
            self.limit = int(raw)
        prop = root.find("{DAV:}prop")
        children = prop if prop is not None else ()
        self.names = [child.tag for child in children if isinstance(child.tag, str)]


class SyncCollectionReport(BaseMiddleware):  # type: ignore[misc]
    """Answer ``REPORT`` (see the module docstring); pass every other method on."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "OPTIONS":
            return self._options(environ, start_response)
        if method != "REPORT":
            return self.next_app(environ, start_response)  # type: ignore[no-any-return]
        provider = environ["wsgidav.provider"]
        depth = environ.get("HTTP_DEPTH", "0").strip()
        if depth not in ("0", "1"):  # 1: what python-caldav sends (sync-level decides)
            raise DAVError(HTTP_BAD_REQUEST, f"sync-collection takes Depth: 0, not {depth!r}")
        stream = environ.get("wsgi.input")
        body = stream.getvalue() if isinstance(stream, io.BytesIO) else b""
        if not body:
            raise DAVError(HTTP_BAD_REQUEST, "a REPORT needs a body")
        request = _Request(body)
        path = environ["PATH_INFO"]
        vfs: VFS = provider.vfs
        with dav_errors("REPORT"):
            if not vfs.stat(path).is_dir:
                raise _unsupported("sync-collection is a report on collections")
            delta = self._delta(vfs, provider, path, request)
        return self._answer(environ, start_response, provider, path, request=request, delta=delta)

    def _options(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """wsgidav's ``OPTIONS`` answer, whose ``Allow`` names ``REPORT`` too where it is
        answered: on a collection of a share with a change journal (RFC 6578 3: the
        report is defined on collections only; a file's, or a share's without a journal,
        is refused with ``403``, so their ``Allow`` does not name it)."""
        vfs: VFS = environ["wsgidav.provider"].vfs
        if vfs.change_feed is None:
            return self.next_app(environ, start_response)  # type: ignore[no-any-return]

        def answer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200"):
                headers = [
                    (name, _with_report(value))
                    if name.lower() == "allow" and _is_collection(vfs, environ["PATH_INFO"])
                    else (name, value)
                    for name, value in headers
                ]
            return start_response(status, headers, exc_info)

        return self.next_app(environ, answer)  # type: ignore[no-any-return]

    @staticmethod
    def _delta(vfs: VFS, provider: Any, path: str, request: _Request) -> vfs_sync.Delta:
        limit = min(request.limit or MAX_RESULTS, MAX_RESULTS)
        try:
            if not request.token:
                full = request.infinite and provider.limits.depth_infinity
                return vfs_sync.listing(
                    vfs, path, infinite=request.infinite, limit=request.limit if full else limit
                )
            return vfs_sync.changes_since(
                vfs, parse_token(request.token), path, infinite=request.infinite, limit=limit
            )
        except NotSupported as exc:
            raise _unsupported(f"this share has no change journal: {exc.reason}") from exc
        except ChangesLost as exc:
            logger.info("sync-collection of %r: the token is no longer valid: %s", path, exc.reason)
            raise _invalid_token(exc.reason) from exc

    @staticmethod
    def _answer(
        environ: Environ,
        start_response: StartResponse,
        provider: Any,
        path: str,
        *,
        request: _Request,
        delta: vfs_sync.Delta,
    ) -> Iterable[bytes]:
        if delta.truncated and not delta.changed and not delta.removed:
            raise DAVError(
                HTTP_INSUFFICIENT_STORAGE,
                "more members than the limit: ask with a larger limit or a sync-level of 1",
                err_condition=DAVErrorCondition("{DAV:}number-of-matches-within-limits"),
            )
        prefix = provider.mount_path + provider.share_path
        multistatus = xml_tools.make_multistatus_el()
        for entry in delta.changed:
            resource = provider.resource_for("/" + entry.name, entry, environ)
            properties = resource.get_properties("named", name_list=request.names)
            util.add_property_response(multistatus, resource.get_href(), properties)
        for name, is_dir in delta.removed:
            response = etree.SubElement(multistatus, "{DAV:}response")
            href = quote(prefix + "/" + name + ("/" if is_dir else ""), safe=_HREF_SAFE)
            etree.SubElement(response, "{DAV:}href").text = href
            etree.SubElement(response, "{DAV:}status").text = _NOT_FOUND
        if delta.truncated:
            response = etree.SubElement(multistatus, "{DAV:}response")
            folder = "/" + path.strip("/") + "/" if path.strip("/") else "/"
            etree.SubElement(response, "{DAV:}href").text = quote(prefix + folder, safe=_HREF_SAFE)
            etree.SubElement(response, "{DAV:}status").text = _INSUFFICIENT
            error = etree.SubElement(response, "{DAV:}error")
            etree.SubElement(error, "{DAV:}number-of-matches-within-limits")
        etree.SubElement(multistatus, "{DAV:}sync-token").text = format_token(delta.position)
        return util.send_multi_status_response(environ, start_response, multistatus)  # type: ignore[no-any-return]
