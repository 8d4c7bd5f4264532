"""davstore's own HTML pages: the one template and stylesheet of the folder listing
(listing.py), the list of shares (``SharesApp`` at ``/``) and every status page a share
answers (404, 403, 405, 409, 412, 415, 423, 5xx, and the bodies of 201s).

The pages need no JavaScript and no other resource (icons are inline SVG, the style is
inline): a share's answers may carry ``Content-Security-Policy: sandbox``.

A status page tells the status and, for a 4xx, the davstore reason (``ReadOnly``'s "the
share is read-only") or wsgidav's own sentence when it made the error itself; never a
library's name, an exception's ``repr`` or a traceback (those go to the log).
:func:`use_davstore_status_pages` makes wsgidav's pages these (its ``DAVError`` renders
every status page it answers, raised or sent).
"""

from __future__ import annotations

import dataclasses
import html
import os
import string
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "FILE_ICON",
    "FOLDER_ICON",
    "UP_ICON",
    "SharePages",
    "breadcrumbs",
    "missing_root_notice",
    "render_page",
    "render_shares",
    "status_page",
    "use_davstore_status_pages",
]

#: The package folder this module was loaded from (``davstore/``). Not looked up by the
#: name ``davstore``: a process started with the current folder on its path, in a folder
#: holding a ``davstore/`` folder, sees that folder as the package by that name (a namespace
#: package, on an editable install): the template would be missing (every listing a 500) or
#: one that a user uploaded.
_PACKAGE = Path(__file__).resolve().parents[len(__name__.split(".")) - 2]

_TEMPLATE: string.Template | None = None

_SVG = '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true" focusable="false">'
#: Icons are pictures, not controls: nothing in them can be clicked or ticked.
FOLDER_ICON = (
    _SVG + '<path fill="#e0a526" d="M1 3.5C1 2.7 1.7 2 2.5 2h3.7l1.6 1.6h5.7c.8 0 1.5.7 1.5 '
    '1.5v7.4c0 .8-.7 1.5-1.5 1.5h-11C1.7 14 1 13.3 1 12.5z"/></svg>'
)
FILE_ICON = (
    _SVG + '<path fill="#dbe4ef" stroke="#6f8098" d="M3.5 .5h6l3 3v12h-9z"/>'
    '<path fill="#fff" stroke="#6f8098" d="M9.5 .5v3h3"/>'
    '<path stroke="#6f8098" d="M5 7.5h6M5 9.5h6M5 11.5h4"/></svg>'
)
UP_ICON = _SVG + '<path fill="#6f8098" d="M8 2 2.5 7.5h3.5V14h4V7.5h3.5z"/></svg>'

#: What a person reads for each status, when nothing more precise is known.
_SENTENCES: dict[int, str] = {
    400: "The request could not be understood.",
    401: "This share needs a user name and a password.",
    403: "You may not do this here.",
    404: "There is nothing at this address.",
    405: "This cannot be done here.",
    409: "This conflicts with what is there (a missing folder, or a folder where a file "
    "was expected).",
    411: "The request must say how long its body is.",
    412: "A condition of the request does not hold (the file changed or exists already).",
    413: "This is bigger than the share takes.",
    415: "This kind of content is not taken here.",
    423: "This is locked by someone else.",
    424: "This depended on a part that failed.",
    500: "The server could not do this. What went wrong is in its log.",
    501: "This share cannot do this.",
    502: "The storage behind this share does not answer.",
    503: "This share is not available right now.",
    504: "The storage behind this share took too long to answer.",
    507: "There is no room left in the storage.",
}


@dataclasses.dataclass(frozen=True, slots=True)
class SharePages:
    """How a share's pages name it.

    :param name: the share's name: the title, and the root breadcrumb.
    :param shares_url: the URL of the list of shares (``SharesApp``), the crumb before the
        share's; None where there is none (a single ``davstore serve``).
    :param missing_hint: what makes the share's folder when it does not exist yet (for the
        static share: "run collectstatic"); None: only that it is missing is said.
    """

    name: str = "davstore"
    shares_url: str | None = None
    missing_hint: str | None = None


def _template() -> string.Template:
    global _TEMPLATE  # noqa: PLW0603 -- the packaged template, read once
    if _TEMPLATE is None:
        text = (_PACKAGE / "templates" / "webdav" / "listing.html").read_text(encoding="utf-8")
        _TEMPLATE = string.Template(text)
    return _TEMPLATE


def render_page(*, title: str, crumbs: str, content: str, footer: str) -> bytes:
    """A page of davstore's template: ``title`` (text) as title and heading, ``crumbs``
    and ``content`` (HTML), ``footer`` (text)."""
    return (
        _template()
        .substitute(
            title=html.escape(title),
            heading=html.escape(title),
            breadcrumbs=crumbs,
            content=content,
            footer=html.escape(footer),
        )
        .encode("utf-8")
    )


def breadcrumbs(pages: SharePages | None, base: str, parts: list[str]) -> str:
    """The breadcrumb bar: the list of shares (where there is one), the share by its
    name, then each folder of ``parts``; ``base`` is the share root's URL path."""
    links = []
    if pages is not None and pages.shares_url is not None:
        links.append(f'<a class="shares" href="{html.escape(pages.shares_url)}">Shares</a>')
    if pages is not None:
        links.append(f'<a href="{html.escape(quote(base + "/"))}">{html.escape(pages.name)}</a>')
    for depth, part in enumerate(parts, 1):
        href = quote(base + "/" + "/".join(parts[:depth]) + "/")
        links.append(f'<a href="{html.escape(href)}">{html.escape(part)}</a>')
    if not links:
        return ""
    return (
        '<nav class="crumbs" aria-label="breadcrumbs">'
        + '<span class="sep">/</span>'.join(links)
        + "</nav>\n"
    )


def render_shares(shares: list[tuple[str, bool]], base: str) -> bytes:
    """The list of shares (``SharesApp`` at ``base``): ``(name, read_only)`` each, in the
    listing's style."""
    rows = "".join(
        f'<tr class="folder"><td class="name"><a href="{html.escape(base + quote(name))}/">'
        f"{FOLDER_ICON}{html.escape(name)}/</a></td>"
        f'<td class="note">{"read-only" if read_only else ""}</td></tr>'
        for name, read_only in shares
    )
    content = (
        '<table><thead><tr><th>Share</th><th class="note">Access</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if shares
        else '<p class="empty">You may not read any share.</p>'
    )
    crumbs = (
        '<nav class="crumbs" aria-label="breadcrumbs">'
        f'<a class="shares" href="{html.escape(base)}">Shares</a></nav>\n'
    )
    return render_page(
        title="Shares", crumbs=crumbs, content=content, footer=f"{len(shares)} share(s) - davstore"
    )


def missing_root_notice(pages: SharePages | None) -> str:
    """The notice (HTML) of a share whose root folder does not exist yet."""
    hint = pages.missing_hint if pages is not None else None
    what = (
        f"<p>{html.escape(hint)}</p>"
        if hint
        else "<p>It is made by whoever fills the share (its first upload, or the site).</p>"
    )
    return (
        '<section class="notice" role="status"><h2>This share\'s folder does not exist yet.'
        f"</h2>{what}</section>"
    )


def status_page(
    code: int,
    message: str | None = None,
    *,
    pages: SharePages | None = None,
    base: str = "",
    notice: str = "",
) -> bytes:
    """The page of status ``code``: its phrase, ``message`` (a 4xx's reason, text) or the
    status's sentence, and the way back to the share when ``pages`` names it."""
    phrase = _phrase(code)
    sentence = message if message and code < 500 else _SENTENCES.get(code, "")
    content = notice or f'<section class="notice"><p>{html.escape(sentence)}</p></section>'
    if pages is not None:
        back = html.escape(quote(base + "/"))
        content += f'<p class="back"><a href="{back}">Back to {html.escape(pages.name)}</a></p>'
    title = f"{code} {phrase}" if pages is None else f"{pages.name} — {code} {phrase}"
    return render_page(
        title=title,
        crumbs=breadcrumbs(pages, base, []),
        content=content,
        footer="davstore",
    )


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def _public_message(error: object) -> str | None:
    """What of a wsgidav ``DAVError`` a person may read: the reason of the davstore error
    behind it (when it has one of its own, not errno's words), or wsgidav's sentence when it
    made the error itself; nothing of a library's exception."""
    from davstore.errors import DavstoreError

    source = getattr(error, "src_exception", None)
    if isinstance(source, DavstoreError):
        reason = source.reason
        if reason and reason != os.strerror(source.errno or 0):
            return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
        return None
    if source is not None:
        return None
    info = getattr(error, "context_info", None)
    if isinstance(info, str) and info and not info.startswith("/"):
        return info
    return None


def _get_response_page(self: object) -> tuple[str, bytes]:
    """``DAVError.get_response_page`` of davstore (see :func:`use_davstore_status_pages`)."""
    from wsgidav.dav_error import get_http_status_code

    condition = getattr(self, "err_condition", None)
    if condition is not None:  # RFC 4918 pre/postcondition: its XML body
        return "application/xml; charset=utf-8", condition.as_string().encode("utf-8")
    code = get_http_status_code(self)
    if code < 400:  # the body of a 201 (every PUT of a new file): small, no style
        line = f"{code} {_phrase(code)}"
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{line}</title></head><body><p>{line}</p></body></html>\n"
        )
        return "text/html; charset=utf-8", page.encode()
    return "text/html; charset=utf-8", status_page(code, _public_message(self))


def use_davstore_status_pages() -> None:
    """Make wsgidav's status pages davstore's (idempotent): its ``DAVError`` renders the
    body of every status it answers (raised and caught by its ``ErrorPrinter``, or sent by
    ``send_status_response``) with the wsgidav name, version, link, the time and the
    source exception's ``repr``; davstore's page has none of them.
    tests/webdav/test_error_pages.py checks the installed version."""
    from wsgidav.dav_error import DAVError

    DAVError.get_response_page = _get_response_page
