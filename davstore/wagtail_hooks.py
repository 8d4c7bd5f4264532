"""The "Files" section in Wagtail's admin: a menu item and the pages of the Django admin's
Files section (:mod:`davstore.admin_views`), under ``davstore/`` in Wagtail's admin URLs.

Wagtail imports this module itself (it looks for ``wagtail_hooks`` in every installed app);
nothing else does, so a project without Wagtail never loads it. The pages are the very
views of the Django admin's section, in Wagtail's furniture
(``admin/davstore/frame_wagtail.html``), with the same rules: Wagtail's own login and
``wagtailadmin.access_admin`` first, then the share's ``READ``/``WRITE`` rules
(:mod:`davstore.permissions`) for every page and every change, CSRF on every POST, every
operation through the share's VFS. The menu item shows for users who may read a share.

URLs (names in the ``davstore_wagtail`` namespace): the same as the Django admin's, e.g.
``davstore_wagtail:davstore_browse``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import URLResolver, include, path, reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from wagtail import hooks
from wagtail.admin.auth import require_admin_access
from wagtail.admin.menu import MenuItem

from davstore.admin_views import FilesAdmin, View
from davstore.permissions import can_read
from davstore.shares import get_shares

__all__ = ["NAMESPACE", "FilesMenuItem", "WagtailFrame", "files"]

logger = logging.getLogger(__name__)

#: The URL namespace of the pages in Wagtail's admin.
NAMESPACE = "davstore_wagtail"


class WagtailFrame:
    """Wagtail's admin as the Files pages' frame (:class:`davstore.admin_views.Frame`)."""

    name = NAMESPACE
    base_template = "admin/davstore/frame_wagtail.html"

    def admin_view(self, view: View, *, cacheable: bool = False) -> View:
        wrapped: View = require_admin_access(csrf_protect(view if cacheable else never_cache(view)))
        return wrapped

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def home_url(self) -> str:
        return reverse("wagtailadmin_home")


#: The pages, once for the process.
files = FilesAdmin(WagtailFrame())


class FilesMenuItem(MenuItem):  # type: ignore[misc]  # Wagtail is untyped
    """ "Files" in Wagtail's sidebar, for users who may read at least one share."""

    def is_shown(self, request: HttpRequest) -> bool:
        try:
            shares = get_shares().values()
        except ImproperlyConfigured as exc:  # manage.py check names it; the admin still works
            logger.warning("no Files menu item: %s", exc)
            return False
        return any(can_read(request.user, share) for share in shares)


@hooks.register("register_admin_urls")  # type: ignore[untyped-decorator]
def register_admin_urls() -> list[URLResolver]:
    return [path("davstore/", include((files.get_urls(), NAMESPACE), namespace=NAMESPACE))]


@hooks.register("register_admin_menu_item")  # type: ignore[untyped-decorator]
def register_admin_menu_item() -> FilesMenuItem:
    return FilesMenuItem(
        "Files",
        reverse_lazy(f"{NAMESPACE}:davstore_index"),
        name="davstore-files",
        icon_name="folder-open-inverse",
        order=450,
    )
