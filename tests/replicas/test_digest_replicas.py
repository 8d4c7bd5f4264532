"""Digest across replicas on different hosts (separate state folders, one Redis): a nonce
one issued is accepted by the other, and a count used on one is refused on the other."""

from __future__ import annotations

import contextlib
from pathlib import Path

import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from tests.webdav.serving import serve_share
from tests.webdav.test_digest import challenge_nonce, digest_header


def test_replicas_share_nonces_and_counts(tmp_path: Path, redis_url: str) -> None:
    storage = FileSystemStorage(tmp_path / "files")
    storage.save("file.txt", ContentFile(b"original"))
    state = {"lock_storage": redis_url, "property_storage": redis_url}
    with contextlib.ExitStack() as stack:
        one = stack.enter_context(serve_share(storage, tmp_path / "host-1", **state))
        two = stack.enter_context(serve_share(storage, tmp_path / "host-2", **state))
        nonce = challenge_nonce(one("file.txt"))
        for nc, replica in enumerate([two, one, two, two], start=1):
            header = digest_header("GET", "/file.txt", nonce, nc)
            answer = requests.get(
                replica("file.txt"), headers={"Authorization": header}, timeout=10
            )
            assert answer.status_code == 200, (nc, answer.headers)
        put = {"Authorization": digest_header("PUT", "/file.txt", nonce, 5)}
        assert (
            requests.put(one("file.txt"), data=b"mine", headers=put, timeout=10).status_code == 204
        )
        replayed = requests.put(two("file.txt"), data=b"replayed", headers=put, timeout=10)
        assert replayed.status_code == 401
        assert two.request("GET", "file.txt").content == b"mine"
    # The secret lives in Redis, not in either host's state folder.
    assert not (tmp_path / "host-1" / "digest-secret").exists()
