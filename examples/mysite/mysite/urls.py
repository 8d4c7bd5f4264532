"""The example site: the upload page at ``/``, the admin at ``/admin/`` (with its "Files"
section), uploads at ``/media/`` while ``DEBUG`` is on. WebDAV is at ``/dav/`` (mysite.wsgi)."""

from __future__ import annotations

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, path
from gallery import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.upload, name="upload"),
    path("admin/", admin.site.urls),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]
