"""Storage selection: which Django Storage a command serves or mounts.

Every command that opens a share (``serve``, ``mount``) takes the same arguments, added by
:func:`add_storage_arguments`, and turns them into a :class:`~davstore.vfs.VFS` with
:func:`build_vfs`. The ways to name a store, as in DESIGN.md section 4:

``ROOT``
    A folder on local disk: ``FileSystemStorage(location=ROOT)``.
``--backend DOTTED.PATH [--option KEY=VALUE ...]``
    Any Storage class, built with the options as keyword arguments. A value is parsed as
    JSON where it parses (``420``, ``true``, ``null``, ``["a"]``), else kept as a string.
``--storage ALIAS [--settings MODULE]``
    The project's ``STORAGES[ALIAS]``, exactly the object the site writes through
    (``django.core.files.storage.storages[ALIAS]``).
nothing
    With Django settings (``--settings`` or ``DJANGO_SETTINGS_MODULE``) the project's
    ``"default"`` storage; without, the embedded default: ``FileSystemStorage`` on
    ``./media``, created if missing.

Django is configured once per process by :func:`configure_django`: from the settings module
when one is named, else with minimal settings (``USE_TZ=True``, no apps, no database) so
that Storage methods work. ``--settings`` and ``--storage`` make the current folder
importable, as ``manage.py`` makes its own folder (``cd project && davstore serve
--settings mysite.settings``): it is put on the path only when the settings module's
package is there and nowhere else on the path (:func:`project_folder`); a current folder
inside the local folder being shared is refused (uploads would be importable code), and
a worker of ``--workers`` never looks at its current folder: it is handed the folder by
its absolute path (:mod:`davstore.serving.workers`). Bad input raises :class:`UsageError`,
whose message is one line meant for a person; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.storage import Storage

from davstore.serving.exits import UsageError
from davstore.serving.state_dir import default_state_root
from davstore.store import adapt
from davstore.vfs import VFS

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_ROOT",
    "OpenedSelection",
    "SelectionKind",
    "StorageSelection",
    "UsageError",
    "build_storage",
    "build_vfs",
    "configure_django",
    "open_share",
    "project_folder",
    "selection_from_args",
    "share_identity",
]

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "django.core.files.storage.FileSystemStorage"
#: The embedded default share, relative to the working directory.
DEFAULT_ROOT = "media"


class SelectionKind(enum.Enum):
    """How the store was named."""

    DEFAULT = "default"  #: nothing named and no Django settings: ./media
    BACKEND = "backend"  #: ROOT or --backend with --option
    ALIAS = "alias"  #: --storage, or nothing named with Django settings


@dataclass(frozen=True, slots=True)
class StorageSelection:
    """The store a command was asked for, before anything is imported or built.

    :param kind: how it was named.
    :param backend: dotted path of the Storage class (``BACKEND`` and ``DEFAULT``).
    :param options: keyword arguments for the class (``BACKEND`` and ``DEFAULT``).
    :param alias: the ``STORAGES`` key (``ALIAS``).
    :param settings_module: the Django settings module to load, if any.
    :param root: the ROOT folder given on the command line (absolute), if any.
    """

    kind: SelectionKind
    backend: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    alias: str | None = None
    settings_module: str | None = None
    root: str | None = None


@dataclass(frozen=True, slots=True)
class OpenedSelection:
    """The store a command line selected, opened: what was asked for, the Storage built
    for it, and its VFS. (A share of a Django project is :class:`davstore.shares.Share`.)

    :param identity: see :func:`share_identity`; names the share's state folder.
    """

    selection: StorageSelection
    storage: Storage
    vfs: VFS
    identity: str
    #: The folder put on the import path for the settings (:func:`project_folder`), if any.
    project_folder: str | None = None

    @property
    def name(self) -> str:
        """What the share is called in its pages: the ``STORAGES`` alias, the ROOT
        folder's name, ``media`` for the default ``./media``, else the Storage class."""
        selection = self.selection
        if selection.kind is SelectionKind.ALIAS and selection.alias:
            return selection.alias
        if selection.root:
            return os.path.basename(selection.root.rstrip(os.sep)) or selection.root
        if selection.kind is SelectionKind.DEFAULT:
            return "media"
        return type(self.storage).__name__


def selection_from_args(
    args: argparse.Namespace, *, environ: Mapping[str, str] | None = None
) -> StorageSelection:
    """The :class:`StorageSelection` the parsed arguments ask for. Raises UsageError for
    combinations that contradict each other."""
    environ = os.environ if environ is None else environ
    root: str | None = args.root
    backend: str | None = args.backend
    alias: str | None = args.storage
    options: dict[str, Any] = dict(args.options)
    settings_module: str | None = args.settings or environ.get("DJANGO_SETTINGS_MODULE") or None

    if root is not None and backend is not None:
        raise UsageError("give either ROOT or --backend, not both")
    if alias is not None and (root is not None or backend is not None):
        raise UsageError("--storage names the store already; drop ROOT/--backend")
    if alias is not None and options:
        raise UsageError(
            "--option works with ROOT or --backend; --storage takes the options from STORAGES"
        )
    if root is not None:
        if "location" in options:
            raise UsageError("ROOT is the location; drop --option location=...")
        location = str(Path(root).expanduser().absolute())
        return StorageSelection(
            SelectionKind.BACKEND,
            backend=DEFAULT_BACKEND,
            options={"location": location, **options},
            settings_module=settings_module,
            root=location,
        )
    if backend is not None:
        return StorageSelection(
            SelectionKind.BACKEND,
            backend=backend,
            options=options,
            settings_module=settings_module,
        )
    if options:
        raise UsageError("--option needs ROOT or --backend")
    if alias is not None or settings_module is not None:
        if settings_module is None:
            raise UsageError(
                "--storage needs Django settings: give --settings MODULE "
                "or set DJANGO_SETTINGS_MODULE"
            )
        return StorageSelection(
            SelectionKind.ALIAS, alias=alias or "default", settings_module=settings_module
        )
    return StorageSelection(
        SelectionKind.DEFAULT,
        backend=DEFAULT_BACKEND,
        options={"location": str(Path(DEFAULT_ROOT).absolute())},
    )


def project_folder(settings_module: str, cwd: str | None = None) -> str | None:
    """The folder to put first on the import path so that ``settings_module`` imports, as
    ``manage.py`` puts its own folder there: ``cwd`` (default: the current folder), when the
    module's top-level package is in it and the path as it is does not find it; else None.
    """
    import importlib.machinery
    import importlib.util

    top = settings_module.split(".", 1)[0]
    if not top or top in sys.modules:
        return None
    try:
        if importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):
        return None
    folder = os.path.abspath(cwd or os.getcwd())
    if importlib.machinery.PathFinder.find_spec(top, [folder]) is None:
        return None
    return folder


def configure_django(
    settings_module: str | None, *, from_current_folder: bool = False
) -> str | None:
    """Set Django up once: from ``settings_module``, else with minimal settings.

    With ``from_current_folder`` the current folder is put first on ``sys.path`` when the
    settings are found there and nowhere else (:func:`project_folder`); the folder is
    returned (else None). A process that configured Django already (a ``manage.py``
    command, a test run) keeps its settings. Raises UsageError when the module cannot be
    imported or set up.
    """
    import django
    from django.conf import settings

    if settings.configured:
        if settings_module and getattr(settings, "SETTINGS_MODULE", None) not in (
            None,
            settings_module,
        ):
            raise UsageError(
                f"Django is already configured with {settings.SETTINGS_MODULE!r}, "
                f"not {settings_module!r}"
            )
        _setup(django.setup, settings_module)
        return None
    if settings_module is None:
        settings.configure(
            USE_TZ=True,
            INSTALLED_APPS=[],
            DATABASES={},
            MEDIA_ROOT=str(Path(DEFAULT_ROOT).absolute()),
            MEDIA_URL="/media/",
            LOGGING_CONFIG=None,
        )
        # What django.setup() does for settings with no app, no URLs and no logging
        # config: the app registry only. (setup() imports django.urls, and with it the
        # ORM, forms and templates: ~24 MB in every process that a plain share never uses.)
        from django.apps import apps

        apps.populate([])
        return None
    folder = project_folder(settings_module) if from_current_folder else None
    if folder is not None:
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        logger.debug("%s on the import path for the settings %s", folder, settings_module)
    try:
        importlib.import_module(settings_module)
    except Exception as exc:
        raise UsageError(
            f"cannot import the Django settings module {settings_module!r}: "
            f"{type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    _setup(django.setup, settings_module)
    return folder


def _setup(setup: Any, settings_module: str | None) -> None:
    from django.apps import apps

    if apps.ready:
        return
    try:
        setup()
    except Exception as exc:
        raise UsageError(
            f"cannot set Django up with {settings_module!r}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc


def build_storage(selection: StorageSelection) -> Storage:
    """Import and build the Storage ``selection`` names (Django must be configured).

    The embedded default's folder is created if missing. Raises UsageError for an unknown
    class or alias, a class that is not a Storage, or options the class refuses.
    """
    if selection.kind is SelectionKind.ALIAS:
        return _storage_from_alias(selection.alias or "default", selection.settings_module)
    if selection.backend is None:
        raise UsageError("no backend named")
    if selection.kind is SelectionKind.DEFAULT:
        location = Path(selection.options["location"])
        try:
            location.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {location}: {exc.strerror or exc}") from exc
    elif selection.root is not None and not Path(selection.root).is_dir():
        what = "not a folder" if Path(selection.root).exists() else "no such folder"
        raise UsageError(f"ROOT {selection.root} is {what}")
    cls = _import_storage_class(selection.backend)
    try:
        storage = cls(**selection.options)
    except TypeError as exc:
        raise UsageError(f"{selection.backend} refused the options: {_one_line(exc)}") from exc
    except Exception as exc:
        raise UsageError(
            f"cannot build {selection.backend}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    return storage


def _import_storage_class(dotted: str) -> type[Storage]:
    from django.utils.module_loading import import_string

    if "." not in dotted:
        raise UsageError(f"--backend takes a dotted path like module.Class, got {dotted!r}")
    try:
        cls = import_string(dotted)
    except ImportError as exc:
        raise UsageError(f"unknown backend {dotted!r}: {_one_line(exc)}") from exc
    except Exception as exc:
        raise UsageError(
            f"cannot import backend {dotted!r}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise UsageError(f"{dotted!r} is not a Django Storage class")
    return cls


def _storage_from_alias(alias: str, settings_module: str | None) -> Storage:
    from django.core.files.storage import InvalidStorageError, storages

    try:
        storage = storages[alias]
    except InvalidStorageError as exc:
        known = ", ".join(sorted(storages.backends)) or "none"
        raise UsageError(
            f"no storage {alias!r} in STORAGES of {settings_module or 'the settings'} "
            f"(known: {known})"
        ) from exc
    except Exception as exc:
        raise UsageError(
            f"cannot build storage {alias!r}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    if not isinstance(storage, Storage):
        raise UsageError(f"STORAGES[{alias!r}] is not a Django Storage")
    return storage


def share_identity(
    selection: StorageSelection, storage: Storage, *, state_root: Path | None = None
) -> str:
    """A short, stable, file-name-safe name for the share (``media-1a2b3c4d5e``).

    Two selections of the same store get the same identity, so its state (dead
    properties, locks) is found again after a restart; different stores never share one.
    The identity is a hash of the Storage class, its location (``location``,
    ``bucket_name`` or ``azure_container``), the alias and settings module of a
    ``--storage`` selection, and the other keyword arguments the class was built with
    (``--option``, as a hash of their JSON): two stores of one class that differ only in
    an option have different state folders.

    Before the options were part of it, a store built with options other than
    ``location`` had the identity of its class and location alone. Where that older
    identity named a location (so a folder or bucket of its own), its folder under
    ``state_root`` is kept when it exists and the new one does not: an existing share's
    locks and properties are found again. Without a location the older identity was the
    class alone, shared by every such store; those get a folder of their own.
    """
    cls = type(storage)
    location = (
        getattr(storage, "location", None)
        or getattr(storage, "bucket_name", None)
        or getattr(storage, "azure_container", None)
        or ""
    )
    key: dict[str, Any] = {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "location": str(location),
        "alias": selection.alias,
        "settings": selection.settings_module if selection.kind is SelectionKind.ALIAS else None,
    }
    label = selection.alias if selection.kind is SelectionKind.ALIAS else None
    label = label or Path(str(location)).name or cls.__name__
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:40] or "share"
    older = f"{slug}-{_digest(key)}"
    options = {name: value for name, value in selection.options.items() if name != "location"}
    if selection.kind is SelectionKind.ALIAS or not options:
        return older
    key["options"] = hashlib.sha256(
        json.dumps(options, sort_keys=True, default=repr).encode()
    ).hexdigest()
    identity = f"{slug}-{_digest(key)}"
    if (
        state_root is not None
        and location
        and (state_root / older).is_dir()
        and not (state_root / identity).exists()
    ):
        return older
    return identity


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def open_share(
    args: argparse.Namespace,
    *,
    max_file_size: int | None = None,
    spool_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> OpenedSelection:
    """Configure Django, build the selected Storage, and wrap it in a VFS.

    ``args`` must carry the attributes :func:`add_storage_arguments` adds. Raises UsageError.
    """
    selection = selection_from_args(args, environ=environ)
    worker = getattr(args, "worker_socket", None) is not None  # given the folder by path
    folder = configure_django(
        selection.settings_module,
        from_current_folder=bool(getattr(args, "settings", None) or getattr(args, "storage", None))
        and not worker,
    )
    storage = build_storage(selection)
    if folder is not None:
        _refuse_shared_project(folder, storage)
    vfs = VFS(
        adapt(storage),
        read_only=bool(args.read_only),
        cache_ttl=float(args.cache_ttl),
        spool_dir=spool_dir,
        max_file_size=max_file_size,
    )
    if selection.kind is SelectionKind.ALIAS and selection.alias:
        _guard_as_the_site_does(selection.alias, vfs)
    identity = share_identity(selection, storage, state_root=default_state_root())
    logger.debug("share %s: %s (%s)", identity, vfs.describe(), selection.kind.value)
    return OpenedSelection(selection, storage, vfs, identity, project_folder=folder)


def _guard_as_the_site_does(alias: str, vfs: VFS) -> None:
    """Give ``vfs`` (over ``STORAGES[alias]``) the site guard of the project's share on
    that alias, when ``davstore`` is an installed app: a person's edit through
    ``davstore serve --storage ALIAS`` is refused or rewritten as through ``manage.py
    davstore serve`` (docs/SEMANTICS.md, "Policy hooks and the site guard")."""
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    if not apps.is_installed("davstore"):
        return
    from davstore.shares import get_shares
    from davstore.site.guard import protect

    try:
        shares = get_shares()
    except ImproperlyConfigured as exc:
        raise UsageError(f"DAVSTORE: {_one_line(exc)}") from exc
    for share in shares.values():
        if share.config.storage == alias:
            protect(share, vfs)
            return


def _refuse_shared_project(folder: str, storage: Storage) -> None:
    """UsageError when ``folder`` (put on the import path for the settings) lies inside
    the local folder ``storage`` shares: whoever may upload could then add code."""
    from django.core.files.storage import FileSystemStorage

    if not isinstance(storage, FileSystemStorage):
        return
    real, top = os.path.realpath(folder), os.path.realpath(str(storage.location))
    if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
        raise UsageError(
            f"the current folder {folder} is inside the shared folder {top}: uploads there "
            "could be imported as code; start davstore from the project's folder outside "
            "the share"
        )


def build_vfs(
    args: argparse.Namespace,
    *,
    max_file_size: int | None = None,
    spool_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> VFS:
    """The VFS of :func:`open_share` alone. Raises UsageError."""
    return open_share(args, max_file_size=max_file_size, spool_dir=spool_dir, environ=environ).vfs


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
