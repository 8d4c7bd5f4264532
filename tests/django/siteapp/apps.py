from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class SiteAppConfig(AppConfig):
    name = "tests.django.siteapp"
    label = "siteapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        setting_changed.connect(_reset, dispatch_uid="siteapp-storage")


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        from django.utils.functional import empty

        from tests.django.siteapp.models import site_storage

        site_storage._wrapped = empty
