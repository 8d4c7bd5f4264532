"""Store adapters: one Django Storage as flat primitives (see :mod:`davstore.store.base`)."""

from __future__ import annotations

from django.core.files.storage import Storage

from davstore.store.base import (
    DIRECTORY_MARKER,
    Capabilities,
    ObjectInfo,
    ObjectStore,
    Upload,
    Usage,
)
from davstore.store.filesystem import FileSystemStore
from davstore.store.generic import GenericStore
from davstore.store.memory import MemoryStore
from davstore.store.registry import registry

__all__ = [
    "DIRECTORY_MARKER",
    "Capabilities",
    "FileSystemStore",
    "GenericStore",
    "MemoryStore",
    "ObjectInfo",
    "ObjectStore",
    "Upload",
    "Usage",
    "adapt",
]


def adapt(storage: Storage) -> ObjectStore:
    """The best adapter for ``storage``: the most specific one registered for its class in
    :mod:`davstore.store.registry`, else the generic one (which works for any Storage).

    Accelerators serve subclasses too, so a project's subclass of ``FileSystemStorage``
    (with its own ``location`` or permissions) is accelerated, unless it changes how bytes
    are stored. django-storages' ``S3Storage`` gets :class:`~davstore.store.s3.S3Store`
    unless it compresses (``gzip``); its module is only looked at when the project has
    imported it, so boto3 stays optional. The same goes for ``GoogleCloudStorage``
    (:class:`~davstore.store.gcs.GCSStore`, unless ``gzip``) and ``AzureStorage``
    (:class:`~davstore.store.azure.AzureStore`). Projects add adapters through
    ``DAVSTORE["ADAPTERS"]``, the ``davstore.adapters`` entry point group or
    :func:`~davstore.store.registry.register`. Raises ImproperlyConfigured for a
    registration that names nothing.
    """
    factory = registry.adapter_for(storage)
    return GenericStore(storage) if factory is None else factory(storage)
