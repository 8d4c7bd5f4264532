"""Parsing of the command line and storage selection, in-process (no server)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from davstore.cli import build_parser
from davstore.http.server import BUSY_POLL, make_server
from davstore.options import parse_option, parse_size, parse_user
from davstore.serving.listen import listen
from davstore.serving.selection import (
    DEFAULT_BACKEND,
    SelectionKind,
    StorageSelection,
    UsageError,
    build_storage,
    open_share,
    selection_from_args,
    share_identity,
)
from davstore.serving.state_dir import default_state_root, prepare_state_dir
from davstore.store import FileSystemStore, MemoryStore


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def select(*argv: str, env: dict[str, str] | None = None) -> StorageSelection:
    return selection_from_args(parse(*argv), environ=env or {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("location=/srv/media", ("location", "/srv/media")),
        ("file_permissions_mode=420", ("file_permissions_mode", 420)),
        ("querystring_auth=false", ("querystring_auth", False)),
        ("verify=true", ("verify", True)),
        ("max_memory_size=0.5", ("max_memory_size", 0.5)),
        ("default_acl=null", ("default_acl", None)),
        ('region_name="123"', ("region_name", "123")),
        (
            'object_parameters={"CacheControl": "max-age=60"}',
            ("object_parameters", {"CacheControl": "max-age=60"}),
        ),
        ("tags=[1, 2]", ("tags", [1, 2])),
        ("base_url=", ("base_url", "")),
        ("endpoint=http://127.0.0.1:9000/x?a=b", ("endpoint", "http://127.0.0.1:9000/x?a=b")),
        ("expr=a=b", ("expr", "a=b")),
        ("name=not json {", ("name", "not json {")),
    ],
)
def test_option_values_are_json_where_they_parse(text: str, expected: tuple[str, Any]) -> None:
    assert parse_option(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=1", "1key=2", "my-key=3", "a b=1"])
def test_bad_option_syntax_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_option(text)


def test_repeated_options_become_keyword_arguments() -> None:
    selection = select(
        "--backend",
        "django.core.files.storage.InMemoryStorage",
        "--option",
        "location=/mem",
        "-o",
        "file_permissions_mode=384",
    )
    assert selection.kind is SelectionKind.BACKEND
    assert selection.options == {"location": "/mem", "file_permissions_mode": 384}
    storage = build_storage(selection)
    assert isinstance(storage, InMemoryStorage)
    assert storage.file_permissions_mode == 384


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1 << 20),
        ("512K", 512 << 10),
        ("10M", 10 << 20),
        ("10m", 10 << 20),
        ("2G", 2 << 30),
        ("2GB", 2 << 30),
        ("1.5GiB", 3 << 29),
        ("1T", 1 << 40),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1", "10Q", "ten"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_users() -> None:
    assert parse_user("alice:s3cr:et") == ("alice", "s3cr:et")
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_user(bad)
    args = parse("--user", "a:1", "--user", "b:2")
    assert args.users == [("a", "1"), ("b", "2")]


def test_user_and_anonymous_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--user", "a:1", "--anonymous")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not allowed with argument" in err


def test_serve_defaults() -> None:
    args = parse()
    assert (args.host, args.port, args.threads, args.timeout) == ("127.0.0.1", 8080, 64, 300)
    assert args.cache_ttl == 3600.0
    assert args.revalidate == 60.0
    assert not args.read_only
    assert not args.anonymous
    assert args.users == []
    assert args.max_upload_size is None
    assert parse("--max-upload-size", "10M", "--cache-ttl", "0").max_upload_size == 10 << 20


@pytest.mark.parametrize(
    ("argv", "seconds"),
    [([], BUSY_POLL), (["--busy-poll", "50"], 50e-6), (["--busy-poll", "0"], 0)],
)
def test_busy_poll_reaches_the_server(argv: list[str], seconds: float) -> None:
    """Microseconds on the command line, seconds in the server (default: its own)."""
    server = listen(make_server, lambda environ, start: [], parse("--port", "0", *argv))
    try:
        assert server.busy_poll == pytest.approx(seconds)
    finally:
        server.stop()


def test_root_is_filesystem_storage(tmp_path: Path) -> None:
    selection = select(str(tmp_path))
    assert selection.kind is SelectionKind.BACKEND
    assert selection.backend == DEFAULT_BACKEND
    assert selection.options == {"location": str(tmp_path)}
    storage = build_storage(selection)
    assert type(storage) is FileSystemStorage
    assert storage.location == str(tmp_path)


def test_root_takes_extra_options(tmp_path: Path) -> None:
    selection = select(str(tmp_path), "-o", "base_url=/files/")
    storage = build_storage(selection)
    assert storage.base_url == "/files/"


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such folder"):
        build_storage(select(str(tmp_path / "nope")))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(UsageError, match="not a folder"):
        build_storage(select(str(tmp_path / "file")))


def test_nothing_named_is_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    selection = select()
    assert selection.kind is SelectionKind.DEFAULT
    assert selection.options == {"location": str(tmp_path / "media")}
    assert not (tmp_path / "media").exists()
    storage = build_storage(selection)
    assert (tmp_path / "media").is_dir()
    assert storage.location == str(tmp_path / "media")


def test_settings_without_storage_select_the_default_alias() -> None:
    selection = select(env={"DJANGO_SETTINGS_MODULE": "mysite.settings"})
    assert selection == StorageSelection(
        SelectionKind.ALIAS, alias="default", settings_module="mysite.settings"
    )
    selection = select("--storage", "media", "--settings", "other.settings")
    assert (selection.alias, selection.settings_module) == ("media", "other.settings")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/srv", "--backend", "x.Y"], "either ROOT or --backend"),
        (["--storage", "a", "--backend", "x.Y"], "--storage names the store"),
        (["--storage", "a", "-o", "k=1", "--settings", "s"], "--option works with"),
        (["-o", "k=1"], "--option needs ROOT or --backend"),
        (["--storage", "a"], "--storage needs Django settings"),
        (["/srv", "-o", "location=/x"], "ROOT is the location"),
    ],
)
def test_contradicting_selections(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select(*argv)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("no_such_module.Storage", "unknown backend"),
        ("django.core.files.storage.NoSuchStorage", "unknown backend"),
        ("os.path.join", "is not a Django Storage class"),
        ("pathlib.Path", "is not a Django Storage class"),
        ("Storage", "dotted path"),
    ],
)
def test_bad_backends(backend: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_storage(select("--backend", backend))


def test_options_the_class_refuses() -> None:
    selection = select("--backend", DEFAULT_BACKEND, "-o", "bogus=1")
    with pytest.raises(UsageError, match=r"refused the options.*bogus"):
        build_storage(selection)


def test_unknown_alias_names_the_known_ones() -> None:
    selection = StorageSelection(SelectionKind.ALIAS, alias="nope", settings_module=None)
    with pytest.raises(UsageError, match=r"no storage 'nope' in STORAGES.*known: default"):
        build_storage(selection)


def test_open_share_builds_the_vfs(tmp_path: Path) -> None:
    share = open_share(parse(str(tmp_path), "--read-only", "--cache-ttl", "5"))
    assert isinstance(share.vfs.store, FileSystemStore)
    assert share.vfs.read_only
    assert share.vfs.cache.ttl == 5.0
    memory = open_share(parse("--backend", "django.core.files.storage.InMemoryStorage"))
    assert isinstance(memory.vfs.store, MemoryStore)
    assert not memory.vfs.read_only


def test_share_identity_is_stable_and_distinct(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def identity(*argv: str) -> str:
        selection = select(*argv)
        return share_identity(selection, build_storage(selection))

    first = identity(str(tmp_path / "a"))
    assert first == identity(str(tmp_path / "a"))
    assert first == identity("--backend", DEFAULT_BACKEND, "-o", f"location={tmp_path / 'a'}")
    assert first.startswith("a-")
    assert first != identity(str(tmp_path / "b"))
    memory = identity("--backend", "django.core.files.storage.InMemoryStorage")
    assert memory not in (first, identity(str(tmp_path / "b")))


def test_share_identity_tells_stores_apart_by_their_options(tmp_path: Path) -> None:
    """Two stores of one class without a location attribute, different only in an option,
    have different state folders (before, both had the identity of the class alone and
    shared their locks and dead properties); the order of the options does not matter."""
    backend = ("--backend", "tests.minimal_storages.NamespacedStorage")

    def identity(*argv: str) -> str:
        selection = select(*backend, *argv)
        return share_identity(selection, build_storage(selection), state_root=tmp_path)

    first = identity("-o", "namespace=a", "-o", "region=eu")
    assert first == identity("-o", "region=eu", "-o", "namespace=a")
    assert first != identity("-o", "namespace=b", "-o", "region=eu")
    assert first != identity()
    assert first.startswith("NamespacedStorage-")


def test_share_identity_keeps_the_folder_an_existing_share_had(tmp_path: Path) -> None:
    """A share with a location and other options keeps the state folder it had before the
    options were part of the identity; a new share gets the identity with the options."""
    (tmp_path / "files").mkdir()
    argv = (str(tmp_path / "files"), "-o", "file_permissions_mode=420")
    selection = select(*argv)
    storage = build_storage(selection)
    older = share_identity(select(str(tmp_path / "files")), storage)
    root = tmp_path / "state"
    new = share_identity(selection, storage, state_root=root)
    assert new != older
    (root / older).mkdir(parents=True)
    assert share_identity(selection, storage, state_root=root) == older
    (root / new).mkdir()
    assert share_identity(selection, storage, state_root=root) == new


def test_state_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_state_root({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "davstore"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "state" / "davstore"
    assert default_state_root({}) == expected
    assert default_state_root({"XDG_STATE_HOME": "relative/ignored"}) == expected


def test_state_dir_per_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = prepare_state_dir(None, "media-0123456789")
    assert path == tmp_path / "state" / "davstore" / "media-0123456789"
    assert path.is_dir()
    assert list(path.iterdir()) == []
    explicit = prepare_state_dir(str(tmp_path / "mine"), "ignored")
    assert explicit == tmp_path / "mine"


def test_unwritable_state_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(UsageError, match="not writable"):
        prepare_state_dir(str(tmp_path / "file" / "state"), "x")


def test_dav_limits_from_flags() -> None:
    from davstore.frontends.webdav.limits import DavLimits
    from davstore.serving.arguments import dav_limits

    assert dav_limits(parse()) == DavLimits()
    args = parse(
        "--propfind-depth-infinity",
        "stream",
        "--max-properties",
        "50",
        "--max-properties-per-request",
        "5",
        "--max-lock-timeout",
        "600",
    )
    assert dav_limits(args) == DavLimits(
        depth_infinity=True, max_properties=50, max_properties_per_request=5, max_lock_timeout=600
    )
    # manage.py davstore serve: what was not given (None) comes from the DAVSTORE setting.
    base = DavLimits(depth_infinity=True, max_lock_timeout=60)
    not_given = dict.fromkeys(
        ("propfind_depth_infinity", "max_properties_per_request", "max_lock_timeout")
    )
    given = argparse.Namespace(**not_given, max_properties=7)
    assert dav_limits(given, base) == DavLimits(
        depth_infinity=True, max_properties=7, max_lock_timeout=60
    )


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_bounds_are_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        parse("--max-lock-timeout", value)
