"""The conformance kit's FuseConformance through a real mount, for FileSystemStorage and
InMemoryStorage."""

from __future__ import annotations

from pathlib import Path

import pytest

from davstore.testing import FuseConformance


class TestConformanceThroughFuse(FuseConformance):
    @pytest.fixture(params=["filesystem", "memory"])
    def mount_args(self, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
        if request.param == "filesystem":
            root = tmp_path / "root"
            root.mkdir()
            return [str(root)]
        return ["--backend", "django.core.files.storage.InMemoryStorage"]
