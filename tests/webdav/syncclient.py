"""A small WebDAV sync client (RFC 6578), as a sync client keeps a folder's state.

It sends ``REPORT`` ``DAV:sync-collection`` the way the RFC's examples do (section 3.8:
an initial sync with an empty token, then the token of the previous answer), keeps
``{href: etag}`` of what it saw, applies each answer (a ``404`` status: removed) and
remembers the new token. Used by the tests on disk, S3 and with a site process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests
from lxml import etree

DAV = "{DAV:}"

_BODY = """<?xml version="1.0" encoding="utf-8" ?>
<D:sync-collection xmlns:D="DAV:">
  <D:sync-token>{token}</D:sync-token>
  <D:sync-level>{level}</D:sync-level>{limit}
  <D:prop>
    <D:getetag/>
    <D:getcontentlength/>
  </D:prop>
</D:sync-collection>
"""


@dataclasses.dataclass
class Answer:
    """One sync-collection answer, parsed."""

    status: int
    changed: dict[str, str | None]  # href -> etag (None: a folder)
    removed: list[str]
    token: str | None
    truncated: bool
    error: str | None  # the DAV:error condition of a refused report
    text: str


def report(
    session: Any,
    url: str,
    token: str = "",
    *,
    level: str = "1",
    limit: int | None = None,
    depth: str | None = None,
) -> Answer:
    """Send one sync-collection REPORT to ``url``; its answer parsed."""
    nresults = f"\n  <D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    if depth is not None:
        headers["Depth"] = depth
    answer: requests.Response = session.request(
        "REPORT",
        url,
        data=_BODY.format(token=token, level=level, limit=nresults).encode(),
        headers=headers,
        timeout=30,
    )
    changed: dict[str, str | None] = {}
    removed: list[str] = []
    new_token = error = None
    truncated = False
    if "xml" in answer.headers.get("Content-Type", ""):
        root = etree.fromstring(answer.content)
        if root.tag == f"{DAV}error":
            error = etree.QName(root[0]).localname if len(root) else None
        for response in root.iterfind(f"{DAV}response"):
            href = response.findtext(f"{DAV}href")
            assert href is not None
            status = response.findtext(f"{DAV}status")
            if status is not None and " 404 " in status:
                removed.append(href)
            elif status is not None and " 507 " in status:
                truncated = True
                assert response.find(f"{DAV}error/{DAV}number-of-matches-within-limits") is not None
            else:
                changed[href] = response.findtext(f"{DAV}propstat/{DAV}prop/{DAV}getetag")
        new_token = root.findtext(f"{DAV}sync-token")
    return Answer(answer.status_code, changed, removed, new_token, truncated, error, answer.text)


class SyncClient:
    """Keeps one folder (``url``) in step: :meth:`sync` asks for what changed since the
    last answer and applies it to :attr:`known` (``{href: etag}``)."""

    def __init__(self, session: Any, url: str, *, level: str = "1") -> None:
        self.session = session
        self.url = url
        self.level = level
        self.token = ""
        self.known: dict[str, str | None] = {}

    def sync(self, *, limit: int | None = None) -> Answer:
        answer = report(self.session, self.url, self.token, level=self.level, limit=limit)
        assert answer.status == 207, answer.text
        assert answer.token, answer.text
        if not self.token:
            self.known = {}
        self.known.update(answer.changed)
        for href in answer.removed:
            self.known.pop(href, None)
            for known in [k for k in self.known if href.endswith("/") and k.startswith(href)]:
                del self.known[known]  # a removed folder takes what it held
        self.token = answer.token
        return answer
