"""The example app: documents and pictures uploaded through the site."""

from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gallery import receivers  # noqa: F401 -- connects the file_changed receiver
