"""The conformance suite through a real ``davstore serve`` process.

In-process runs (tests/webdav/test_conformance.py) cover every store kind; this run proves
the same through the command a person starts: one store is enough, the code is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from davstore.testing import ConformanceSuite, WebDAVDriver
from tests.process import start_serve


class TestWebDAVProcess(ConformanceSuite):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> Iterator[WebDAVDriver]:
        media = tmp_path / "media"
        media.mkdir()
        args = ["--user", "carol:pa55:word", str(media)]
        with start_serve(args, cwd=tmp_path) as server, requests.Session() as session:
            session.auth = ("carol", "pa55:word")
            yield WebDAVDriver(server.url, session)
