"""Authentication and the read-only share."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from requests.auth import HTTPDigestAuth

from tests.webdav.serving import PASSWORD, USER, Share, serve_share


def test_unauthenticated_is_401(share: Share) -> None:
    response = requests.get(share("/"), timeout=10)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert 'realm="davstore"' in response.headers["WWW-Authenticate"]


def test_wrong_password_is_401(share: Share) -> None:
    response = requests.request(
        "PROPFIND", share("/"), auth=(USER, "wrong"), headers={"Depth": "0"}, timeout=10
    )
    assert response.status_code == 401


def test_basic_auth_is_accepted(share: Share) -> None:
    response = requests.request(
        "PROPFIND", share("/"), auth=(USER, PASSWORD), headers={"Depth": "0"}, timeout=10
    )
    assert response.status_code == 207


def test_digest_auth_is_accepted(share: Share) -> None:
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(USER, PASSWORD)
        assert session.put(share("d.txt"), data=b"digest", timeout=10).status_code == 201
        assert session.get(share("d.txt"), timeout=10).content == b"digest"


MALFORMED_BASIC = {
    "not-base64": "Basic !!!",
    "no-colon": "Basic " + base64.b64encode(b"alice").decode(),
    "bad-padding": "Basic " + base64.b64encode(b"alice:s3cre").decode().rstrip("="),
    "not-utf-8": "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),
    "empty": "Basic ",
}


@pytest.mark.parametrize("form", MALFORMED_BASIC)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "file.txt", None),  # the quick path of a small file
        ("PUT", "file.txt", b"changed"),  # the quick path of a small upload
        ("PUT", "big.txt", b"x" * (1 << 20)),  # through wsgidav
        ("PROPFIND", "", None),
        ("GET", "", None),  # the listing
    ],
)
def test_malformed_basic_credentials_are_401(
    tmp_path: Path, form: str, method: str, path: str, body: bytes | None
) -> None:
    storage = FileSystemStorage(tmp_path / "files")  # a local disk: the quick paths
    storage.save("file.txt", ContentFile(b"original"))
    with serve_share(storage, tmp_path / "state") as share:
        assert share.app.inline
        answer = requests.request(
            method,
            share(path),
            data=body,
            headers={"Authorization": MALFORMED_BASIC[form], "Depth": "0"},
            timeout=10,
        )
        assert answer.status_code == 401, answer.text
        assert "WWW-Authenticate" in answer.headers
        assert share.request("GET", "file.txt").content == b"original"
    assert not storage.exists("big.txt")


def test_anonymous_is_an_explicit_choice(tmp_path: Path) -> None:
    storage = InMemoryStorage()
    with serve_share(storage, tmp_path / "state", anonymous=True) as share:
        assert requests.put(share("anon.txt"), data=b"a", timeout=10).status_code == 201
        assert requests.get(share("anon.txt"), timeout=10).content == b"a"


def test_an_empty_user_table_is_refused(tmp_path: Path) -> None:
    from davstore.frontends.webdav import create_app
    from davstore.store import adapt
    from davstore.vfs import VFS

    with pytest.raises(ValueError, match="at least one user"):
        create_app(VFS(adapt(InMemoryStorage())), users={}, state_dir=tmp_path)


LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype></D:lockinfo>"
)
PROPPATCH_BODY = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    "<D:set><D:prop><Z:p>v</Z:p></D:prop></D:set></D:propertyupdate>"
)

WRITES = [
    ("PUT", "file.txt", {"data": b"changed"}),
    ("PUT", "new.txt", {"data": b"new"}),
    ("DELETE", "file.txt", {}),
    ("DELETE", "dir", {}),
    ("MKCOL", "newdir", {}),
    ("COPY", "file.txt", {"headers": {"Destination": "/copy.txt"}}),
    ("MOVE", "file.txt", {"headers": {"Destination": "/moved.txt"}}),
    ("PROPPATCH", "file.txt", {"data": PROPPATCH_BODY}),
    ("LOCK", "file.txt", {"data": LOCK_BODY}),
    ("LOCK", "unmapped.txt", {"data": LOCK_BODY}),
]


@pytest.mark.parametrize(("method", "path", "options"), WRITES, ids=lambda v: str(v)[:20])
def test_read_only_share_refuses_every_write(
    tmp_path: Path, method: str, path: str, options: dict
) -> None:
    storage = InMemoryStorage()
    storage.save("file.txt", ContentFile(b"original"))
    storage.save("dir/inner.txt", ContentFile(b"inner"))
    before = snapshot(storage)
    with serve_share(storage, tmp_path / "state", read_only=True) as share:
        response = share.request(method, path, **options)
        assert response.status_code == 403, response.text
        assert share.request("GET", "file.txt").content == b"original"
        assert share.request("PROPFIND", "", headers={"Depth": "1"}).status_code == 207
    assert snapshot(storage) == before


def snapshot(storage: InMemoryStorage) -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    def walk(folder: str) -> None:
        dirs, names = storage.listdir(folder)
        for name in names:
            path = f"{folder}/{name}" if folder else name
            with storage.open(path) as handle:
                files[path] = handle.read()
        for name in dirs:
            path = f"{folder}/{name}" if folder else name
            files[path + "/"] = b""
            walk(path)

    walk("")
    return files
