"""The adapter registry: which store adapter serves which Django ``Storage`` class.

:func:`davstore.store.adapt` asks the registry for the adapter of a storage. Each accelerated
adapter is registered for the ``Storage`` class it serves; a registration also serves that
class's subclasses, and for one storage the most specific registration wins (the registered
class nearest to ``type(storage)`` in its MRO). A storage no registration serves gets
:class:`~davstore.store.generic.GenericStore`, which works for any ``Storage`` through the
public API.

Registrations come from four places; for the same class a later one replaces an earlier one:

1. the built-ins: ``FileSystemStorage`` -> ``FileSystemStore``, ``InMemoryStorage`` ->
   ``MemoryStore``, django-storages' ``S3Storage`` -> ``S3Store``, ``GoogleCloudStorage`` ->
   ``GCSStore``, ``AzureStorage`` -> ``AzureStore``. Each declines a subclass that changes how
   bytes are stored (overrides ``_open``, ``_save``, ``path``, ``delete`` or ``listdir``, say
   to encrypt), and S3/GCS decline ``gzip``: such a store is only correct through its own
   methods, so it falls to a less specific registration, and in the end to the generic one;
2. the entry point group ``davstore.adapters`` of installed distributions: the entry point's
   name is the dotted path of the Storage class, its value the adapter::

       [project.entry-points."davstore.adapters"]
       "myproject.storage.EncryptedStorage" = "myproject.davstore:EncryptedStore"

3. :func:`register` calls (tests, or a project's ``AppConfig.ready``);
4. the ``DAVSTORE["ADAPTERS"]`` setting, a dict of the same dotted paths::

       DAVSTORE = {
           "ADAPTERS": {"myproject.storage.EncryptedStorage": "myproject.davstore.EncryptedStore"},
       }

An adapter is any callable taking the storage and returning an
:class:`~davstore.store.base.ObjectStore` (an ``ObjectStore`` subclass is one).

Nothing is imported before it is needed: a Storage class named by a dotted path is only
looked at when its module has been imported (an instance of it cannot exist otherwise), and
an adapter named by a dotted path is imported when it is chosen. So the boto3, Google and
Azure SDKs are never imported for a project that does not use them. A dotted path that
cannot name anything (no such module, no such attribute, not a Storage class, not callable)
raises ``ImproperlyConfigured`` naming where it was registered.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage

from davstore.store.base import ObjectStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterFactory",
    "AdapterRegistry",
    "Registration",
    "adapter_for",
    "keeps_io",
    "keeps_io_uncompressed",
    "parse_setting",
    "register",
    "registry",
    "unregister",
]

#: The entry point group projects register adapters in (name: Storage class, value: adapter).
ENTRY_POINT_GROUP = "davstore.adapters"

#: What builds an adapter: an ``ObjectStore`` subclass or any callable taking the storage.
AdapterFactory = Callable[[Storage], ObjectStore]

#: Whether a registration serves one storage of its class (``storage``, the registered class).
Acceptor = Callable[[Storage, type[Storage]], bool]

#: A Storage class, or its dotted path.
StorageClass = type[Storage] | str
#: An adapter, or its dotted path.
Adapter = AdapterFactory | str

_IO_METHODS = ("_open", "_save", "path", "delete", "listdir")


def keeps_io(storage: Storage, served: type[Storage]) -> bool:
    """False when ``storage``'s class changes how bytes are stored (say, encrypts in
    ``_save``): such a store is only correct through its own methods."""
    return all(getattr(type(storage), method) is getattr(served, method) for method in _IO_METHODS)


def keeps_io_uncompressed(storage: Storage, served: type[Storage]) -> bool:
    """:func:`keeps_io`, and no ``gzip`` (the stored bytes would not be the file's)."""
    return keeps_io(storage, served) and not getattr(storage, "gzip", False)


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    """One adapter for one ``Storage`` class (and its subclasses).

    ``storage_class`` and ``adapter`` are objects or dotted paths (``"pkg.module.Name"`` or
    ``"pkg.module:Name"``); paths are resolved lazily (see the module docstring).
    ``accepts``, when given, may decline a particular storage of the class; the registry then
    tries the next less specific registration. ``origin`` names where the registration came
    from, for error messages.
    """

    storage_class: StorageClass
    adapter: Adapter
    accepts: Acceptor | None = None
    origin: str = "davstore.store.registry.register()"
    #: The class's module may be missing (an optional dependency): then it serves nothing.
    optional: bool = False

    def served_class(self) -> type[Storage] | None:
        """The registered class, or None while its module is not imported.
        Raises ImproperlyConfigured when the path cannot name a Storage class."""
        if not isinstance(self.storage_class, str):
            return self.storage_class
        module_name, attribute = _split(self.storage_class, self.origin)
        module = sys.modules.get(module_name)
        if module is None:
            if not self.optional and _find_spec(module_name) is None:
                raise ImproperlyConfigured(
                    f"{self.origin}: {self.storage_class!r}: there is no module {module_name!r}"
                )
            return None  # not imported, so no storage of this class exists
        found: object = module
        for part in attribute.split("."):
            found = getattr(found, part, None)
        if not isinstance(found, type) or not issubclass(found, Storage):
            raise ImproperlyConfigured(
                f"{self.origin}: {self.storage_class!r} does not name a Storage class"
            )
        return found

    def factory(self) -> AdapterFactory:
        """The adapter, imported when a dotted path. Raises ImproperlyConfigured."""
        if not isinstance(self.adapter, str):
            return self.adapter
        found = _import(self.adapter, self.origin)
        if not callable(found):
            raise ImproperlyConfigured(f"{self.origin}: {self.adapter!r} is not callable")
        return found


class AdapterRegistry:
    """Registrations by :meth:`register`, on top of ``builtins``; see the module docstring.

    With ``discover`` (the registry :func:`davstore.store.adapt` uses), :meth:`adapter_for`
    also reads the entry points and ``DAVSTORE["ADAPTERS"]``, each time it is called (a share
    is adapted once, at start), so a changed setting is never stale.
    """

    def __init__(self, builtins: Iterable[Registration] = (), *, discover: bool = False) -> None:
        self._lock = threading.Lock()
        self._builtins = tuple(builtins)
        self._discover = discover
        self._registered: list[Registration] = []

    def register(
        self,
        storage_class: StorageClass,
        adapter: Adapter,
        *,
        accepts: Acceptor | None = None,
    ) -> Registration:
        """Serve ``storage_class`` (and its subclasses) with ``adapter``; the registration,
        for :meth:`unregister`. Replaces an earlier registration of the same class."""
        for value, what in ((storage_class, "storage class"), (adapter, "adapter")):
            if isinstance(value, str):
                _split(value, f"register(): {what}")
        if not isinstance(storage_class, (str, type)) or (
            isinstance(storage_class, type) and not issubclass(storage_class, Storage)
        ):
            raise TypeError(f"register(): {storage_class!r} is not a Storage class")
        if not isinstance(adapter, str) and not callable(adapter):
            raise TypeError(f"register(): the adapter {adapter!r} is not callable")
        registration = Registration(storage_class, adapter, accepts)
        with self._lock:
            self._registered.append(registration)
        return registration

    def unregister(self, registration: Registration) -> None:
        """Undo one :meth:`register`. ``ValueError`` when it is not registered."""
        with self._lock:
            self._registered.remove(registration)

    def registrations(self) -> list[Registration]:
        """Every registration in force, in increasing precedence."""
        with self._lock:
            registered = list(self._registered)
        if not self._discover:
            return [*self._builtins, *registered]
        return [*self._builtins, *_entry_points(), *registered, *_from_settings()]

    def adapter_for(self, storage: Storage) -> AdapterFactory | None:
        """The adapter of the most specific registration serving ``storage``; None when
        none does (the caller then uses the generic adapter)."""
        mro = type(storage).__mro__
        candidates: list[tuple[int, int, Registration, type[Storage]]] = []
        for order, registration in enumerate(self.registrations()):
            served = registration.served_class()
            if served is not None and served in mro:
                candidates.append((mro.index(served), -order, registration, served))
        candidates.sort(key=lambda item: item[:2])
        seen: set[type[Storage]] = set()
        for _depth, _order, registration, served in candidates:
            if served in seen:  # replaced by a later registration of the same class
                continue
            seen.add(served)
            if registration.accepts is None or registration.accepts(storage, served):
                return registration.factory()
        return None


_BUILTINS = (
    Registration(
        "django.core.files.storage.FileSystemStorage",
        "davstore.store.filesystem.FileSystemStore",
        keeps_io,
        "davstore built-in",
        optional=True,
    ),
    Registration(
        "django.core.files.storage.InMemoryStorage",
        "davstore.store.memory.MemoryStore",
        keeps_io,
        "davstore built-in",
        optional=True,
    ),
    Registration(
        "storages.backends.s3.S3Storage",
        "davstore.store.s3.S3Store",
        keeps_io_uncompressed,
        "davstore built-in",
        optional=True,
    ),
    Registration(
        "storages.backends.gcloud.GoogleCloudStorage",
        "davstore.store.gcs.GCSStore",
        keeps_io_uncompressed,
        "davstore built-in",
        optional=True,
    ),
    Registration(
        "storages.backends.azure_storage.AzureStorage",
        "davstore.store.azure.AzureStore",
        keeps_io,
        "davstore built-in",
        optional=True,
    ),
)

#: The registry :func:`davstore.store.adapt` uses.
registry = AdapterRegistry(_BUILTINS, discover=True)


def register(
    storage_class: StorageClass, adapter: Adapter, *, accepts: Acceptor | None = None
) -> Registration:
    """:meth:`AdapterRegistry.register` on the registry :func:`davstore.store.adapt` uses."""
    return registry.register(storage_class, adapter, accepts=accepts)


def unregister(registration: Registration) -> None:
    """:meth:`AdapterRegistry.unregister` on the registry :func:`davstore.store.adapt` uses."""
    registry.unregister(registration)


def adapter_for(storage: Storage) -> AdapterFactory | None:
    """:meth:`AdapterRegistry.adapter_for` on the registry :func:`davstore.store.adapt` uses."""
    return registry.adapter_for(storage)


def parse_setting(value: object, key: str = "DAVSTORE['ADAPTERS']") -> list[Registration]:
    """The registrations of a ``DAVSTORE["ADAPTERS"]`` value (a dict of dotted paths).
    Checks the shape only (nothing is imported). Raises ImproperlyConfigured."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"{key}: must be a dict of Storage class path -> adapter path, "
            f"not {type(value).__name__}"
        )
    registrations = []
    for storage_class, adapter in value.items():
        where = f"{key}[{storage_class!r}]"
        if not isinstance(storage_class, str) or not isinstance(adapter, str):
            raise ImproperlyConfigured(f"{where}: keys and values must be dotted paths")
        _split(storage_class, where)
        _split(adapter, where)
        registrations.append(Registration(storage_class, adapter, None, where))
    return registrations


def _from_settings() -> list[Registration]:
    from django.conf import settings

    if not settings.configured:
        return []
    raw: Any = getattr(settings, "DAVSTORE", None)
    if not isinstance(raw, Mapping):
        return []  # davstore.conf reports a malformed DAVSTORE
    return parse_setting(raw.get("ADAPTERS"))


def _entry_points() -> list[Registration]:
    return [
        Registration(point.name, point.value, None, f"entry point {ENTRY_POINT_GROUP}:{point.name}")
        for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    ]


def _split(path: str, origin: str) -> tuple[str, str]:
    """``"pkg.mod.Name"`` or ``"pkg.mod:Name"`` -> ``("pkg.mod", "Name")``."""
    module, sep, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if (
        not sep
        or not module
        or not attribute
        or not all(part.isidentifier() for part in [*module.split("."), *attribute.split(".")])
    ):
        raise ImproperlyConfigured(
            f"{origin}: {path!r} is not a dotted path (like 'package.module.Name')"
        )
    return module, attribute


def _find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package is missing
        return None


def _import(path: str, origin: str) -> object:
    module_name, attribute = _split(path, origin)
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{origin}: cannot import {path!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError as exc:
            raise ImproperlyConfigured(
                f"{origin}: cannot import {path!r}: {module_name!r} has no {attribute!r}"
            ) from exc
    return found
