"""The PROPFIND fast path (davstore.frontends.webdav.propfind) against wsgidav's own answers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from django.core.files.storage import FileSystemStorage, Storage

from davstore.frontends.webdav import propfind as fast
from davstore.frontends.webdav import provider as provider_module
from davstore.store.base import Usage
from tests.webdav.serving import Share, serve_share
from tests.webdav.test_methods import LOCK_BODY

DAV = "{DAV:}"
NAMES = [
    "a b&c<d>'\"é.txt",
    "(paren) $x,y!*|.md",
    "100%.txt",
    "q?x#y;z+w=v.html",
    "Ünïcødé-日本.tar.gz",
    ".hidden",
    "..dots.JPG",
    "noext",
    "archive.tgz",
]
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LIVE = [
    "resourcetype",
    "getcontentlength",
    "getlastmodified",
    "getetag",
    "getcontenttype",
    "displayname",
    "creationdate",
    "getcontentlanguage",
    "lockdiscovery",
    "supportedlock",
    "quota-used-bytes",
    "quota-available-bytes",
]


def named(*props: str, prefix: str = "D") -> str:
    inner = "".join(f"<{prefix}:{p}/>" for p in props)
    return (
        f'<?xml version="1.0"?><{prefix}:propfind xmlns:{prefix}="DAV:">'
        f"<{prefix}:prop>{inner}</{prefix}:prop></{prefix}:propfind>"
    )


BODIES = [
    ALLPROP,
    "",
    named(*LIVE),
    named("getcontenttype", "resourcetype", "getetag"),  # a 404 first on folders
    named("getlastmodified", "getlastmodified", prefix="x"),
    named("quota-used-bytes", "displayname"),
]


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each PROPFIND was answered by the fast path (True) or by wsgidav."""
    seen: list[bool] = []

    def spy(*args: Any) -> Any:
        answer = fast.answer_propfind(*args)
        seen.append(answer is not None)
        return answer

    monkeypatch.setattr(provider_module, "answer_propfind", spy)
    yield seen


def populate(share: Share) -> None:
    share.vfs.mkdir("sub dir&")
    share.vfs.mkdir("sub dir&/inner")
    for name in NAMES:
        share.vfs.write_file(name, name.encode())
        share.vfs.write_file(f"sub dir&/{name}", b"")


def both(share: Share, path: str, depth: str | None, body: str) -> tuple[bytes, bytes]:
    """The fast path's answer and wsgidav's, for the same request."""
    headers = {} if depth is None else {"Depth": depth}
    answers = []
    for enabled in (True, False):
        share.app.provider.fast_paths = enabled
        response = share.request("PROPFIND", path, headers=headers, data=body.encode())
        assert response.status_code == 207, response.text
        answers.append(response.content)
    share.app.provider.fast_paths = True
    return answers[0], answers[1]


def parsed(document: bytes) -> dict[str, dict[str, tuple[str, str]]]:
    """href -> {property: (status, serialised element)}."""
    result: dict[str, dict[str, tuple[str, str]]] = {}
    for response in ElementTree.fromstring(document).iter(f"{DAV}response"):
        props = result.setdefault(response.findtext(f"{DAV}href") or "", {})
        for propstat in response.iter(f"{DAV}propstat"):
            for prop in propstat.find(f"{DAV}prop") or []:
                status = propstat.findtext(f"{DAV}status") or ""
                props[prop.tag] = (status, ElementTree.tostring(prop, encoding="unicode"))
    return result


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_same_answer_as_wsgidav(
    share: Share, body: str, taken: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(share.vfs, "usage", lambda: Usage(1234, 5678))  # steady figures
    populate(share)
    for path in [
        "",
        "/",
        "sub%20dir%26",
        "sub%20dir%26/",
        "noext",
        "a%20b%26c%3Cd%3E'%22%C3%A9.txt",
    ]:
        for depth in ("0", "1"):
            mine, theirs = both(share, path, depth, body)
            assert parsed(mine) == parsed(theirs)
            assert mine == theirs, (path, depth)
    assert taken and all(taken)  # only the enabled runs ask the fast path
    listing = parsed(both(share, "sub%20dir%26/", "1", body)[0])
    assert len(listing) == len(NAMES) + 2


def test_hrefs_and_values_are_escaped(share: Share) -> None:
    populate(share)
    response = share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    answer = parsed(response.content)
    assert "/a%20b%26c%3Cd%3E'%22%C3%A9.txt" in answer
    assert "/(paren)%20$x,y!*|.md" in answer
    assert "/q%3Fx%23y%3Bz%2Bw%3Dv.html" in answer
    props = answer["/a%20b%26c%3Cd%3E'%22%C3%A9.txt"]
    assert props[f"{DAV}displayname"][1].endswith(">a b&amp;c&lt;d&gt;'\"é.txt</ns0:displayname>")
    assert answer["/sub%20dir%26/"][f"{DAV}resourcetype"][1].count("collection") == 1


def test_read_only_share_answers_the_same(tmp_path: Path, taken: list[bool]) -> None:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    storage.save("r.txt", io.BytesIO(b"read"))
    with serve_share(storage, tmp_path / "state", read_only=True) as share:
        share.vfs.usage = lambda: Usage(1, 2)  # type: ignore[method-assign]
        mine, theirs = both(share, "", "1", ALLPROP)
        assert mine == theirs
        assert b"/r.txt" in mine
    assert taken[0] is True


def test_authentication_comes_first(share: Share, taken: list[bool]) -> None:
    response = requests.request(
        "PROPFIND", share(""), headers={"Depth": "1"}, data=ALLPROP, timeout=10
    )
    assert response.status_code == 401
    assert taken == []


def lock(share: Share, path: str) -> str:
    response = share.request("LOCK", path, data=LOCK_BODY, headers={"Timeout": "Second-60"})
    assert response.status_code in (200, 201), response.text
    return str(response.headers["Lock-Token"])


def test_a_locked_member_falls_back(share: Share, taken: list[bool]) -> None:
    populate(share)
    token = lock(share, "noext")
    response = share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert taken == [False]
    assert token.strip("<>") in response.text  # wsgidav's lockdiscovery shows it
    other = share.request("PROPFIND", "sub%20dir%26/", headers={"Depth": "1"}, data=ALLPROP)
    assert other.status_code == 207
    assert taken == [False, True]  # a lock elsewhere does not matter
    share.request("UNLOCK", "noext", headers={"Lock-Token": token})
    share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert taken[-1] is True


def test_a_lock_on_the_folder_falls_back(share: Share, taken: list[bool]) -> None:
    share.vfs.mkdir("f")
    token = lock(share, "f")
    response = share.request("PROPFIND", "f", headers={"Depth": "0"}, data=ALLPROP)
    assert taken == [False]
    assert token.strip("<>") in response.text


def test_dead_properties_fall_back(share: Share, taken: list[bool]) -> None:
    populate(share)
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
    )
    assert share.request("PROPPATCH", "noext", data=body).status_code == 207
    response = share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert taken == [False]
    assert "blue" in response.text
    share.request("PROPFIND", "sub%20dir%26", headers={"Depth": "1"}, data=ALLPROP)
    assert taken == [False, True]  # only where a member has properties


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Depth": "infinity"}, ALLPROP, 403),  # refused by default (test_bounds.py)
        ({}, ALLPROP, 403),  # no Depth header means infinity
        ({"Depth": "1"}, named("getetag", "nosuchproperty"), 207),
        ({"Depth": "1"}, named("getetag").replace("D:getetag", "Z:x xmlns:Z='urn:z'"), 207),
        (
            {"Depth": "1"},
            '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
            207,
        ),
        ({"Depth": "1"}, '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"/>', 400),
        ({"Depth": "1"}, "<D:propfind xmlns:D='DAV:'><D:allprop/>", 400),  # not well-formed
        ({"Depth": "1", "If-None-Match": '"x"'}, ALLPROP, 207),
        ({"Depth": "2"}, ALLPROP, 400),
    ],
)
def test_what_it_does_not_understand_goes_to_wsgidav(
    share: Share, taken: list[bool], headers: dict[str, str], body: str, status: int
) -> None:
    populate(share)
    response = share.request("PROPFIND", "sub%20dir%26/", headers=headers, data=body)
    assert response.status_code == status, response.text
    assert not any(taken)


def test_unknown_property_gets_404_from_wsgidav(share: Share, taken: list[bool]) -> None:
    share.vfs.write_file("u.txt", b"u")
    response = share.request(
        "PROPFIND", "u.txt", headers={"Depth": "0"}, data=named("getetag", "nosuchproperty")
    )
    statuses = {
        prop.tag: propstat.findtext(f"{DAV}status")
        for propstat in ElementTree.fromstring(response.content).iter(f"{DAV}propstat")
        for prop in propstat.find(f"{DAV}prop") or []
    }
    assert statuses == {
        f"{DAV}getetag": "HTTP/1.1 200 OK",
        f"{DAV}nosuchproperty": "HTTP/1.1 404 Not Found",
    }
    assert taken == [False]


def test_missing_resource_is_404(share: Share, taken: list[bool]) -> None:
    response = share.request("PROPFIND", "nothing-here", headers={"Depth": "1"}, data=ALLPROP)
    assert response.status_code == 404
    assert taken == [False]


def test_names_xml_cannot_carry_fall_back(tmp_path: Path, taken: list[bool]) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "bell\x07.txt").write_bytes(b"")
    (tmp_path / "media" / "cr\r.txt").write_bytes(b"")
    storage: Storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as share:
        share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert taken == [False]


def test_quota_of_a_store_without_usage(share: Share, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(share.vfs, "usage", lambda: Usage(None, None))
    share.vfs.mkdir("q")
    share.vfs.write_file("q/f.txt", b"f")
    for body in (ALLPROP, named(*LIVE)):
        mine, theirs = both(share, "q/", "1", body)
        assert mine == theirs


# -- elements reused across requests (propfind.Fragments) --------------------------------


@pytest.fixture
def renderers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every renderer the fast path made, to read its counts of reused and rendered."""
    made: list[Any] = []

    class Recording(fast._Renderer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(fast, "_Renderer", Recording)
    return made


PROPPATCH_BLUE = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
)


@pytest.mark.parametrize("body", [ALLPROP, named(*LIVE)], ids=["allprop", "named"])
def test_elements_are_reused_until_their_entry_changes(
    share: Share,
    body: str,
    taken: list[bool],
    renderers: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(share.vfs, "usage", lambda: Usage(1234, 5678))
    populate(share)
    first, theirs = both(share, "", "1", body)
    assert first == theirs
    members = len(NAMES) + 1  # the files and "sub dir&"
    assert renderers[0].rendered == members + 1 and renderers[0].reused == 0
    again = share.request("PROPFIND", "", headers={"Depth": "1"}, data=body.encode())
    assert again.content == first
    assert renderers[-1].reused == members + 1 and renderers[-1].rendered == 0
    share.vfs.write_file("noext", b"changed content")  # a new size, time and ETag
    changed, theirs = both(share, "", "1", body)
    assert changed == theirs != first
    assert renderers[-1].rendered >= 1  # the changed file (and the root, its time moved)
    assert renderers[-1].reused >= members - 1
    monkeypatch.setattr(share.vfs, "usage", lambda: Usage(99, 1))  # the folders' quota
    quota, theirs = both(share, "", "1", body)
    assert quota == theirs
    assert taken == [True, True, True, True]


def test_a_dead_property_or_lock_after_the_elements_were_kept_falls_back(
    share: Share, taken: list[bool]
) -> None:
    populate(share)
    share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert share.request("PROPPATCH", "noext", data=PROPPATCH_BLUE).status_code == 207
    response = share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert "blue" in response.text
    token = lock(share, "archive.tgz")
    response = share.request("PROPFIND", "sub%20dir%26/", headers={"Depth": "1"}, data=ALLPROP)
    share.request("PROPFIND", "", headers={"Depth": "1"}, data=ALLPROP)
    assert taken == [True, False, True, False]
    locked = share.request("PROPFIND", "archive.tgz", headers={"Depth": "0"}, data=ALLPROP)
    assert token.strip("<>") in locked.text  # wsgidav's lockdiscovery shows it
    assert taken[-1] is False


def test_the_elements_kept_stay_within_their_budget(share: Share) -> None:
    for index in range(200):
        share.vfs.write_file(f"f{index:03d}.txt", b"x")
    fragments = fast.Fragments(budget=20_000)
    share.app.provider.propfind_fragments = fragments
    for body in (ALLPROP, named("getetag"), named(*LIVE)):
        for _ in range(2):
            response = share.request("PROPFIND", "", headers={"Depth": "1"}, data=body)
            assert response.status_code == 207
            assert len(parsed(response.content)) == 201
            assert 0 < fragments.size <= 20_000


@pytest.mark.parametrize("body", [ALLPROP, named("getetag", "displayname")])
def test_a_big_folder_is_streamed_with_dead_properties_where_they_are(
    share: Share, body: str, taken: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast, "EAGER_MEMBERS", 3)
    monkeypatch.setattr(share.vfs, "usage", lambda: Usage(1234, 5678))
    streams: list[bool] = []
    members = fast._members

    def spy(*args: Any, **kwargs: Any) -> Any:
        streams.append(True)
        return members(*args, **kwargs)

    monkeypatch.setattr(fast, "_members", spy)
    populate(share)
    assert share.request("PROPPATCH", "noext", data=PROPPATCH_BLUE).status_code == 207
    for _ in range(2):
        mine, theirs = both(share, "", "1", body)
        assert parsed(mine) == parsed(theirs)
        assert len(parsed(mine)) == len(NAMES) + 2
    streamed = share.request("PROPFIND", "", headers={"Depth": "1"}, data=body)
    assert ("blue" in streamed.text) == (body == ALLPROP)
    assert all(taken) and len(streams) == 3  # rendered as it was sent, each time


def test_depth_infinity_reuses_what_depth_1_rendered(
    tmp_path: Path, renderers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from davstore.frontends.webdav.limits import DavLimits

    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state", limits=DavLimits(depth_infinity=True)) as share:
        monkeypatch.setattr(share.vfs, "usage", lambda: Usage(1234, 5678))  # steady figures
        populate(share)
        share.request("PROPFIND", "sub%20dir%26/", headers={"Depth": "1"}, data=ALLPROP)
        mine, theirs = both(share, "", "infinity", ALLPROP)
    assert parsed(mine) == parsed(theirs)
    assert len(parsed(mine)) == 2 * len(NAMES) + 3
    assert renderers[1].reused == len(NAMES) + 2  # "sub dir&/", its files, "inner/"
