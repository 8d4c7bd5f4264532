"""WebDAV request bodies and helpers shared by the replica tests."""

from __future__ import annotations

import re
from typing import Any

import requests

SET_COLOUR = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:set><D:prop><Z:colour>{colour}</Z:colour></D:prop></D:set></D:propertyupdate>"
)
GET_COLOUR = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:prop><Z:colour/></D:prop></D:propfind>"
)
LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"
)
_TOKEN = re.compile(r"<(opaquelocktoken:[^>]+)>")


def lock(
    session: requests.Session, url: str, owner: str = "tests", **kwargs: Any
) -> requests.Response:
    """LOCK ``url`` exclusively (Depth 0, 60 s)."""
    return session.request(
        "LOCK",
        url,
        data=LOCK_BODY.format(owner=owner),
        headers={"Depth": "0", "Timeout": "Second-60", "Content-Type": "application/xml"},
        **kwargs,
    )


def token_of(response: requests.Response) -> str:
    """The lock token of a LOCK answer."""
    match = _TOKEN.search(response.headers.get("Lock-Token", ""))
    assert match is not None, (response.status_code, response.headers, response.text)
    return match.group(1)


def if_header(url: str, token: str) -> dict[str, str]:
    return {"If": f"<{url}> (<{token}>)"}


def unlock(session: requests.Session, url: str, token: str, **kwargs: Any) -> requests.Response:
    return session.request("UNLOCK", url, headers={"Lock-Token": f"<{token}>"}, **kwargs)


def names_in(response: requests.Response) -> set[str]:
    """The last path segments of the hrefs of a PROPFIND answer."""
    hrefs = re.findall(r"<D:href>([^<]*)</D:href>", response.text, flags=re.IGNORECASE)
    return {href.rstrip("/").rpartition("/")[2] for href in hrefs}
