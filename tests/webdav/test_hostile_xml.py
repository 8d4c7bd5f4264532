"""Malformed and hostile XML bodies are 400 and the server keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webdav.rawhttp import raw_request
from tests.webdav.serving import Share

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">
<D:set><D:prop><Z:bomb>&lol9;</Z:bomb></D:prop></D:set></D:propertyupdate>"""

SECRET = "top-secret-content-3141"


def external_entity(secret_file: Path, root: str) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret_file}">]>'
        f'<{root} xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:leak>&xxe;</Z:leak></D:prop></D:set>"
        f"</{root.split(maxsplit=1)[0]}>"
    )


MALFORMED = [
    '<D:propfind xmlns:D="DAV:"><D:prop>',
    "not xml at all",
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop></D:propfind>',
    '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind><trailing/>',
    "\x00\x01\x02",
]


def assert_still_serving(share: Share) -> None:
    assert share.request("PUT", "alive.txt", data=b"alive").status_code in (201, 204)
    assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207


@pytest.mark.parametrize("method", ["PROPPATCH", "PROPFIND", "LOCK"])
def test_entity_expansion_bomb_is_400(share: Share, method: str) -> None:
    share.request("PUT", "t.txt", data=b"t")
    response = share.request(method, "t.txt", data=BILLION_LAUGHS)
    assert response.status_code == 400
    assert "lollol" not in response.text
    assert_still_serving(share)


def test_external_entity_is_400_and_leaks_nothing(share: Share, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    share.request("PUT", "t.txt", data=b"t")
    response = share.request("PROPPATCH", "t.txt", data=external_entity(secret, "D:propertyupdate"))
    assert response.status_code == 400
    assert SECRET not in response.text
    listing = share.request("PROPFIND", "t.txt", headers={"Depth": "0"})
    assert SECRET not in listing.text
    assert_still_serving(share)


def test_utf16_doctype_is_400(share: Share) -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]>'
        '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    ).encode("utf-16")
    response = share.request("PROPFIND", "", data=body, headers={"Depth": "0"})
    assert response.status_code == 400
    assert_still_serving(share)


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_malformed_xml_is_400(share: Share, method: str, body: str) -> None:
    share.request("PUT", "m.txt", data=b"m")
    response = share.request(method, "m.txt", data=body.encode(), headers={"Depth": "0"})
    assert response.status_code == 400
    assert_still_serving(share)


def test_oversized_xml_body_is_413(share: Share) -> None:
    body = b'<D:propfind xmlns:D="DAV:"><D:allprop/>' + b" " * (2 << 20) + b"</D:propfind>"
    status, _ = raw_request(share.url, "PROPFIND", "/", body=body, headers={"Depth": "0"})
    assert status == 413
    assert_still_serving(share)


def test_chunked_xml_body_is_read(share: Share) -> None:
    def body() -> object:
        yield b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:">'
        yield b"<D:prop><D:displayname/></D:prop></D:propfind>"

    response = share.request("PROPFIND", "", data=body(), headers={"Depth": "0"})
    assert response.status_code == 207
    assert "displayname" in response.text
