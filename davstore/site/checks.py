"""System checks of the site guard (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

__all__ = ["check_reference_index"]


@checks.register("davstore")
def check_reference_index(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``davstore.W001``: a share's reference index is stale (never built, built over other
    fields, or its count differs from the fields': a bulk update bypassed the signals)."""
    from django.db import DatabaseError

    from davstore.site.guard import indexes

    messages: list[checks.CheckMessage] = []
    for name, index in indexes().items():
        try:
            why = index.stale()
        except DatabaseError:
            continue  # not migrated yet: Django's own warning says so
        if why:
            messages.append(
                checks.Warning(
                    f"the reference index of share {name!r} is stale: {why}",
                    hint="Run `manage.py davstore index`; until then the guard queries "
                    "the file fields themselves (slower, not wrong).",
                    id="davstore.W001",
                )
            )
    return messages
