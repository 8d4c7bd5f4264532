"""The site's models in the admin, so the guard's rows link to their change pages."""

from __future__ import annotations

from django.contrib import admin

from tests.django.siteapp.models import Document, Photo

admin.site.register(Photo)
admin.site.register(Document)
