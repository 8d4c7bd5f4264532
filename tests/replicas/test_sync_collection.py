"""WebDAV sync-collection across replicas (vfs/sync.py over journal_redis.py): a replica
answers from the Redis journal stream, so what another replica, or the site, changed is
reported, and a token whose changes the stream trimmed is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav.state.redis_state import DEFAULT_PREFIX as PREFIX
from davstore.vfs.journal import Record
from davstore.vfs.journal_redis import StreamFeed, append, stream_key
from tests.webdav.serving import Share, serve_share
from tests.webdav.syncclient import SyncClient, report


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str) -> Iterator[tuple[Share, Share]]:
    """Two replicas of one folder, each with a state folder of its own (two hosts)."""
    root = tmp_path / "files"
    root.mkdir()
    with (
        serve_share(
            FileSystemStorage(location=str(root)), tmp_path / "a", lock_storage=redis_url
        ) as one,
        serve_share(
            FileSystemStorage(location=str(root)), tmp_path / "b", lock_storage=redis_url
        ) as two,
    ):
        yield one, two


def test_a_replica_reports_what_another_replica_and_the_site_changed(
    replicas: tuple[Share, Share], redis_url: str
) -> None:
    one, two = replicas
    assert isinstance(one.vfs.change_feed, StreamFeed)
    assert two.request("PUT", "a.txt", data=b"a").status_code == 201
    client = SyncClient(one.session, one(""))
    assert sorted(client.sync().changed) == ["/a.txt"]
    assert two.request("PUT", "b.txt", data=b"b").status_code == 201
    assert two.request("DELETE", "a.txt").status_code == 204
    answer = client.sync()
    assert sorted(answer.changed) == ["/b.txt"]
    assert answer.removed == ["/a.txt"]
    # The site on a third host wrote c.txt through its Storage and journaled it
    # (site/announce.py appends this record).
    (Path(one.storage.location) / "c.txt").write_bytes(b"c")  # type: ignore[attr-defined]
    site = Record(action="created", path="c.txt", origin="site", writer="site-host")
    append(redis.Redis.from_url(redis_url), stream_key(PREFIX), site)
    assert sorted(client.sync().changed) == ["/c.txt"]
    assert report(two.session, two(""), client.token).changed == {}  # one token for both


def test_a_token_whose_changes_the_stream_trimmed_is_refused(
    replicas: tuple[Share, Share], redis_url: str
) -> None:
    one, two = replicas
    assert two.request("PUT", "a.txt", data=b"a").status_code == 201
    client = SyncClient(one.session, one(""))
    client.sync()
    assert two.request("PUT", "b.txt", data=b"b").status_code == 201
    assert two.request("PUT", "c.txt", data=b"c").status_code == 201
    # Trimmed past the retention:
    redis.Redis.from_url(redis_url).xtrim(stream_key(PREFIX), maxlen=1, approximate=False)
    answer = report(one.session, one(""), client.token)
    assert answer.status == 403, answer.text
    assert answer.error == "valid-sync-token"
