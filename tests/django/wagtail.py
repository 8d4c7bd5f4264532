"""Running tests.wagtailsite's scenarios from pytest: one migrated database per module
(copied for each scenario), one process per scenario, media on local disk or S3 (moto)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.django.project import REPO
from tests.process import davstore_env
from tests.s3.moto import ACCESS_KEY, SECRET_KEY, MotoServer, new_bucket

SETTINGS = "tests.wagtailsite.settings"


def env(root: Path, s3: dict[str, Any] | None = None) -> dict[str, str]:
    extra = {"DJANGO_SETTINGS_MODULE": SETTINGS, "WAGTAILSITE_ROOT": str(root)}
    if s3 is not None:
        extra["WAGTAILSITE_S3"] = json.dumps(s3)
    return davstore_env(root, extra, pythonpath=[REPO])


def migrate(root: Path) -> Path:
    """A migrated database of the site in ``root``; returns its file."""
    root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=REPO,
        env=env(root),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return root / "db.sqlite3"


def s3_options(moto: MotoServer) -> dict[str, Any]:
    return {
        "bucket_name": new_bucket(moto),
        "endpoint_url": moto.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
        "location": "media",
        "file_overwrite": True,
    }


def run_scenario(
    name: str, database: Path, root: Path, s3: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run scenario ``name`` on a copy of ``database`` in ``root``; asserts it held."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(database, root / "db.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "tests.wagtailsite.scenarios", name],
        cwd=REPO,
        env=env(root, s3),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0 and f"{name}: ok" in done.stdout, (
        f"scenario {name} failed:\n{done.stdout}\n{done.stderr}"
    )
    return done
