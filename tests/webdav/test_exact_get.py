"""A GET promises the length and ETag of the very version it sends, even when the site
replaced the file behind the share's back within the cache TTL."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from tests.minimal_storages import MinimalStorage
from tests.webdav.serving import serve_share


@pytest.mark.parametrize("kind", ["filesystem", "minimal"])
@pytest.mark.parametrize("ranged", [False, True])
def test_get_after_a_change_behind_the_share(kind: str, ranged: bool, tmp_path: Path) -> None:
    storage = (
        FileSystemStorage(location=str(tmp_path / "media"))
        if kind == "filesystem"
        else MinimalStorage()
    )
    storage.save("doc.txt", ContentFile(b"short"))
    with serve_share(storage, tmp_path / "state", cache_ttl=60) as share:
        assert share.request("PROPFIND", "doc.txt", headers={"Depth": "0"}).status_code == 207
        storage.delete("doc.txt")
        storage.save("doc.txt", ContentFile(b"a much longer second version"))
        headers = {"Range": "bytes=2-"} if ranged else {}
        answer = share.request("GET", "doc.txt", headers=headers, timeout=10)
        body = b"a much longer second version"
        assert answer.content == (body[2:] if ranged else body)
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        again = share.request("GET", "doc.txt", timeout=10)
        assert again.headers["ETag"] == answer.headers["ETag"]
