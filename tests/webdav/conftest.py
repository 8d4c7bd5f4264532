"""Fixtures for the in-process WebDAV tests: a share served over HTTP on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import Storage

from tests.webdav.serving import Share, serve_share


@pytest.fixture
def share(storage: Storage, tmp_path: Path) -> Iterator[Share]:
    with serve_share(storage, tmp_path / "state") as served:
        yield served
