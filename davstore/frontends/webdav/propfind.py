"""PROPFIND Depth 0 and 1 answered straight from a VFS listing.

wsgidav builds a PROPFIND answer property by property: per member about ten getter calls,
a lock lookup, MIME and date formatting, and an lxml element tree serialised at the end.
:func:`answer_propfind` renders the same ``207 Multi-Status`` document
with one string per member, from the entries the VFS listing already holds.

It answers only requests it understands completely and otherwise returns ``None`` so that
wsgidav answers (the fallback is always correct, only slower):

- Depth ``0`` or ``1`` (no Depth header means infinity);
- no conditional headers (``If``, ``If-Match``, ``If-None-Match``, ``If-(Un)Modified-Since``);
- an empty body, ``<allprop/>``, or ``<prop>`` naming only the live properties wsgidav
  knows (:data:`LIVE_PROPERTIES`);
- the resource exists and can be listed;
- no member has dead properties and no lock is rooted at or below the resource (both
  known from in-memory sets: :meth:`SqlitePropertyManager.has_properties`,
  :func:`~davstore.frontends.webdav.state.locks_within`);
- every name is representable in XML 1.0.

The document equals wsgidav's byte for byte (tests/webdav/test_propfind.py compares them):
the same hrefs (``quote`` with wsgidav's safe characters), members in listing order, the
same property order, values and ``404`` propstats, ``&``, ``<`` and ``>`` escaped in text.

Each member's ``<D:response>`` is rendered once per version of its entry and kind of
request and kept, as UTF-8, in the share's :class:`Fragments` (bounded in bytes): a folder
listed again costs a lookup per member, a dead-property check where the share has any,
and one join. Hrefs and names made of characters that need no escaping are not quoted. A
folder of more than :data:`EAGER_MEMBERS` members is answered as it is rendered (memory
holds the listing, never the answer), with wsgidav's code for a member that has dead
properties; a smaller one is answered whole, with its length.
It runs inside wsgidav's request handling (``VfsProvider.custom_request_handler``), so
authentication, the read-only guard and the XML guard have run before it.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import quote

from lxml import etree
from wsgidav import util, xml_tools
from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError, get_http_status_string

from davstore.errors import DavstoreError
from davstore.frontends.webdav.state import SqlitePropertyManager, locks_within
from davstore.http.wsgi import Environ, StartResponse
from davstore.store.base import Usage
from davstore.vfs import Entry

if TYPE_CHECKING:
    from davstore.frontends.webdav.provider import FolderResource, VfsProvider, _Resource

__all__ = ["LIVE_PROPERTIES", "Fragments", "answer_propfind", "stream_propfind"]


#: The live properties this module renders (wsgidav's set, in Clark notation).
LIVE_PROPERTIES = frozenset(
    "{DAV:}" + name
    for name in (
        "resourcetype",
        "creationdate",
        "getcontentlength",
        "getcontenttype",
        "getcontentlanguage",
        "getlastmodified",
        "getetag",
        "displayname",
        "lockdiscovery",
        "supportedlock",
        "quota-used-bytes",
        "quota-available-bytes",
    )
)

_CONDITIONAL_HEADERS = (
    "HTTP_IF",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
#: wsgidav's ``get_href`` leaves these unquoted (Nautilus chokes on ``%28``).
_HREF_SAFE = "/!*'(),$-_|."
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff\r]")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

_OK = "HTTP/1.1 200 OK"
_NOT_FOUND = "HTTP/1.1 404 Not Found"
_COLLECTION = "<D:resourcetype><D:collection/></D:resourcetype>"
_SUPPORTED_LOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>"
)
_HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n<D:multistatus xmlns:D=\"DAV:\">"
_TAIL = "</D:multistatus>"
_HEAD_BYTES = _HEAD.encode()
_TAIL_BYTES = _TAIL.encode()


def _escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _requested(environ: Environ) -> list[str] | None:
    """The property names asked for; ``[]`` for allprop; ``None``: not for this module.

    Leaves the body readable again for wsgidav.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0:
        return [] if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower() else None
    stream = environ["wsgi.input"]
    if not isinstance(stream, io.BytesIO):  # XmlGuard reads XML bodies into memory
        return None
    body = stream.read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != "{DAV:}propfind" or len(root) != 1:
        return None
    (child,) = root
    if child.tag == "{DAV:}allprop" and len(child) == 0:
        return []
    if child.tag != "{DAV:}prop" or len(child) == 0:
        return None
    names = [node.tag for node in child]
    if not all(isinstance(name, str) and name in LIVE_PROPERTIES for name in names):
        return None
    return names


class Fragments:
    """The ``<D:response>`` elements rendered for the entries of a share, reused by later
    PROPFINDs while the entry is the same (the VFS keeps one Entry object per version of a
    name while it caches it; a changed file is a new, unequal Entry and is rendered anew).

    One table per kind of request (allprop, or the tuple of properties named) and href
    prefix; each element is kept as UTF-8 with its ref-URL (for the dead-property check)
    and, for a folder, the quota figures it shows. At most :data:`FRAGMENT_BUDGET` bytes
    are kept (all are dropped when more would be), so a share's listings cost a bounded
    amount of memory however many and big its folders are.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = FRAGMENT_BUDGET if budget is None else budget
        self._tables: dict[tuple[str, tuple[str, ...]], dict[str, _Fragment]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def table(self, prefix: str, names: tuple[str, ...]) -> dict[str, _Fragment]:
        """The table of one kind of request (read and written without a lock: a dict's
        ``get`` and item assignment are atomic)."""
        key = (prefix, names)
        found = self._tables.get(key)
        if found is None:
            with self._lock:
                found = self._tables.setdefault(key, {})
        return found

    def keep(self, table: dict[str, _Fragment], path: str, fragment: _Fragment) -> None:
        size = len(fragment[3]) + _FRAGMENT_OVERHEAD
        if size > self.budget:
            return
        with self._lock:
            old = table.get(path)
            if old is not None:
                self._size -= len(old[3]) + _FRAGMENT_OVERHEAD
            if self._size + size > self.budget:
                for each in self._tables.values():
                    each.clear()
                self._size = 0
            table[path] = fragment
            self._size += size

    @property
    def size(self) -> int:
        """Bytes kept (the elements' UTF-8 and an estimate of the tables' own)."""
        return self._size


#: Bytes of rendered ``<D:response>`` elements a share keeps (:class:`Fragments`): a
#: folder of 5,000 files takes about 3.5 MB in allprop, 2 MB with five properties named.
FRAGMENT_BUDGET = 8 << 20
_FRAGMENT_OVERHEAD = 120  # a table entry, its tuple and key, roughly

#: ``(entry, quota, ref-URL, element)``: what :class:`Fragments` keeps per path.
_Fragment = tuple[Entry, str, str, bytes]

#: Names and hrefs made only of these are their own percent-encoding (``quote`` leaves
#: them as they are, with wsgidav's safe characters for hrefs or only ``/`` for ref-URLs)
#: and their own XML text (no ``&``, ``<``, ``>``, nothing XML cannot carry).
_PLAIN_HREF = re.compile(r"[A-Za-z0-9_.~/!*'(),$|-]*")
_PLAIN_REF = re.compile(r"[A-Za-z0-9_.~/-]*")


class _Renderer:
    """Renders the ``<D:response>`` of one entry; caches per request what repeats, and
    across requests (:class:`Fragments`) the elements themselves."""

    def __init__(
        self, provider: VfsProvider, environ: Environ, names: list[str], *, keep: bool = True
    ) -> None:
        self.provider = provider
        #: Keep what is rendered in :class:`Fragments` (a Depth infinity sweep only reads
        #: them: it would push the folders people list out, and grow with the tree).
        self.keep = keep
        self.environ = environ
        self.names = names
        self.config = environ["wsgidav.config"]
        self.href_prefix = provider.mount_path + provider.share_path
        self.ref_prefix = provider.share_path
        manager = provider.prop_manager
        self.properties = manager if manager is not None and manager.has_any() else None
        locking = provider.lock_manager is not None
        self.lock_props = "<D:lockdiscovery/>" + _SUPPORTED_LOCK if locking else ""
        self.locking = locking
        self._types: dict[str, str] = {}
        self._dates: dict[int, str] = {}
        self._usage: Usage | None = None
        self._folder_quota: str | None = None
        self._folder_key: str | None = None
        self._quota_named = any(name.startswith("{DAV:}quota-") for name in names)
        self.fragments: Fragments = provider.propfind_fragments
        self._table = self.fragments.table(self.href_prefix + "\0" + str(locking), tuple(names))
        #: Elements taken from :class:`Fragments` and rendered, in this request.
        self.reused = 0
        self.rendered = 0

    def preferred(self, path: str, is_dir: bool) -> str:
        """wsgidav's ``get_preferred_path``: folders end in ``/``."""
        if path in ("", "/"):
            return "/"
        if is_dir and not path.endswith("/"):
            return path + "/"
        return path

    def ref_url(self, path: str, is_dir: bool) -> str:
        return quote(self.ref_prefix + self.preferred(path, is_dir))

    def content_type(self, basename: str) -> str:
        # mimetypes only looks at the suffixes of the last segment: key on them.
        stem = basename.lstrip(".")
        dot = stem.find(".")
        key = "x" + stem[dot:] if dot >= 0 else "x"
        found = self._types.get(key)
        if found is None:
            found = self._types[key] = _escape(str(util.guess_mime_type("/" + key, self.config)))
        return found

    def date(self, mtime: float) -> str:
        # formatdate rounds to microseconds and prints whole seconds: below .999999 the
        # whole second decides, so one string serves every file of that second.
        second = int(mtime)
        if mtime < 0 or mtime - second >= 0.999999:
            return formatdate(mtime, usegmt=True)
        found = self._dates.get(second)
        if found is None:
            found = self._dates[second] = formatdate(mtime, usegmt=True)
        return found

    def usage(self) -> Usage:
        if self._usage is None:
            self._usage = self.provider.usage(self.environ)
        return self._usage

    def folder_quota(self) -> str:
        """The quota properties of a folder in allprop (those the store knows)."""
        if self._folder_quota is None:
            usage = self.usage()
            used = "" if usage.used is None else _quota("used", usage.used)
            available = "" if usage.available is None else _quota("available", usage.available)
            self._folder_quota = used + available
        return self._folder_quota

    def allprop(self, path: str, entry: Entry) -> str:
        basename = path.strip("/").rsplit("/", 1)[-1]
        name = _escape(basename)
        modified = (
            ""
            if entry.mtime is None
            else f"<D:getlastmodified>{self.date(entry.mtime)}</D:getlastmodified>"
        )
        if entry.is_dir:
            props = (
                f"{_COLLECTION}{self.folder_quota()}{modified}"
                f"<D:displayname>{name}</D:displayname>{self.lock_props}"
            )
        else:
            size = (
                ""
                if entry.size is None
                else f"<D:getcontentlength>{entry.size}</D:getcontentlength>"
            )
            etag = "" if entry.etag is None else f"<D:getetag>{_escape(entry.etag)}</D:getetag>"
            props = (
                f"<D:resourcetype></D:resourcetype>{size}"
                f"<D:getcontenttype>{self.content_type(basename)}</D:getcontenttype>"
                f"{modified}<D:displayname>{name}</D:displayname>{etag}{self.lock_props}"
            )
        return f"<D:propstat><D:prop>{props}</D:prop><D:status>{_OK}</D:status></D:propstat>"

    def value(self, prop: str, path: str, entry: Entry) -> str | None:
        """One property as an element, or ``None`` where wsgidav answers 404."""
        is_dir = entry.is_dir
        if prop == "{DAV:}resourcetype":
            return _COLLECTION if is_dir else "<D:resourcetype></D:resourcetype>"
        if prop == "{DAV:}getcontentlength":
            if is_dir or entry.size is None:
                return None
            return f"<D:getcontentlength>{entry.size}</D:getcontentlength>"
        if prop == "{DAV:}getcontenttype":
            if is_dir:
                return None
            content_type = self.content_type(path.rsplit("/", 1)[-1])
            return f"<D:getcontenttype>{content_type}</D:getcontenttype>"
        if prop == "{DAV:}getlastmodified":
            if entry.mtime is None:
                return None
            return f"<D:getlastmodified>{self.date(entry.mtime)}</D:getlastmodified>"
        if prop == "{DAV:}getetag":
            if is_dir or entry.etag is None:
                return None
            return f"<D:getetag>{_escape(entry.etag)}</D:getetag>"
        if prop == "{DAV:}displayname":
            return f"<D:displayname>{_escape(path.strip('/').rsplit('/', 1)[-1])}</D:displayname>"
        if prop in ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes"):
            kind = prop[12:-6]  # "used" or "available"
            # wsgidav answers these for a file too, with no value.
            figure = getattr(self.usage(), kind) if is_dir else None
            return f"<D:quota-{kind}-bytes/>" if figure is None else _quota(kind, figure)
        if prop == "{DAV:}lockdiscovery":
            return "<D:lockdiscovery/>" if self.locking else None
        if prop == "{DAV:}supportedlock":
            return _SUPPORTED_LOCK if self.locking else None
        return None  # creationdate, getcontentlanguage: wsgidav has no value for them

    def named(self, path: str, entry: Entry) -> str:
        found: list[str] = []
        missing: list[str] = []
        first = None
        for prop in self.names:
            value = self.value(prop, path, entry)
            if value is None:
                missing.append(f"<D:{prop[6:]}/>")
                first = first or _NOT_FOUND
            else:
                found.append(value)
                first = first or _OK
        groups = [(_OK, found), (_NOT_FOUND, missing)]
        if first == _NOT_FOUND:
            groups.reverse()  # wsgidav orders propstats by first appearance
        return "".join(
            f"<D:propstat><D:prop>{''.join(props)}</D:prop><D:status>{status}</D:status>"
            "</D:propstat>"
            for status, props in groups
            if props
        )

    def folder_key(self) -> str:
        """What a folder's element shows that its entry does not say: the quota figures
        (allprop, or quota properties named); "" when it shows none."""
        if self._folder_key is None:
            if not self.names:
                self._folder_key = self.folder_quota()
            elif self._quota_named:
                usage = self.usage()
                self._folder_key = f"{usage.used}/{usage.available}"
            else:
                self._folder_key = ""
        return self._folder_key

    def response(self, path: str, entry: Entry) -> bytes | None:
        """The ``<D:response>`` for one resource at share path ``path`` (as UTF-8);
        ``None`` when it has dead properties or a name or ETag XML cannot carry."""
        is_dir = entry.is_dir
        quota = ""
        preferred = path
        if is_dir:
            quota = self.folder_key()
            preferred = self.preferred(path, is_dir)
        kept = self._table.get(preferred)
        if kept is not None and (kept[0] is entry or kept[0] == entry) and kept[1] == quota:
            if self.properties is not None and self.properties.has_properties(kept[2]):
                return None
            self.reused += 1
            return kept[3]
        ref = self.ref_prefix + preferred
        ref_url = ref if _PLAIN_REF.fullmatch(ref) else quote(ref)
        if self.properties is not None and self.properties.has_properties(ref_url):
            return None
        if _NOT_XML.search(path) or (entry.etag is not None and _NOT_XML.search(entry.etag)):
            return None
        href = self.href_prefix + preferred
        if not _PLAIN_HREF.fullmatch(href):
            href = quote(href, safe=_HREF_SAFE)
        body = self.named(path, entry) if self.names else self.allprop(path, entry)
        element = f"<D:response><D:href>{href}</D:href>{body}</D:response>".encode()
        if self.keep:
            self.fragments.keep(self._table, preferred, (entry, quota, ref_url, element))
        self.rendered += 1
        return element


def _quota(kind: str, figure: int) -> str:
    return f"<D:quota-{kind}-bytes>{figure}</D:quota-{kind}-bytes>"


def answer_propfind(
    provider: VfsProvider, environ: Environ, start_response: StartResponse
) -> Iterable[bytes] | None:
    """The whole answer to a PROPFIND this module understands, else ``None``."""
    depth = environ.get("HTTP_DEPTH")
    if depth not in ("0", "1") or any(key in environ for key in _CONDITIONAL_HEADERS):
        return None
    manager = provider.prop_manager
    if manager is not None and not isinstance(manager, SqlitePropertyManager):
        return None
    names = _requested(environ)
    if names is None:
        return None
    path = environ["PATH_INFO"]
    vfs = provider.vfs
    try:
        entry = vfs.stat(path)
        members = vfs.listdir(path) if entry.is_dir and depth == "1" else []
    except DavstoreError:
        return None  # wsgidav answers with the right error
    renderer = _Renderer(provider, environ, names)
    if not _unlocked(provider, renderer.ref_url(path, entry.is_dir)):
        return None
    top = renderer.response(path, entry)
    if top is None:
        return None
    if len(members) > EAGER_MEMBERS:  # streamed as rendered: memory stays bounded
        start_response(
            "207 Multi-Status",
            [
                ("Content-Type", "application/xml; charset=utf-8"),
                ("Date", util.get_rfc1123_time()),
            ],
        )
        mode = "named" if names else "allprop"
        answer = _members(provider, environ, renderer, path=path, members=members, mode=mode)
        return _byte_chunks(answer, top)
    parts = [_HEAD_BYTES, top]
    base = path if path.endswith("/") else path + "/"
    response = renderer.response
    try:
        for member in members:
            part = response(base + member.name.rpartition("/")[2], member)
            if part is None:
                return None
            parts.append(part)
    except DavstoreError:
        return None
    parts.append(_TAIL_BYTES)
    length = sum(map(len, parts))
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
            ("Content-Length", str(length)),
        ],
    )
    return [b"".join(parts)]


#: A folder of more members than this is answered as it is rendered (chunked, without a
#: Content-Length), each member with dead properties by wsgidav's code alone; smaller
#: ones whole, with a Content-Length (or, when a member has dead properties, by wsgidav).
EAGER_MEMBERS = 10_000


def _members(
    provider: VfsProvider,
    environ: Environ,
    renderer: _Renderer,
    *,
    path: str,
    members: list[Entry],
    mode: str,
) -> Iterator[bytes]:
    base = path if path.endswith("/") else path + "/"
    names = renderer.names
    for member in members:
        member_path = base + member.name.rpartition("/")[2]
        try:
            part = renderer.response(member_path, member)
        except DavstoreError:
            part = None
        if part is None:
            resource = provider.resource_for(member_path, member, environ)
            part = _one_response(resource, mode, names, None)
        yield part


def _byte_chunks(parts: Iterator[bytes], first: bytes = b"") -> Iterator[bytes]:
    """The multistatus document of ``first`` and ``parts``, in pieces of about
    :data:`STREAM_CHUNK` bytes."""
    pending: list[bytes] = [_HEAD_BYTES, first]
    size = len(_HEAD_BYTES) + len(first)
    for part in parts:
        pending.append(part)
        size += len(part)
        if size >= STREAM_CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(_TAIL_BYTES)
    yield b"".join(pending)


def _unlocked(provider: VfsProvider, ref_url: str) -> bool:
    """No lock is rooted at ``ref_url`` or below it (``False`` when that is not known)."""
    manager = provider.lock_manager
    if manager is None:
        return True
    return locks_within(manager.storage, ref_url) is False


class _StreamingThread(threading.local):
    on = False


_streaming = _StreamingThread()


def _not_about_streaming(record: logging.LogRecord) -> bool:
    """Drop wsgidav's complaint about the missing Content-Length of a 207 (only a
    streamed multistatus has none) and the "closing" warning it logs right after."""
    message = str(record.msg)
    if message.startswith("Missing required Content-Length header in 207-"):
        _streaming.on = True
        return False
    if _streaming.on:
        _streaming.on = False
        return not message.startswith("Adding 'Connection: close'")
    return True


logging.getLogger("wsgidav.wsgidav_app").addFilter(_not_about_streaming)

#: Bytes of a streamed multistatus gathered before they are handed to the server.
STREAM_CHUNK = 64 * 1024


def _propfind_mode(environ: Environ) -> tuple[str, list[str]]:
    """``(mode, names)`` of a PROPFIND body, as wsgidav's ``do_PROPFIND`` reads it."""
    request = util.parse_xml_body(environ, allow_empty=True)
    if request is None:
        return "allprop", []
    if request.tag != "{DAV:}propfind":
        raise DAVError(HTTP_BAD_REQUEST)
    mode: str | None = None
    names: list[str] = []
    for node in request:
        if node.tag in ("{DAV:}allprop", "{DAV:}name"):
            if mode:
                raise DAVError(HTTP_BAD_REQUEST)  # allprop and name exclude each other
            mode = "allprop" if node.tag == "{DAV:}allprop" else "name"
        elif node.tag == "{DAV:}prop":
            if mode not in (None, "named"):
                raise DAVError(HTTP_BAD_REQUEST)
            mode = "named"
            names.extend(child.tag for child in node)
    return mode or "allprop", names


def stream_propfind(
    provider: VfsProvider,
    resource: FolderResource,
    environ: Environ,
    start_response: StartResponse,
) -> Iterator[bytes]:
    """The ``207`` answer to a ``Depth: infinity`` PROPFIND of a folder, produced as it is
    sent: one ``<D:response>`` per resource in wsgidav's order (a folder, then each
    member, a subfolder's members right after it), gathered into chunks of about
    :data:`STREAM_CHUNK` bytes. Memory holds the listings of the folders on the way down,
    never the whole answer.

    Members the string renderer of Depth 1 understands (no dead properties, no lock in
    the tree, live properties only) are rendered by it; the others by wsgidav's property
    code, one element at a time. A folder that cannot be listed once the answer has
    started gets its own ``<D:status>`` (RFC 4918 section 9.1: a multistatus may carry a
    status per resource) and its members are left out.
    """
    mode, names = _propfind_mode(environ)
    renderer: _Renderer | None = None
    if mode != "name" and all(name in LIVE_PROPERTIES for name in names):
        manager = provider.prop_manager
        if (manager is None or isinstance(manager, SqlitePropertyManager)) and _unlocked(
            provider, resource.get_ref_url()
        ):
            renderer = _Renderer(provider, environ, names if mode == "named" else [], keep=False)
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
        ],
    )
    return _byte_chunks(_responses(provider, resource, mode, names, renderer))


def _responses(
    provider: VfsProvider,
    top: FolderResource,
    mode: str,
    names: list[str],
    renderer: _Renderer | None,
) -> Iterator[bytes]:
    yield _one_response(top, mode, names, renderer)
    stack: list[Iterator[_Resource]] = []
    folder: _Resource | None = top
    while True:
        if folder is not None:
            try:
                stack.append(iter(folder.get_member_list()))
            except (DAVError, DavstoreError) as exc:
                yield _status_response(folder, exc).encode()
            folder = None
        if not stack:
            return
        member = next(stack[-1], None)
        if member is None:
            stack.pop()
            continue
        yield _one_response(member, mode, names, renderer)
        if member.is_collection:
            folder = member


def _one_response(
    resource: _Resource, mode: str, names: list[str], renderer: _Renderer | None
) -> bytes:
    entry = resource.entry
    if renderer is not None and entry is not None:
        fast = renderer.response(resource.path, entry)
        if fast is not None:
            return fast
    try:
        props = resource.get_properties(mode, name_list=names if mode == "named" else None)
        holder = xml_tools.make_multistatus_el()
        util.add_property_response(holder, resource.get_href(), props)
        return bytes(etree.tostring(holder[0], encoding="utf-8"))
    except (DAVError, DavstoreError, ValueError) as exc:  # ValueError: not XML
        return _status_response(resource, exc).encode()


def _status_response(resource: _Resource, exc: Exception) -> str:
    status = get_http_status_string(exc) if isinstance(exc, DAVError) else None
    if status is None:
        from davstore.frontends.webdav.error_status import to_dav_error

        status = get_http_status_string(to_dav_error(exc, method="PROPFIND"))
    href = _escape(resource.get_href())
    return f"<D:response><D:href>{href}</D:href><D:status>HTTP/1.1 {status}</D:status></D:response>"
