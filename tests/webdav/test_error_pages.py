"""Every error page a share answers is davstore's: the status, a sentence a person reads,
and no library's name, version, link, time stamp, exception or traceback
(davstore/frontends/webdav/pages.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from tests.minimal_storages import MinimalStorage
from tests.webdav.serving import Share, serve_share

LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "<D:owner>someone else</D:owner></D:lockinfo>"
)

#: What must never be in an answer's body: wsgidav's name, link and version, the
#: source exception it appends, a Python exception's repr, a traceback, a time stamp.
INTERNALS = re.compile(
    r"wsgidav|github|Source exception|Traceback|\b\w*(Error|Exception|NotFound)\(|"
    r"\d{4}-\d\d-\d\d \d\d:\d\d",
    re.IGNORECASE,
)


def assert_davstore_page(response: requests.Response, code: int) -> None:
    assert response.status_code == code, (response.status_code, response.text)
    body = response.text
    assert not INTERNALS.search(body), body
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("text/html"):
        title = re.search(r"<title>(.*?)</title>", body)
        assert title is not None and str(code) in title.group(1), body
        assert "davstore" in body and "<style>" in body  # the listing's page and style
    else:  # a plain answer of the guards, or an RFC 4918 condition
        assert kind.startswith(("text/plain", "application/xml")), kind
        assert str(code) in body or re.search(r'<(\w+:)?error xmlns(:\w+)?="DAV:"', body), body


class FailingStorage(MinimalStorage):
    """Every read and listing fails as a broken backend would."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def listdir(self, path: str) -> Any:
        raise self.error

    def exists(self, name: str) -> bool:
        raise self.error


def test_every_error_page_of_a_share_is_davstore_s(share: Share) -> None:
    share.request("MKCOL", "folder")
    share.request("PUT", "folder/a.txt", data=b"a")
    share.request("PUT", "locked.txt", data=b"l")
    answers = {
        "GET of a missing file": (share.request("GET", "missing.txt"), 404),
        "DELETE of a missing file": (share.request("DELETE", "missing.txt"), 404),
        "PROPFIND of a missing file": (
            share.request("PROPFIND", "missing.txt", headers={"Depth": "0"}),
            404,
        ),
        "MKCOL of an existing folder": (share.request("MKCOL", "folder"), 405),
        "POST": (share.request("POST", "folder/a.txt", data=b"x"), 405),
        "PUT under a missing folder": (share.request("PUT", "none/a.txt", data=b"x"), 409),
        "PUT If-Match another version": (
            share.request("PUT", "folder/a.txt", data=b"x", headers={"If-Match": '"nope"'}),
            412,
        ),
        "MKCOL with a body": (
            share.request("MKCOL", "new", data=b"<x/>", headers={"Content-Type": "text/xml"}),
            415,
        ),
        "LOCK refresh of nothing": (
            share.request("LOCK", "missing.txt", headers={"If": "(<opaquelocktoken:x>)"}),
            400,
        ),
    }
    locked = share.request(
        "LOCK", "locked.txt", data=LOCK_BODY, headers={"Content-Type": "application/xml"}
    )
    assert locked.status_code == 200, locked.text
    answers["PUT of a file locked by another"] = (
        share.request("PUT", "locked.txt", data=b"mine"),
        423,
    )
    answers["DELETE of a file locked by another"] = (share.request("DELETE", "locked.txt"), 423)
    for what, (response, code) in answers.items():
        try:
            assert_davstore_page(response, code)
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from None


def test_a_read_only_share_refuses_in_its_own_words(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state", read_only=True) as share:
        assert_davstore_page(share.request("PUT", "a.txt", data=b"x"), 403)
        assert_davstore_page(share.request("MKCOL", "d"), 403)
        assert_davstore_page(share.request("GET", "a.txt"), 404)


@pytest.mark.parametrize(
    ("error", "code"),
    [(RuntimeError("boom in the backend"), 500), (ConnectionRefusedError(111, "refused"), 502)],
)
def test_a_failing_store_answers_a_clean_5xx(tmp_path: Path, error: Exception, code: int) -> None:
    with serve_share(FailingStorage(error), tmp_path / "state") as share:
        for method in ("GET", "PROPFIND", "DELETE"):
            response = share.request(method, "folder/a.txt", headers={"Depth": "0"})
            assert_davstore_page(response, code)
            assert "boom" not in response.text and "refused" not in response.text


def test_the_created_answer_is_small_and_davstore_s(share: Share) -> None:
    response = share.request("PUT", "new.txt", data=b"x")
    assert response.status_code == 201
    assert not INTERNALS.search(response.text), response.text
    assert "201 Created" in response.text and len(response.content) < 300
    made = share.request("MKCOL", "made")
    assert made.status_code == 201 and not INTERNALS.search(made.text)
