"""The ``DAVSTORE`` setting: read once, checked at start-up, kept as frozen values.

The whole shape, every key optional::

    DAVSTORE = {
        "SHARES": {                        # default: see below
            "media": {
                "STORAGE": "default",      # a key of STORAGES (required)
                "READ_ONLY": False,        # refuse every change, for everyone
                "READ": [],                # who may read (rules below)
                "WRITE": ["staff"],        # who may read and write (rules below)
                "CACHE_TTL": None,         # seconds; None: the top-level CACHE_TTL
                "MAX_UPLOAD_SIZE": None,   # bytes; bigger uploads are refused
                "PROPFIND_DEPTH_INFINITY": "refuse",  # or "stream" (docs/SECURITY.md)
                "MAX_PROPERTIES": 1000,    # dead properties per file or folder
                "MAX_PROPERTIES_PER_REQUEST": 100,  # properties one PROPPATCH changes
                "MAX_LOCK_TIMEOUT": 86400, # seconds a lock lives at most
                "LOCK_STORAGE": None,      # None: the top-level LOCK_STORAGE
                "PROPERTY_STORAGE": None,  # None: the top-level PROPERTY_STORAGE
                "ON_DELETE_REFERENCED": "refuse",  # or "allow" (davstore.site.guard)
                "ON_MOVE_REFERENCED": "rewrite",   # or "refuse", "allow"
                "ON_REPLACE_REFERENCED": "validate",  # or "allow"
                "MAC_METADATA": None,      # "hide" or "store"; None: the top-level one
                "TRASH": True,             # a person's delete goes to the share's trash
                "TRASH_DAYS": 30,          # days the trash keeps an entry
                "TRASH_VERSIONS": 5,       # entries kept per path (the newest)
                "TRASH_MAX_SIZE": None,    # bytes; past it the oldest entries go
            },
        },
        "CACHE_TTL": 1.0,                  # seconds file and folder metadata is reused
        "AUTH_CACHE_TTL": 60.0,            # seconds verified credentials are reused
        "LOCK_STORAGE": None,              # memory:, sqlite:///FILE, shelve:///FILE,
                                           # redis://HOST:PORT/DB (shared by replicas)
        "PROPERTY_STORAGE": None,          # the same forms
        "STATE_DIR": None,                 # folder holding one sub-folder per share
        "REALM": "davstore",               # the HTTP Basic realm
        "MAC_METADATA": "hide",            # macOS ._* files: "hide" (state folder) or "store"
        "METRICS_PORT": None,              # serve the metrics on this port of their own
        "METRICS_HOST": "127.0.0.1",       # the address of METRICS_PORT
        "ADAPTERS": {},                    # Storage class path -> store adapter path
    }                                      # (see davstore.store.registry)

Without ``SHARES`` there is a ``media`` share on the ``default`` storage and, when
``STORAGES`` has a ``staticfiles`` alias that can be used (``STATIC_ROOT`` set, or a
backend that is not Django's own static files storage), a read-only ``static`` share on it.
Share names are URL path segments (``/media/``, ``/static/``).

Access rules (``READ`` and ``WRITE`` are lists of them; a user matching any rule passes):

- ``"app_label.codename"``: the user has this Django permission (``user.has_perm``, so the
  project's authentication backends decide);
- ``"group:NAME"``: the user belongs to the group ``NAME``;
- ``"staff"``: ``user.is_staff``; ``"authenticated"``: any active user.

Inactive users never get in; superusers may do everything; whoever may write may read;
nobody writes to a ``READ_ONLY`` share. The default, ``READ=[]`` and ``WRITE=["staff"]``,
lets active staff users read and write and nobody else connect.

``LOCK_STORAGE`` and ``PROPERTY_STORAGE`` default to SQLite files in the share's state
folder: ``STATE_DIR/<share>``, or without ``STATE_DIR`` the folder ``davstore serve
--storage ALIAS`` uses for the same alias. A ``sqlite:`` or ``shelve:`` URL given at the top
level is used by every share, so it must contain ``{share}`` (replaced by the share name)
when there is more than one share. Replicas of a site share their locks and properties in
Redis: ``redis://HOST:PORT/DB``, with ``?prefix=davstore:{share}:`` when there are several
shares (each share's keys under its own prefix).

Every mistake is named with its key by ``manage.py check`` (``davstore.E001``, one message
each: :func:`validate_config`), for example ``DAVSTORE['SHARES']['media']['STORAGE']:
unknown storage alias 'x' (known: default)``; a permission rule no installed model has is
``davstore.W002`` (:mod:`davstore.checks`). Reading a wrong setting (:func:`get_config`,
when a share is served or mounted) raises ``ImproperlyConfigured`` with the same messages.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured

from davstore.options import KEYWORD_RULES as _KEYWORD_RULES
from davstore.options import OPTIONS, Option, Scope, keys, option

__all__ = [
    "DEFAULT_WRITE",
    "DavstoreConfig",
    "ShareConfig",
    "get_config",
    "parse_config",
    "validate_config",
]

#: Who may write (and so read) when a share names nobody.
DEFAULT_WRITE: tuple[str, ...] = option("write").default
#: The access rules without arguments.
KEYWORD_RULES = _KEYWORD_RULES

#: The keys of ``DAVSTORE`` and of a share in it: the options' (davstore.options) and the
#: three that shape the setting (``ADAPTERS``: see davstore.store.registry).
_TOP_KEYS = keys(Scope.TOP) | {"SHARES", "ADAPTERS"}
_SHARE_KEYS = keys(Scope.SHARE) | {"STORAGE"}
_SHARE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DJANGO_STATIC_BACKENDS = (
    "django.contrib.staticfiles.storage.StaticFilesStorage",
    "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
)


@dataclasses.dataclass(frozen=True, slots=True)
class ShareConfig:
    """One share as configured (see the module docstring for each key).

    :param name: the share's name and URL path segment.
    :param storage: the ``STORAGES`` alias it serves.
    :param read: rules of who may read; :param write: rules of who may read and write.
    :param lock_storage: a state URL (``{share}`` already replaced), or None for the
        SQLite default in the state folder; likewise ``property_storage``.
    :param state_dir: the share's own state folder, or None for the CLI's default.
    :param propfind_depth_infinity: ``"refuse"`` or ``"stream"``; it and the other bounds
        (``max_properties``, ``max_properties_per_request``, ``max_lock_timeout``) make the
        :class:`davstore.frontends.webdav.limits.DavLimits` of the share.
    """

    name: str
    storage: str
    read_only: bool = False
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = DEFAULT_WRITE
    cache_ttl: float = 1.0
    max_upload_size: int | None = None
    lock_storage: str | None = None
    property_storage: str | None = None
    state_dir: Path | None = None
    #: What a person's delete / move of a file some model row names does (site guard).
    on_delete_referenced: str = "refuse"
    on_move_referenced: str = "rewrite"
    on_replace_referenced: str = "validate"
    propfind_depth_infinity: str = "refuse"
    max_properties: int = 1000
    max_properties_per_request: int = 100
    max_lock_timeout: int = 86400
    mac_metadata: str = "hide"
    #: The share's trash (davstore.vfs.trash): on, days kept, entries per path, byte cap.
    trash: bool = True
    trash_days: float = 30.0
    trash_versions: int = 5
    trash_max_size: int | None = None

    @property
    def depth_infinity(self) -> bool:
        """Whether PROPFIND Depth: infinity on a folder is answered (streamed)."""
        return self.propfind_depth_infinity == "stream"


@dataclasses.dataclass(frozen=True, slots=True)
class DavstoreConfig:
    """The whole ``DAVSTORE`` setting, checked. ``shares`` keeps the setting's order."""

    shares: tuple[ShareConfig, ...]
    cache_ttl: float = 1.0
    auth_cache_ttl: float = 60.0
    realm: str = "davstore"
    state_dir: Path | None = None
    #: ``--metrics-port`` and ``--metrics-host`` of ``manage.py davstore serve`` when unset.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    def share(self, name: str) -> ShareConfig:
        """The share called ``name``; ``KeyError`` when there is none."""
        for share in self.shares:
            if share.name == name:
                return share
        raise KeyError(name)

    @property
    def share_names(self) -> tuple[str, ...]:
        return tuple(share.name for share in self.shares)


def get_config() -> DavstoreConfig:
    """The checked ``DAVSTORE`` setting of the running project. Raises ImproperlyConfigured."""
    from django.conf import settings

    return parse_config(
        getattr(settings, "DAVSTORE", None),
        storages=getattr(settings, "STORAGES", {}) or {},
        static_root=getattr(settings, "STATIC_ROOT", None),
    )


def parse_config(
    raw: object,
    *,
    storages: Mapping[str, Any],
    static_root: object = None,
) -> DavstoreConfig:
    """Check ``raw`` (the ``DAVSTORE`` value, None when unset) against ``storages`` (the
    ``STORAGES`` setting). Raises ImproperlyConfigured naming the offending key: the first
    mistake first, then every other one (:func:`validate_config`, which the system check
    ``davstore.E001`` reports one by one)."""
    config, problems = validate_config(raw, storages=storages, static_root=static_root)
    if problems or config is None:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if problems[1:] else ""
        raise ImproperlyConfigured(f"{problems[0]}{more}")
    return config


def validate_config(
    raw: object,
    *,
    storages: Mapping[str, Any],
    static_root: object = None,
) -> tuple[DavstoreConfig | None, list[str]]:
    """The checked setting and every mistake in it, each as ``"KEY: what is wrong"``;
    the setting is None when there is any. A wrong part is skipped and the rest checked,
    so one run names every mistake."""
    problems: list[str] = []
    top = "DAVSTORE"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return None, [f"{top}: must be a dict, not {type(raw).__name__}"]
    _attempt(problems, None, _check_keys, top, raw, _TOP_KEYS)
    # Every top-level option, checked; a share's own value overrides those it may set.
    defaults = {
        item.name: _attempt(
            problems,
            item.default,
            _checked,
            f"{top}[{item.key!r}]",
            item,
            raw.get(item.key, item.default),
        )
        for item in _options(Scope.TOP)
    }
    lock_storage = defaults["lock_storage"]
    property_storage = defaults["property_storage"]
    # The shape only: the paths are imported when a store is adapted.
    from davstore.store.registry import parse_setting as parse_adapters

    try:
        parse_adapters(raw.get("ADAPTERS"), f"{top}['ADAPTERS']")
    except ImproperlyConfigured as exc:
        problems.append(str(exc))

    shares_raw: Mapping[Any, Any] = {}
    if "SHARES" in raw:
        given = raw["SHARES"]
        if not isinstance(given, Mapping):
            problems.append(f"{top}['SHARES']: must be a dict, not {type(given).__name__}")
        elif not given:
            problems.append(f"{top}['SHARES']: names no share")
        else:
            shares_raw = given
    else:
        shares_raw = _default_shares(storages, static_root)

    shares = []
    for name, options in shares_raw.items():
        key = f"{top}['SHARES'][{name!r}]"
        if not isinstance(name, str) or not _SHARE_NAME.match(name):
            problems.append(
                f"{top}['SHARES']: share name {name!r} must be letters, digits, '.', '_' or '-' "
                "(it is the URL path segment)"
            )
            continue
        share = _parse_share(
            key, name, options, storages=storages, defaults=defaults, problems=problems
        )
        if share is not None:
            shares.append(share)
    if len(shares_raw) > 1:
        for share_key, url in (
            ("LOCK_STORAGE", lock_storage),
            ("PROPERTY_STORAGE", property_storage),
        ):
            if url is not None and not url.startswith("memory:") and "{share}" not in url:
                problems.append(
                    f"{top}[{share_key!r}]: {url!r} would be used by {len(shares_raw)} shares: "
                    "put '{share}' in it (replaced by each share's name) or set it per share"
                )
    if problems:
        return None, problems
    return (
        DavstoreConfig(
            shares=tuple(shares),
            cache_ttl=defaults["cache_ttl"],
            auth_cache_ttl=defaults["auth_cache_ttl"],
            realm=defaults["realm"],
            state_dir=defaults["state_dir"],
            metrics_port=defaults["metrics_port"],
            metrics_host=defaults["metrics_host"],
        ),
        [],
    )


def _default_shares(storages: Mapping[str, Any], static_root: object) -> dict[str, Any]:
    shares: dict[str, Any] = {"media": {"STORAGE": "default"}}
    static = storages.get("staticfiles")
    if isinstance(static, Mapping):
        backend = static.get("BACKEND", "")
        if static_root or backend not in _DJANGO_STATIC_BACKENDS:
            shares["static"] = {"STORAGE": "staticfiles", "READ_ONLY": True}
    return shares


def _parse_share(
    key: str,
    name: str,
    options: object,
    *,
    storages: Mapping[str, Any],
    defaults: Mapping[str, Any],
    problems: list[str],
) -> ShareConfig | None:
    """The share's config, or None when ``problems`` got one of its mistakes (each
    key checked)."""
    if not isinstance(options, Mapping):
        problems.append(f"{key}: must be a dict, not {type(options).__name__}")
        return None
    found = len(problems)
    _attempt(problems, None, _check_keys, key, options, _SHARE_KEYS)
    alias = options.get("STORAGE")
    if "STORAGE" not in options:
        problems.append(f"{key}: needs 'STORAGE': the STORAGES alias to share")
    elif not isinstance(alias, str):
        problems.append(f"{key}['STORAGE']: must be a STORAGES alias (a string), not {alias!r}")
    elif alias not in storages:
        known = ", ".join(sorted(storages)) or "none"
        problems.append(f"{key}['STORAGE']: unknown storage alias {alias!r} (known: {known})")
    values: dict[str, Any] = {}
    for item in _options(Scope.SHARE):
        given = options.get(item.key)
        if given is None:
            values[item.name] = defaults.get(item.name, item.default)
        else:
            values[item.name] = _attempt(
                problems, item.default, _checked, f"{key}[{item.key!r}]", item, given
            )
    if len(problems) > found or not isinstance(alias, str):
        return None
    locks, props = values.pop("lock_storage"), values.pop("property_storage")
    state_dir = defaults["state_dir"]
    return ShareConfig(
        name=name,
        storage=alias,
        **values,
        lock_storage=None if locks is None else locks.replace("{share}", name),
        property_storage=None if props is None else props.replace("{share}", name),
        state_dir=None if state_dir is None else state_dir / name,
    )


def _options(scope: Scope) -> list[Option]:
    return [item for item in OPTIONS if item.key is not None and scope in item.scope]


class _Mistake(Exception):
    """One mistake in the setting (``"KEY: message"``); the part being read is skipped."""


def _attempt(problems: list[str], fallback: Any, check: Callable[..., Any], *args: Any) -> Any:
    """``check(*args)``, or ``fallback`` with the mistake it found added to ``problems``."""
    try:
        return check(*args)
    except _Mistake as exc:
        problems.append(str(exc))
        return fallback


def _checked(key: str, item: Option, value: object) -> Any:
    """``value`` as ``item`` takes it; a mistake naming ``key`` when it is wrong (a wrong
    entry of a list is named with its index)."""
    if item.check is None or (value is None and item.default is None):
        return value
    try:
        return item.check(value)
    except ValueError as exc:
        message = str(exc)
        if message.startswith("["):
            index, _, message = message.partition(": ")
            _fail(f"{key}{index}", message)
        _fail(key, message)


def _fail(key: str, message: str) -> NoReturn:
    raise _Mistake(f"{key}: {message}")


def _check_keys(key: str, value: Mapping[Any, Any], allowed: frozenset[str]) -> None:
    unknown = [k for k in value if k not in allowed]
    if unknown:
        known = ", ".join(sorted(allowed))
        _fail(
            ", ".join(f"{key}[{k!r}]" for k in unknown),
            f"unknown key{'s' if len(unknown) > 1 else ''} (known: {known})",
        )
