"""The project's test settings (a project using pytest-django has its own already)."""

from __future__ import annotations

import django
from django.conf import settings


def pytest_configure() -> None:
    if not settings.configured:
        settings.configure(USE_TZ=True, SECRET_KEY="example-only")  # noqa: S106 (tests only)
        django.setup()
