"""Store adapters: one Django Storage as flat primitives (see :mod:`davstore.store.base`)."""

from __future__ import annotations

import sys

from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

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
    """The best adapter for ``storage``: an accelerator where one fits, else the generic one.

    Accelerators are picked by ``isinstance``, so a project's subclass of
    ``FileSystemStorage`` (with its own ``location`` or permissions) is accelerated too.
    django-storages' ``S3Storage`` gets :class:`~davstore.store.s3.S3Store` unless it
    compresses (``gzip``) or a subclass changes how bytes are stored; its module is only
    looked at when the project has imported it, so boto3 stays optional. The same goes for
    ``GoogleCloudStorage`` (:class:`~davstore.store.gcs.GCSStore`, unless ``gzip``) and
    ``AzureStorage`` (:class:`~davstore.store.azure.AzureStore`).
    """
    if isinstance(storage, FileSystemStorage) and _keeps_io(storage, FileSystemStorage):
        return FileSystemStore(storage)
    if isinstance(storage, InMemoryStorage) and _keeps_io(storage, InMemoryStorage):
        return MemoryStore(storage)
    s3 = sys.modules.get("storages.backends.s3")  # never imported here: boto3 is optional
    if (
        s3 is not None
        and isinstance(storage, s3.S3Storage)
        and _keeps_io(storage, s3.S3Storage)
        and not getattr(storage, "gzip", False)
    ):
        from davstore.store.s3 import S3Store

        return S3Store(storage)
    gcloud = sys.modules.get("storages.backends.gcloud")
    if (
        gcloud is not None
        and isinstance(storage, gcloud.GoogleCloudStorage)
        and _keeps_io(storage, gcloud.GoogleCloudStorage)
        and not getattr(storage, "gzip", False)
    ):
        from davstore.store.gcs import GCSStore

        return GCSStore(storage)
    azure = sys.modules.get("storages.backends.azure_storage")
    if (
        azure is not None
        and isinstance(storage, azure.AzureStorage)
        and _keeps_io(storage, azure.AzureStorage)
    ):
        from davstore.store.azure import AzureStore

        return AzureStore(storage)
    return GenericStore(storage)


def _keeps_io(storage: Storage, base: type[Storage]) -> bool:
    """False when a subclass changes how bytes are stored (say, encrypts in ``_save``):
    such a store is only correct through its own methods, so it gets the generic adapter."""
    return all(
        getattr(type(storage), method) is getattr(base, method)
        for method in ("_open", "_save", "path", "delete", "listdir")
    )
