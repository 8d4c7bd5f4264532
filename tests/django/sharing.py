"""Serve a project's shares in a thread (in-process), for the Django tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.test.utils import override_settings

from davstore.conf import get_config
from davstore.shares import get_shares
from davstore.shares_app import SharesApp
from tests.webdav.serving import serve_in_thread


def project_settings(tmp_path: Path, **davstore: Any) -> dict[str, Any]:
    """STORAGES and DAVSTORE for three shares: ``media`` (InMemoryStorage, staff write),
    ``files`` (FileSystemStorage, group rules) and ``static`` (read-only, any user)."""
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "static").mkdir(exist_ok=True)
    return {
        "STORAGES": {
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "files": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "files")},
            },
            # Not "staticfiles": under Django 4.2, override_settings(STORAGES=...) drops the
            # OPTIONS of the "default" and "staticfiles" aliases.
            "collected": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "static")},
            },
        },
        "DAVSTORE": {
            "SHARES": {
                "media": {"STORAGE": "default"},
                "files": {
                    "STORAGE": "files",
                    "READ": ["group:readers"],
                    "WRITE": ["group:writers", "auth.change_user"],
                },
                "static": {"STORAGE": "collected", "READ_ONLY": True, "READ": ["authenticated"]},
            },
            "STATE_DIR": str(tmp_path / "state"),
            **davstore,
        },
    }


@contextlib.contextmanager
def serve_project(tmp_path: Path, *, prefix: str = "", **davstore: Any) -> Iterator[str]:
    """Serve the shares of :func:`project_settings`; yields the base URL (with prefix)."""
    with override_settings(**project_settings(tmp_path, **davstore)):
        config = get_config()
        app = SharesApp(
            get_shares().values(),
            prefix=prefix,
            auth_cache_ttl=config.auth_cache_ttl,
            realm=config.realm,
        )
        try:
            with serve_in_thread(app) as (url, _stop):
                yield url + prefix.rstrip("/")
        finally:
            app.close()
