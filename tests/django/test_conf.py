"""The DAVSTORE setting: defaults, the parsed shape, and one message per mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from davstore.conf import DavstoreConfig, ShareConfig, get_config, parse_config

STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "uploads": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}


def parse(raw: object, *, static_root: object = None) -> DavstoreConfig:
    return parse_config(raw, storages=STORAGES, static_root=static_root)


def test_defaults_share_media_to_staff_writers() -> None:
    config = parse(None)
    assert config.share_names == ("media",)
    media = config.share("media")
    assert media == ShareConfig(name="media", storage="default")
    assert media.write == ("staff",) and media.read == () and not media.read_only
    assert (config.cache_ttl, config.auth_cache_ttl, config.realm) == (3600.0, 60.0, "davstore")
    assert config.revalidate == media.revalidate == 60.0


def test_default_static_share_is_read_only_when_static_root_is_set() -> None:
    config = parse({}, static_root="/srv/static")
    assert config.share_names == ("media", "static")
    static = config.share("static")
    assert static.storage == "staticfiles" and static.read_only


def test_default_static_share_for_a_custom_static_backend() -> None:
    storages = {**STORAGES, "staticfiles": {"BACKEND": "storages.backends.s3.S3Storage"}}
    assert parse_config(None, storages=storages).share_names == ("media", "static")


def test_no_static_share_without_the_alias() -> None:
    config = parse_config(None, storages={"default": {}}, static_root="/srv/static")
    assert config.share_names == ("media",)


def test_full_shape() -> None:
    config = parse(
        {
            "SHARES": {
                "files": {
                    "STORAGE": "uploads",
                    "READ": ["group:readers", "authenticated"],
                    "WRITE": ["app.change_thing"],
                    "CACHE_TTL": 0,
                    "MAX_UPLOAD_SIZE": 1024,
                    "PROPFIND_DEPTH_INFINITY": "stream",
                    "MAX_PROPERTIES": 10,
                    "MAX_PROPERTIES_PER_REQUEST": 2,
                    "MAX_LOCK_TIMEOUT": 60,
                },
                "media": {"STORAGE": "default", "READ_ONLY": True, "LOCK_STORAGE": "memory:"},
            },
            "CACHE_TTL": 2,
            "AUTH_CACHE_TTL": 5,
            "PROPERTY_STORAGE": "sqlite:///srv/state/{share}-props.db",
            "STATE_DIR": "/srv/state",
            "REALM": "Files",
        }
    )
    files, media = config.shares
    assert files.read == ("group:readers", "authenticated")
    assert files.write == ("app.change_thing",)
    assert (files.cache_ttl, files.max_upload_size, files.lock_storage) == (0.0, 1024, None)
    assert files.property_storage == "sqlite:///srv/state/files-props.db"
    assert files.state_dir == Path("/srv/state/files")
    assert (files.depth_infinity, files.max_properties, files.max_properties_per_request) == (
        True,
        10,
        2,
    )
    assert files.max_lock_timeout == 60
    assert not media.depth_infinity and media.max_lock_timeout == 86400
    assert media.read_only and media.cache_ttl == 2.0 and media.lock_storage == "memory:"
    assert (config.auth_cache_ttl, config.realm) == (5.0, "Files")


BAD: list[tuple[object, str]] = [
    ([], "DAVSTORE: must be a dict"),
    ({"SHARE": {}}, "DAVSTORE['SHARE']: unknown key"),
    ({"CACHE_TTL": -1}, "DAVSTORE['CACHE_TTL']: must be a number of seconds"),
    ({"CACHE_TTL": "1"}, "DAVSTORE['CACHE_TTL']: must be a number of seconds"),
    ({"AUTH_CACHE_TTL": True}, "DAVSTORE['AUTH_CACHE_TTL']: must be a number of seconds"),
    ({"REALM": ""}, "DAVSTORE['REALM']: must be a non-empty"),
    ({"STATE_DIR": "relative/dir"}, "DAVSTORE['STATE_DIR']: must be an absolute path"),
    ({"STATE_DIR": 3}, "DAVSTORE['STATE_DIR']: must be a folder path"),
    ({"LOCK_STORAGE": "ftp://x"}, "DAVSTORE['LOCK_STORAGE']: unknown state URL"),
    (
        {
            "SHARES": {"a": {"STORAGE": "default"}, "b": {"STORAGE": "uploads"}},
            "PROPERTY_STORAGE": "redis://redis:6379/0",
        },
        "DAVSTORE['PROPERTY_STORAGE']: 'redis://redis:6379/0' would be used by 2 shares",
    ),
    ({"PROPERTY_STORAGE": "sqlite://rel.db"}, "DAVSTORE['PROPERTY_STORAGE']: "),
    ({"SHARES": []}, "DAVSTORE['SHARES']: must be a dict"),
    ({"SHARES": {}}, "DAVSTORE['SHARES']: names no share"),
    ({"SHARES": {"a/b": {"STORAGE": "default"}}}, "DAVSTORE['SHARES']: share name 'a/b'"),
    ({"SHARES": {"media": "default"}}, "DAVSTORE['SHARES']['media']: must be a dict"),
    ({"SHARES": {"media": {}}}, "DAVSTORE['SHARES']['media']: needs 'STORAGE'"),
    (
        {"SHARES": {"media": {"STORAGE": "x"}}},
        "DAVSTORE['SHARES']['media']['STORAGE']: unknown storage alias 'x' "
        "(known: default, staticfiles, uploads)",
    ),
    ({"SHARES": {"media": {"STORAGE": 1}}}, "DAVSTORE['SHARES']['media']['STORAGE']: must be"),
    (
        {"SHARES": {"media": {"STORAGE": "default", "READONLY": True}}},
        "DAVSTORE['SHARES']['media']['READONLY']: unknown key",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "READ_ONLY": "yes"}}},
        "DAVSTORE['SHARES']['media']['READ_ONLY']: must be True or False",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "READ": "staff"}}},
        "DAVSTORE['SHARES']['media']['READ']: must be a list of rules",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "WRITE": ["staff", "wizards"]}}},
        "DAVSTORE['SHARES']['media']['WRITE'][1]: unknown rule 'wizards'",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "WRITE": [7]}}},
        "DAVSTORE['SHARES']['media']['WRITE'][0]: must be a string",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "READ": ["group:"]}}},
        "DAVSTORE['SHARES']['media']['READ'][0]: 'group:' names no group",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "CACHE_TTL": None, "MAX_UPLOAD_SIZE": 0}}},
        "DAVSTORE['SHARES']['media']['MAX_UPLOAD_SIZE']: must be a whole number",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "PROPFIND_DEPTH_INFINITY": True}}},
        "DAVSTORE['SHARES']['media']['PROPFIND_DEPTH_INFINITY']: must be 'refuse' or 'stream'",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "MAX_LOCK_TIMEOUT": 0}}},
        "DAVSTORE['SHARES']['media']['MAX_LOCK_TIMEOUT']: must be a whole number >= 1",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "CACHE_TTL": "fast"}}},
        "DAVSTORE['SHARES']['media']['CACHE_TTL']: must be a number of seconds",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "LOCK_STORAGE": "mysql://db"}}},
        "DAVSTORE['SHARES']['media']['LOCK_STORAGE']: unknown state URL",
    ),
    (
        {
            "SHARES": {"a": {"STORAGE": "default"}, "b": {"STORAGE": "uploads"}},
            "LOCK_STORAGE": "sqlite:///srv/locks.db",
        },
        "DAVSTORE['LOCK_STORAGE']: 'sqlite:///srv/locks.db' would be used by 2 shares",
    ),
    (
        {"SHARES": {"media": {"STORAGE": "default", "ON_REPLACE_REFERENCED": "refuse"}}},
        "DAVSTORE['SHARES']['media']['ON_REPLACE_REFERENCED']: must be one of 'validate', "
        "'allow', not 'refuse'",
    ),
    ({"METRICS_PORT": "9100"}, "DAVSTORE['METRICS_PORT']: must be a port number or None"),
    ({"METRICS_PORT": 70000}, "DAVSTORE['METRICS_PORT']: must be a port number or None"),
    ({"METRICS_HOST": ""}, "DAVSTORE['METRICS_HOST']: must be a host name or address"),
]


def test_metrics_port_and_host() -> None:
    assert (parse(None).metrics_port, parse(None).metrics_host) == (None, "127.0.0.1")
    config = parse({"METRICS_PORT": 9100, "METRICS_HOST": "10.0.0.5"})
    assert (config.metrics_port, config.metrics_host) == (9100, "10.0.0.5")


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_mistakes_name_their_key(raw: object, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse(raw)
    assert str(caught.value).startswith(message), str(caught.value)


def test_redis_state_urls_for_replicas() -> None:
    url = "redis://redis:6379/0?prefix=davstore:{share}:"
    config = parse(
        {
            "SHARES": {"a": {"STORAGE": "default"}, "b": {"STORAGE": "uploads"}},
            "LOCK_STORAGE": url,
            "PROPERTY_STORAGE": url,
        }
    )
    a, b = config.shares
    assert a.lock_storage == "redis://redis:6379/0?prefix=davstore:a:"
    assert b.property_storage == "redis://redis:6379/0?prefix=davstore:b:"


def test_get_config_reads_the_settings(settings_override: Any) -> None:
    with settings_override(DAVSTORE={"SHARES": {"up": {"STORAGE": "default"}}}):
        assert get_config().share_names == ("up",)
    assert get_config().share_names == ("media",)


@pytest.fixture
def settings_override() -> Any:
    from django.test.utils import override_settings

    return override_settings


def test_the_bounds_of_davstore_reach_the_share(tmp_path: Path, migrated: None) -> None:
    from django.test.utils import override_settings

    from davstore.frontends.webdav.limits import DavLimits
    from davstore.shares import get_shares
    from davstore.shares_app import ShareOptions, SharesApp
    from tests.django.sharing import project_settings

    settings = project_settings(tmp_path)
    settings["DAVSTORE"]["SHARES"]["media"].update(
        {"PROPFIND_DEPTH_INFINITY": "stream", "MAX_LOCK_TIMEOUT": 60}
    )
    with override_settings(**settings):
        shares = get_shares()
        given = DavLimits(max_properties=3)
        app = SharesApp([shares["media"], ShareOptions(shares["files"], limits=given)])
        try:
            media = app.apps["media"].provider.limits
            assert media == DavLimits(depth_infinity=True, max_lock_timeout=60)
            assert app.apps["files"].provider.limits == given
        finally:
            app.close()


def test_trash_keys_per_share_and_their_mistakes() -> None:
    from davstore.shares import Share

    default = parse({"SHARES": {"m": {"STORAGE": "default"}}}).share("m")
    assert (default.trash, default.trash_days, default.trash_versions) == (True, 30.0, 5)
    assert default.trash_max_size is None
    raw = {"TRASH": False, "TRASH_DAYS": 7, "TRASH_VERSIONS": 2, "TRASH_MAX_SIZE": 1 << 30}
    share = parse({"SHARES": {"m": {"STORAGE": "default", **raw}}}).share("m")
    retention = Share(share).retention
    assert (retention.enabled, retention.days, retention.versions, retention.max_size) == (
        False,
        7.0,
        2,
        1 << 30,
    )
    for key, value, message in (
        ("TRASH", "yes", "must be True or False"),
        ("TRASH_DAYS", 0, "must be a number of days > 0"),
        ("TRASH_VERSIONS", 0, "must be a whole number >= 1"),
        ("TRASH_MAX_SIZE", -1, "must be a whole number of bytes >= 1"),
    ):
        with pytest.raises(ImproperlyConfigured, match=message) as caught:
            parse({"SHARES": {"m": {"STORAGE": "default", key: value}}})
        assert f"['{key}']" in str(caught.value)


def test_trash_flags_over_the_setting() -> None:
    import argparse

    from davstore.serving.trash_command import add_trash_arguments, retention_from_args
    from davstore.vfs.trash import Retention

    parser = argparse.ArgumentParser()
    add_trash_arguments(parser)
    args = parser.parse_args(["--no-trash", "--trash-days", "1.5", "--trash-max-size", "2G"])
    got = retention_from_args(args, Retention(versions=9))
    assert got == Retention(enabled=False, days=1.5, versions=9, max_size=2 << 30)
    assert retention_from_args(parser.parse_args([])) == Retention()
    with pytest.raises(SystemExit):
        parser.parse_args(["--trash-versions", "0"])
