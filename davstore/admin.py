"""The "Files" section of the Django admin, one entry per share (see :mod:`davstore.admin_views`).

``django.contrib.admin`` imports this module when it starts (``admin.autodiscover``), and it
hooks the pages into the default site, ``admin.site``. No model and no migration are
involved: the site's URLs get the pages under ``davstore/`` and its app list (the index page
and the sidebar) gets a "Files" app listing the shares the user may read. A project with
another :class:`~django.contrib.admin.AdminSite` instance calls :func:`install` on it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, include, path

from davstore.admin_views import FilesAdmin

__all__ = ["install"]

_ATTRIBUTE = "_davstore_files"


def install(site: AdminSite) -> FilesAdmin:
    """Add the "Files" pages to ``site`` (once; later calls return the same pages).

    Must run before the site's ``urls`` are read (from an ``admin.py`` module or an
    ``AppConfig.ready``), as :meth:`AdminSite.register` must.
    """
    installed: FilesAdmin | None = getattr(site, _ATTRIBUTE, None)
    if installed is not None:
        return installed
    files = FilesAdmin(site)
    site_get_urls = site.get_urls
    site_get_app_list = site.get_app_list

    def get_urls() -> list[URLResolver | URLPattern]:
        # First, before the site's catch-all patterns.
        return [path("davstore/", include(files.get_urls())), *site_get_urls()]

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps: list[Any] = site_get_app_list(request, app_label)
        if app_label not in (None, "davstore"):
            return apps
        entry = files.app_list_entry(request)
        if entry is None:
            return apps
        for app in apps:
            if app["app_label"] == "davstore":  # the app registered models of its own
                app["models"].extend(entry["models"])
                return apps
        apps.append(entry)
        apps.sort(key=lambda app: str(app["name"]).lower())
        return apps

    # Instance attributes shadow the class's methods for this site only.
    site.get_urls = get_urls  # type: ignore[method-assign]
    site.get_app_list = get_app_list  # type: ignore[method-assign]
    setattr(site, _ATTRIBUTE, files)
    return files


install(admin.site)
