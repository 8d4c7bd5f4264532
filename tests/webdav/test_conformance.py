"""The conformance suite through WebDAV, in-process, for every store kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import Storage

from tests.conformance.suite import ConformanceSuite
from tests.conformance.webdav_driver import WebDAVDriver
from tests.webdav.serving import serve_share


class TestWebDAV(ConformanceSuite):
    @pytest.fixture
    def driver(self, storage: Storage, tmp_path: Path) -> Iterator[WebDAVDriver]:
        with serve_share(storage, tmp_path / "state") as share:
            yield WebDAVDriver(share.url, share.session)
