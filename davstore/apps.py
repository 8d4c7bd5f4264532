"""The Django app: ``INSTALLED_APPS += ["davstore"]``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps

__all__ = ["DavstoreAppConfig"]


class DavstoreAppConfig(AppConfig):
    """Registers the system checks of the ``DAVSTORE`` setting (``manage.py check`` names
    every mistake: :mod:`davstore.checks`; reading a wrong setting raises
    ImproperlyConfigured with the same messages), forgets the built shares when a test
    changes ``DAVSTORE`` or ``STORAGES``, and connects :mod:`davstore.contrib.wagtail`
    when Wagtail's images are installed."""

    name = "davstore"
    verbose_name = "Files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from davstore import checks  # noqa: F401 -- registers the setting's system checks
        from davstore.site import checks as site_checks  # noqa: F401 -- and the guard's
        from davstore.site.announce import install
        from davstore.site.guard import connect_signals

        setting_changed.connect(_reset_on_change, dispatch_uid="davstore-settings")
        connect_signals()
        if apps.is_installed("wagtail.images"):
            from davstore.contrib.wagtail import connect

            connect()
        install()  # the site's own writes through the shared storages are journaled


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DAVSTORE", "STORAGES", "STATIC_ROOT"):
        from davstore.shares import reset_shares
        from davstore.site import announce, follow
        from davstore.site.guard import reset

        reset_shares()
        reset()
        announce.reset()
        follow.stop_following()
