"""The reference index's tables (app ``davstore``; migrations in davstore/migrations)."""

from __future__ import annotations

import datetime

from django.db import models

__all__ = ["IndexState", "Reference"]


class Reference(models.Model):
    """One model field of one row naming a file in a share's Storage.

    Kept by ``post_save``/``post_delete`` (:mod:`davstore.site.references`); rebuilt by
    ``manage.py davstore index``. ``name`` is indexed with the share so that "rows naming
    NAME" and "rows naming anything under FOLDER/" (a range on ``name``) are index lookups.
    """

    share: models.CharField[str, str] = models.CharField(max_length=100)
    name: models.CharField[str, str] = models.CharField(max_length=1024)
    model: models.CharField[str, str] = models.CharField(max_length=200)  # "app_label.ModelName"
    pk_value: models.CharField[str, str] = models.CharField(max_length=255)
    field: models.CharField[str, str] = models.CharField(max_length=100)

    class Meta:
        app_label = "davstore"
        indexes = [models.Index(fields=["share", "name"], name="davstore_ref_share_name")]
        constraints = [
            models.UniqueConstraint(
                fields=["share", "model", "pk_value", "field"], name="davstore_ref_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.pk_value} ({self.field}): {self.name}"


class IndexState(models.Model):
    """When a share's index was last rebuilt, and over which fields (``signature``): an
    index built over other fields (a model added since) is stale."""

    share: models.CharField[str, str] = models.CharField(max_length=100, unique=True)
    signature: models.TextField[str, str] = models.TextField()
    built_at: models.DateTimeField[datetime.datetime, datetime.datetime] = models.DateTimeField()

    class Meta:
        app_label = "davstore"

    def __str__(self) -> str:
        return f"{self.share} (built {self.built_at:%Y-%m-%d %H:%M})"
