"""URLs for the admin page tests: the default admin site, with the "Files" pages installed."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
