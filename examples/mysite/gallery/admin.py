from __future__ import annotations

from django.contrib import admin

from gallery.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "file", "picture", "uploaded_at"]
