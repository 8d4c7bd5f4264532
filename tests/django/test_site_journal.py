"""The site's own writes through a shared Storage are journaled once (site/announce.py),
and a ``davstore serve`` process shows them at once, long before its 60 s cache TTL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage, default_storage, storages
from django.test.utils import override_settings

from davstore.shares import get_share
from davstore.signals import acting_as_user
from davstore.site.announce import journaled_alias
from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.host_peers import share_with_host_peers
from davstore.vfs.journal import FILE_NAME, Journal
from tests.django.project import Project, make_project
from tests.django.test_command import dav, listed
from tests.process import ServeProcess
from tests.replicas.redis_server import RedisServer
from tests.s3.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    new_bucket,
    running_moto,
)
from tests.webdav.syncclient import SyncClient


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


def _settings(tmp_path: Path) -> dict[str, object]:
    return {
        "STORAGES": {
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "media")},
            },
            "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "private": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        "DAVSTORE": {
            "SHARES": {"media": {"STORAGE": "default"}, "mem": {"STORAGE": "memory"}},
            "STATE_DIR": str(tmp_path / "state"),
        },
    }


def _fresh_storages() -> None:
    """Storage objects made again from the settings now in force.

    Django 4.2's ``override_settings(STORAGES=...)`` also sets ``DEFAULT_FILE_STORAGE`` on
    the overriding holder, and its storages handler then rebuilds ``default`` from that
    setting alone, without ``OPTIONS`` (the storage named ``MEDIA_ROOT`` instead of the
    test's folder). A site configured in its settings file is not affected; the handler
    here is given ``settings.STORAGES`` as it stands."""
    from django.conf import settings
    from django.utils.functional import empty

    from davstore.shares import reset_shares

    storages._storages = {}
    storages._backends = dict(settings.STORAGES)
    storages.__dict__["backends"] = storages._backends
    default_storage._wrapped = empty
    reset_shares()


@pytest.fixture
def site(tmp_path: Path, migrated: None) -> Iterator[Path]:
    (tmp_path / "media").mkdir()
    with override_settings(**_settings(tmp_path)):
        _fresh_storages()
        yield tmp_path
    _fresh_storages()


def _journal(site: Path, share: str) -> list[tuple[str, str, str | None, str | None]]:
    path = site / "state" / share / FILE_NAME
    if not path.exists():
        return []
    records, _ = Journal(path).since(0)
    return [(r.action, r.path, r.origin, r.user) for r in records]


def test_the_sites_save_and_delete_are_journaled_and_answer_as_before(
    site: Path, make_user: object
) -> None:
    assert journaled_alias(storages["default"]) == "default"
    assert journaled_alias(storages["private"]) is None  # no share names it
    assert type(storages["default"]) is FileSystemStorage  # the same class and object
    first = default_storage.save("report.txt", ContentFile(b"one"))
    second = default_storage.save("report.txt", ContentFile(b"two"))
    assert first == "report.txt" and second.startswith("report_")  # Django's names
    user = make_user("alice")  # type: ignore[operator]
    with acting_as_user(user, "admin"):
        storages["default"].delete(first)
    assert not default_storage.exists(first)
    storages["private"].save("x.txt", ContentFile(b"x"))
    assert _journal(site, "media") == [
        ("created", "report.txt", "site", None),
        ("created", second, "site", None),
        ("deleted", "report.txt", "site", "alice"),
    ]


def test_the_sites_save_and_delete_are_in_the_activity_log(site: Path, make_user: object) -> None:
    """Failed before: the activity log held the changes people made through davstore only."""
    from davstore.vfs.activity import ActivityLog

    default_storage.save("minutes.txt", ContentFile(b"12345"))
    user = make_user("carol")  # type: ignore[operator]
    with acting_as_user(user, "admin"):
        default_storage.delete("minutes.txt")
    shown = [
        (r["action"], r["path"], r["origin"], r["user"], r["size"])
        for r in ActivityLog(site / "state" / "media").read()
    ]
    assert shown == [
        ("created", "minutes.txt", "site", None, 5),
        ("deleted", "minutes.txt", "site", "carol", None),
    ]


def test_a_change_davstore_makes_through_the_same_storage_is_journaled_once(site: Path) -> None:
    share = get_share("mem")
    assert isinstance(share.storage, InMemoryStorage)  # the generic adapter: Storage.save
    with share.vfs.open_write("by-dav.txt") as handle:
        handle.write(b"dav")
    share.vfs.remove("by-dav.txt")
    storages["memory"].save("by-site.txt", ContentFile(b"site"))
    assert [(a, p, o) for a, p, o, _ in _journal(site, "mem")] == [
        ("created", "by-dav.txt", None),
        ("deleted", "by-dav.txt", None),
        ("created", "by-site.txt", "site"),
    ]


def test_the_sites_own_share_forgets_what_the_site_wrote(site: Path) -> None:
    share = get_share("media")
    share.vfs.cache_ttl = 600
    assert share.vfs.lookup("later.txt") is None  # a cached absence
    default_storage.save("later.txt", ContentFile(b"12345"))
    assert share.vfs.stat("later.txt").size == 5


def test_a_served_share_shows_the_sites_write_at_once_with_a_60_s_ttl(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    _alice(project)
    with project.serve("--cache-ttl", "60") as server:
        _site_writes_show_at_once(project, server)


def _site_writes_show_at_once(
    project: Project, server: ServeProcess, before: tuple[str, ...] = ()
) -> None:
    """PROPFIND caches the folder for 60 s; the site saves and deletes through its
    Storage in another process; the server shows each at once."""
    assert listed(server, "media/") == list(before)
    saved = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "print(s.save('uploads/new.txt', ContentFile(b'new')))"
    )
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.split() == ["uploads/new.txt"]
    assert listed(server, "media/") == sorted([*before, "uploads/"])
    assert listed(server, "media/uploads/") == ["new.txt"]
    assert dav("GET", server, "media/uploads/new.txt").content == b"new"
    deleted = project.python(
        "from django.core.files.storage import default_storage as s;s.delete('uploads/new.txt')"
    )
    assert deleted.returncode == 0, deleted.stderr
    folder = dav("PROPFIND", server, "media/uploads/", headers={"Depth": "1"})
    if folder.status_code == 207:  # a folder of its own (disk)
        assert "new.txt" not in folder.text
    else:  # a prefix that held only that file (S3)
        assert folder.status_code == 404
        assert listed(server, "media/") == list(before)
    assert dav("GET", server, "media/uploads/new.txt").status_code == 404


def _alice(project: Project) -> None:
    made = project.python(
        "from django.contrib.auth.models import User;"
        "User.objects.create_user('alice', password='pw', is_staff=True)"
    )
    assert made.returncode == 0, made.stderr


def test_a_served_share_on_s3_shows_the_sites_write_at_once(
    tmp_path: Path, moto: MotoServer
) -> None:
    s3 = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": new_bucket(moto),
            "endpoint_url": moto.url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": "us-east-1",
            "location": "media",
        },
    }
    project = make_project(tmp_path / "site", storages={"default": s3})
    _alice(project)
    seeded = project.python(  # an empty bucket has no share root yet
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "s.save('seed.txt', ContentFile(b'seed'))"
    )
    assert seeded.returncode == 0, seeded.stderr
    with project.serve("--cache-ttl", "60") as server:
        _site_writes_show_at_once(project, server, ("seed.txt",))


def test_a_replica_with_redis_state_shows_the_sites_write_at_once(tmp_path: Path) -> None:
    """The share's state in Redis: the site appends to the journal stream, which the
    server follows (its host-peers file is not the path the change takes: another
    state folder)."""
    redis = RedisServer(tmp_path / "redis")
    redis.directory.mkdir()
    redis.start()
    try:
        project = make_project(
            tmp_path / "site",
            davstore={"SHARES": {"media": {"STORAGE": "default", "LOCK_STORAGE": redis.url}}},
        )
        _alice(project)
        with project.serve(
            "--cache-ttl", "60", "--state-dir", str(tmp_path / "elsewhere")
        ) as server:
            _site_writes_show_at_once_eventually(project, server)
    finally:
        redis.stop()


def _site_writes_show_at_once_eventually(project: Project, server: ServeProcess) -> None:
    """As :func:`_site_writes_show_at_once`, across hosts: the server's follower thread
    applies the entry when it arrives (polled with a bound far below the 60 s TTL)."""
    assert listed(server, "media/") == []
    saved = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "print(s.save('new.txt', ContentFile(b'new')))"
    )
    assert saved.returncode == 0, saved.stderr
    deadline = time.monotonic() + 20
    while listed(server, "media/") != ["new.txt"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listed(server, "media/") == ["new.txt"]


def test_a_mount_shows_the_sites_write_at_once_with_a_60_s_ttl(tmp_path: Path) -> None:
    from tests.django.test_mount_coherence import mount_media

    project = make_project(tmp_path / "site")
    with mount_media(project, tmp_path, "--cache-ttl", "60") as mountpoint:
        assert os.listdir(mountpoint) == []  # the VFS caches the listing for 60 s
        saved = project.python(
            "from django.core.files.base import ContentFile;"
            "from django.core.files.storage import default_storage as s;"
            "print(s.save('new.txt', ContentFile(b'new')))"
        )
        assert saved.returncode == 0, saved.stderr
        assert os.listdir(mountpoint) == ["new.txt"]
        assert (mountpoint / "new.txt").read_bytes() == b"new"


def test_a_change_through_the_sites_share_is_journaled_for_the_other_processes(
    site: Path, make_user: object
) -> None:
    """The admin's door (``share.vfs`` in the site's process): another process of the
    share (here a second VFS on the same state folder) forgets the path at once."""
    share = get_share("media")
    (site / "media" / "gone.txt").write_bytes(b"old")
    share.vfs.cache.clear()  # written behind the share's back: what an earlier test cached
    other = VFS(adapt(FileSystemStorage(location=str(site / "media"))), cache_ttl=600)
    assert share_with_host_peers(other, share.state_dir()) is not None
    assert other.stat("gone.txt").size == 3  # cached for 600 s
    user = make_user("alice")  # type: ignore[operator]
    with acting_as_user(user, "admin"):
        share.vfs.remove("gone.txt")
    assert other.lookup("gone.txt") is None
    assert _journal(site, "media") == [("deleted", "gone.txt", "admin", "alice")]


SITE_LISTENING = """
import time
from davstore.signals import file_changed
from davstore.site.follow import follow_journals
got = []
file_changed.connect(lambda sender, **kw: got.append(kw), weak=False)
follow_journals()
print("ready", flush=True)
deadline = time.monotonic() + 30
while len(got) < WANTED and time.monotonic() < deadline:
    time.sleep(0.02)
for kw in got:
    files = "" if kw["files"] is None else " files=" + ",".join(sorted(kw["files"]))
    print(kw["share"], kw["action"].value, kw["path"], kw["origin"], kw["user"], files, flush=True)
"""


def _listening_site(project: Project, wanted: int) -> subprocess.Popen[str]:
    code = f"WANTED = {wanted}\n{SITE_LISTENING}"
    return subprocess.Popen(
        project.command("shell", "--verbosity", "0", "-c", code),
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_site_gets_file_changed_for_changes_people_made_in_a_server(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    _alice(project)
    with project.serve() as server:
        site = _listening_site(project, 2)
        try:
            assert site.stdout is not None
            assert site.stdout.readline().strip() == "ready", site.stderr
            assert dav("PUT", server, "media/by-alice.txt", data=b"hi").status_code == 201
            assert dav("DELETE", server, "media/by-alice.txt").status_code == 204
            out, err = site.communicate(timeout=60)
        finally:
            if site.poll() is None:
                site.kill()
                site.communicate()
    assert [line.strip() for line in out.splitlines()] == [
        "media created by-alice.txt webdav alice",
        "media deleted by-alice.txt webdav alice",
    ], err


def test_the_site_gets_file_changed_for_changes_people_made_on_another_host(
    tmp_path: Path,
) -> None:
    """The share's state in Redis, and a replica on another host (a ``davstore serve`` of
    the same folder with a state folder of its own): failed before (the site followed its
    host's journal only, which that replica never writes); the journal stream tells the
    site each change once."""
    from tests.process import davstore_env, start_serve

    redis = RedisServer(tmp_path / "redis")
    redis.directory.mkdir()
    redis.start()
    try:
        project = make_project(
            tmp_path / "site",
            davstore={"SHARES": {"media": {"STORAGE": "default", "LOCK_STORAGE": redis.url}}},
        )
        other_host = tmp_path / "other-host"
        other_host.mkdir()
        replica = start_serve(
            [str(project.root / "media"), "--user", "bea:secret-pass", "--lock-storage", redis.url],
            cwd=other_host,
            env=davstore_env(other_host),
        )
        with replica:
            site = _listening_site(project, 2)
            try:
                assert site.stdout is not None
                assert site.stdout.readline().strip() == "ready", site.stderr
                bea = ("bea", "secret-pass")
                url = replica.url + "far.txt"
                assert requests.put(url, data=b"hi", auth=bea, timeout=10).status_code == 201
                assert requests.delete(url, auth=bea, timeout=10).status_code == 204
                out, err = site.communicate(timeout=60)
            finally:
                if site.poll() is None:
                    site.kill()
                    site.communicate()
    finally:
        redis.stop()
    assert [line.strip() for line in out.splitlines()] == [
        "media created far.txt webdav bea",
        "media deleted far.txt webdav bea",
    ], err


def test_the_sites_file_changed_for_a_folder_moved_and_deleted_elsewhere_names_its_files(
    tmp_path: Path,
) -> None:
    """Through the journal too: a folder a person moved, then deleted, in a server."""
    project = make_project(tmp_path / "site")
    _alice(project)
    with project.serve() as server:
        for folder in ("media/d/", "media/d/sub/"):
            assert dav("MKCOL", server, folder).status_code == 201
        for name in ("media/d/a.txt", "media/d/sub/b.txt"):
            assert dav("PUT", server, name, data=b"x").status_code == 201
        site = _listening_site(project, 2)
        try:
            assert site.stdout is not None
            assert site.stdout.readline().strip() == "ready", site.stderr
            moved = dav(
                "MOVE", server, "media/d/", headers={"Destination": server.url + "media/e/"}
            )
            assert moved.status_code == 201, moved.text
            assert dav("DELETE", server, "media/e/").status_code == 204
            out, err = site.communicate(timeout=60)
        finally:
            if site.poll() is None:
                site.kill()
                site.communicate()
    assert [line.strip() for line in out.splitlines()] == [
        "media moved d webdav alice  files=d/a.txt,d/sub/b.txt",
        "media folder_deleted e webdav alice  files=e/a.txt,e/sub/b.txt",
    ], err


def _site_writes_are_synced(
    project: Project, server: ServeProcess, before: tuple[str, ...] = ()
) -> None:
    """A sync client (RFC 6578) of the share sees the site's save and delete, made in the
    site's own process through its Storage, and a change made through the server."""
    session = requests.Session()
    session.auth = ("alice", "pw")
    client = SyncClient(session, server.url + "media/", level="infinite")
    assert sorted(client.sync().changed) == list(before)
    saved = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "s.save('uploads/new.txt', ContentFile(b'new'))"
    )
    assert saved.returncode == 0, saved.stderr
    answer = client.sync()
    assert "/media/uploads/new.txt" in answer.changed, answer.text
    assert dav("PUT", server, "media/by-alice.txt", data=b"hi").status_code == 201
    deleted = project.python(
        "from django.core.files.storage import default_storage as s;s.delete('uploads/new.txt')"
    )
    assert deleted.returncode == 0, deleted.stderr
    answer = client.sync()
    assert sorted(answer.changed) in (
        ["/media/by-alice.txt"],
        ["/media/by-alice.txt", "/media/uploads/"],  # a folder of its own (disk)
    ), answer.text
    assert answer.removed in (
        ["/media/uploads/new.txt"],
        ["/media/uploads/new.txt", "/media/uploads/"],  # a prefix that held only it (S3)
    ), answer.text
    assert client.sync().changed == {}
    # A person's delete keeps the file in the share's trash: removed, the trash unseen.
    assert dav("DELETE", server, "media/by-alice.txt").status_code == 204
    answer = client.sync()
    assert answer.removed == ["/media/by-alice.txt"], answer.text
    assert answer.changed == {}, answer.text


def test_a_sync_client_sees_the_sites_writes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site")
    _alice(project)
    with project.serve("--cache-ttl", "60") as server:
        _site_writes_are_synced(project, server)


def test_a_sync_client_sees_the_sites_writes_on_s3(tmp_path: Path, moto: MotoServer) -> None:
    s3 = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": new_bucket(moto),
            "endpoint_url": moto.url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": "us-east-1",
            "location": "media",
        },
    }
    project = make_project(tmp_path / "site", storages={"default": s3})
    _alice(project)
    seeded = project.python(
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "s.save('seed.txt', ContentFile(b'seed'))"
    )
    assert seeded.returncode == 0, seeded.stderr
    with project.serve("--cache-ttl", "60") as server:
        _site_writes_are_synced(project, server, ("/media/seed.txt",))
