"""Rows naming files in ``STORAGES["site"]`` (a lazy object, as ``default_storage`` is)."""

from __future__ import annotations

from django.core.files.storage import storages
from django.db import models
from django.utils.functional import LazyObject


class SiteStorage(LazyObject):
    def _setup(self) -> None:
        self._wrapped = storages["site"]

    def __bool__(self) -> bool:  # FileField tests ``storage or default_storage``
        return True


site_storage = SiteStorage()


class Photo(models.Model):
    title = models.CharField(max_length=100, default="")
    image = models.ImageField(storage=site_storage, upload_to="photos", blank=True)

    def __str__(self) -> str:
        return self.title


class Document(models.Model):
    file = models.FileField(storage=site_storage, upload_to="docs", max_length=40)
    # A second field in the same Storage, and one in another (never guarded here).
    attachment = models.FileField(storage=site_storage, upload_to="docs", blank=True)
    elsewhere = models.FileField(upload_to="x", blank=True)

    def __str__(self) -> str:
        return self.file.name


class Picture(models.Model):
    """An image whose size the row keeps (``width_field``/``height_field``)."""

    image = models.ImageField(
        storage=site_storage, upload_to="pictures", width_field="width", height_field="height"
    )
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.image.name
